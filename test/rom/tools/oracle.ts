// Runs the real GNU / Debian tools as oracles for the pure text tools, under
// LC_ALL=C and TZ=UTC, and generates fastboot-like input for property tests.
// The tools are reference tools (test/helpers/peers.ts): a test comparing
// against one is marked needs(tool, 'bash') - the cases run in one bash script.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { peerPath } from '../../helpers/peers.js';

export interface Real {
  stdout: string;
  stderr: string;
  status: number;
}

const word = fc.constantFrom('lmi', 'raphaelin', 'oxygen', 'land', 'liuqin', 'MSM8953', 'taro', 'yes', 'no', '1', '0', '3', '12', 'a', 'b', 'ufs', 'raw', 'ext4', 'f2fs', '0x1000', '');
const key = fc.constantFrom('product', 'anti', 'crc', 'version', 'is-userspace', 'partition-type:userdata', 'max-download-size', 'slot-count', 'current-slot', 'unlocked', 'hw-revision', 'secure', 'version-bootloader', 'token');

/** One line of what `fastboot getvar` / `oem device-info` / `--version` print. */
export const fastbootLine: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(key, fc.constantFrom(': ', ':', ':  ', ': \t'), word).map(([k, s, v]) => `${k}${s}${v}`),
  fc.tuple(key, word).map(([k, v]) => `(bootloader) ${k}: ${v}`),
  fc.constantFrom('Device unlocked: true', 'Device critical unlocked: false', '(bootloader) Device unlocked: true'),
  fc.constantFrom('Finished. Total time: 0.001s', 'Finished. Total time: 0.123s', 'OKAY [  0.000s]'),
  fc.tuple(key, fc.constantFrom("remote: 'unknown variable'", "remote: 'GetVar Variable Not found'", 'remote: (null)')).map(
    ([k, m]) => `getvar:${k} FAILED (${m})`,
  ),
  fc.constantFrom('fastboot version 34.0.5-10900879', 'fastboot version 29.0.6-debian', 'Installed as /usr/bin/fastboot', ''),
  fc.constantFrom('< waiting for any device >', 'anti: 3', 'anti: 12', 'product: lmi', 'product:lmi', 'product: LMI'),
  fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', '.', '1', '-', '_', 'x', 'Z'), maxLength: 12 }),
);

/** Several lines, LF or CRLF, with or without a final newline. */
export const fastbootText: fc.Arbitrary<string> = fc
  .tuple(fc.array(fastbootLine, { maxLength: 6 }), fc.boolean(), fc.boolean())
  .map(([ls, crlf, finalNl]) => {
    if (ls.length === 0) return '';
    const eol = crlf ? '\r\n' : '\n';
    return ls.join(eol) + (finalNl ? eol : '');
  });

/** Short runs for the shared machine: a few seconds per tool. */
export const runs = (n: number) => ({ numRuns: n, seed: Number(process.env.FC_SEED ?? 8) });

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs many command lines in one shell (one process start per case instead of
 * one node spawn): argv with `input` on stdin, files written first into a
 * scratch directory that is the cases' working directory.
 */
export function realBatch(cases: readonly { argv: readonly string[]; input: string }[], files: Record<string, string> = {}, shell: 'bash' | 'dash' = 'bash'): Real[] {
  const dir = mkdtempSync(join(tmpdir(), 'miflash-oracle-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, 'latin1');
    let script = 'cd "$1" || exit 99\n';
    cases.forEach((c, k) => {
      writeFileSync(join(dir, `in.${k}`), c.input, 'latin1');
      // Piped, as flash scripts feed these tools (wc's column width depends on it).
      script += `cat in.${k} | ${c.argv.map(sq).join(' ')} >out.${k} 2>err.${k}; echo $? >rc.${k}\n`;
    });
    writeFileSync(join(dir, 'run.sh'), script);
    const r = spawnSync(peerPath(shell), [join(dir, 'run.sh'), dir], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' } });
    if (r.status !== 0) throw new Error(`oracle batch failed: ${r.stderr}`);
    return cases.map((_, k) => ({
      stdout: readFileSync(join(dir, `out.${k}`), 'latin1'),
      stderr: readFileSync(join(dir, `err.${k}`), 'latin1'),
      status: Number(readFileSync(join(dir, `rc.${k}`), 'latin1').trim()),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Draws `n` deterministic samples of an arbitrary. */
export const samples = <T>(arb: fc.Arbitrary<T>, n: number): T[] => fc.sample(arb, { numRuns: n, seed: Number(process.env.FC_SEED ?? 8) });

export interface Case {
  argv: string[];
  input: string;
}

/**
 * Compares our tool with the real one on every case (one batch), returning the
 * mismatches (at most 5) so a failing test shows argv, input, ours and theirs.
 * A case ours refuses with `refusal` is not a mismatch: refusing is allowed, guessing is not.
 */
export function mismatches(
  cases: readonly Case[],
  ours: (c: Case) => Real,
  opts: { files?: Record<string, string>; refusal?: (e: unknown) => boolean; shell?: 'bash' | 'dash'; wrap?: (c: Case) => string[] } = {},
): unknown[] {
  const want = realBatch(
    cases.map((c) => ({ argv: opts.wrap ? opts.wrap(c) : c.argv, input: c.input })),
    opts.files,
    opts.shell,
  );
  const bad: unknown[] = [];
  cases.forEach((c, k) => {
    let got: Real;
    try {
      got = ours(c);
    } catch (e) {
      if (opts.refusal?.(e)) return;
      got = { stdout: '', stderr: `THREW ${String(e)}`, status: -1 };
    }
    const w = want[k]!;
    if (got.stdout !== w.stdout || got.stderr !== w.stderr || got.status !== w.status)
      if (bad.length < 5) bad.push({ argv: c.argv, input: c.input, ours: got, real: w });
  });
  return bad;
}
