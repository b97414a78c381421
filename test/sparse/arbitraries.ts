// fast-check generators for random raw and sparse images (small: <= ~2 MiB).
import fc from 'fast-check';
import type { RawRegion, SparseSpec } from './helpers.js';

const FILLS = [0, 0xffffffff, 0x12345678, 0xdeadbeef];

const regionBytes = fc.oneof(
  fc.integer({ min: 1, max: 48 }).map((n) => n * 4096),
  fc.integer({ min: 1, max: 160_000 }),
);

export type RawRegionSpec = RawRegion | { kind: 'almost'; bytes: number; value: number; seed: number };

/** Data, fill and zero regions of arbitrary (often unaligned) sizes, plus "almost fill" blocks. */
export const rawRegions: fc.Arbitrary<RawRegionSpec[]> = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('data' as const), bytes: regionBytes, seed: fc.integer() }),
    fc.record({ kind: fc.constant('fill' as const), bytes: regionBytes, value: fc.oneof(fc.constantFrom(...FILLS), fc.nat()) }),
    fc.record({ kind: fc.constant('fill' as const), bytes: regionBytes, value: fc.constant(0) }),
    fc.record({ kind: fc.constant('almost' as const), bytes: regionBytes, value: fc.constantFrom(...FILLS), seed: fc.nat() }),
  ),
  { minLength: 1, maxLength: 10 },
);

/** Materialises region specs; "almost" = a fill pattern with one byte changed per 4 KiB. */
export function rawFromRegions(regions: readonly RawRegionSpec[], build: (r: readonly RawRegion[]) => Buffer): Buffer {
  return Buffer.concat(
    regions.map((r) => {
      if (r.kind !== 'almost') return build([r]);
      const b = build([{ kind: 'fill', bytes: r.bytes, value: r.value }]);
      for (let i = 0; i < b.length; i += 4096) {
        const at = i + ((r.seed + i) % 4096);
        if (at < b.length) b[at]! ^= 0x01;
      }
      return b;
    }),
  );
}

export const sparseSpecs: fc.Arbitrary<SparseSpec[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ type: fc.constant('raw' as const), blocks: fc.integer({ min: 1, max: 40 }), seed: fc.integer() }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('fill' as const), blocks: fc.integer({ min: 1, max: 300 }), value: fc.constantFrom(...FILLS) }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('dont-care' as const), blocks: fc.integer({ min: 1, max: 500 }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('crc32' as const), crc: fc.nat() }) },
  ),
  { minLength: 1, maxLength: 14 },
);

export const sparseLayout = fc.record({
  blockSize: fc.constantFrom(4096, 4096, 4096, 1024, 8192),
  wideHeaders: fc.boolean(),
});

/** A limit of at least 64 KiB, scaled to the image so that most cases split. */
export function limitFor(size: number): fc.Arbitrary<number> {
  return fc.double({ min: 0.05, max: 1.3, noNaN: true }).map((f) => Math.max(64 * 1024, Math.floor(size * f)));
}

/** Scan buffer sizes: small ones make runs cross read-buffer edges (merging across buffers). */
export const readSizes: fc.Arbitrary<number | undefined> = fc.constantFrom(undefined, 4096, 8192, 12288, 65536);
