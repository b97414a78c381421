// RawToSparseStream (bytes arriving in order, e.g. from an EDL <read>) writes
// exactly what rawToSparse writes for the same raw file, whatever the pieces.
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RawToSparseStream, rawToSparse } from '../../src/sparse/index.js';
import { rawFromRegions, rawRegions } from './arbitraries.js';
import { buildRaw, tempDir } from './helpers.js';

describe('RawToSparseStream', () => {
  it('any split of the input into pieces gives rawToSparse\'s bytes', async () => {
    const t = tempDir();
    try {
      await fc.assert(
        fc.asyncProperty(rawRegions, fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 8 }), async (regions, cuts) => {
          const raw = rawFromRegions(regions, buildRaw);
          const rawPath = path.join(t.dir, 'in.raw');
          writeFileSync(rawPath, raw);
          const ref = await rawToSparse(rawPath, path.join(t.dir, 'ref.simg'));
          const out = path.join(t.dir, 'stream.simg');
          const fd = openSync(out, 'w');
          const s = new RawToSparseStream(fd);
          for (let at = 0, i = 0; at < raw.length; i++) {
            const n = Math.min(cuts[i % cuts.length]!, raw.length - at);
            s.write(raw.subarray(at, at + n));
            at += n;
          }
          const r = s.finish();
          closeSync(fd);
          expect(r).toEqual(ref);
          expect(readFileSync(out).equals(readFileSync(path.join(t.dir, 'ref.simg')))).toBe(true);
        }),
        { numRuns: 40 },
      );
    } finally {
      t.cleanup();
    }
  });
});
