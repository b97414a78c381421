// Shared by the generated-script tests (test/rom/sh/fuzz.test.ts, test/rom/bat/fuzz.test.ts).
export const TOTAL = Number(process.env.MIFLASH_FUZZ_SCRIPTS ?? 10_000);
/** Tighter bounds than the defaults keep the test's run time modest; the mechanism is the same. */
export const LIMITS = { maxPaths: 48, maxRuns: 96, maxSteps: 4000, maxDepth: 24, maxTermBytes: 1 << 16, maxEvents: 2000 };

export function prng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]!,
    chance: (p: number) => next() < p,
  };
}
export type Rand = ReturnType<typeof prng>;
