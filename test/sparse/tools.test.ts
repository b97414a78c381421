// Property tests against the AOSP reference tools on this machine (v29):
// img2simg, simg2img and simg2simg are the truth for conversion and resparse.
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { blocksFromSparse } from '../../src/sparse/blocks.js';
import { rawToSparse, sparseCrc, sparseToRaw } from '../../src/sparse/convert.js';
import type { Payload } from '../../src/sparse/descriptor.js';
import { readSparseFile } from '../../src/sparse/file.js';
import { writePayload } from '../../src/sparse/payload-io.js';
import { parseSparseBuffer } from '../../src/sparse/parse.js';
import { countPieces, prepareForDownload, splitImage } from '../../src/sparse/prepare.js';
import { minResparseLimit } from '../../src/sparse/resparse.js';
import { limitFor, rawFromRegions, rawRegions, readSizes, sparseLayout, sparseSpecs } from './arbitraries.js';
import { needs } from '../helpers/peers.js';
import { buildRaw, buildSparse, img2simg, padTo, simg2img, simg2simg, tempDir, write, type SparseSpec } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let seq = 0;
const fresh = (): string => join(tmp.dir, `case${++seq}`);

async function writePieces(source: string, pieces: readonly Payload[], base: string): Promise<string[]> {
  const paths: string[] = [];
  for (const [i, p] of pieces.entries()) {
    const path = `${base}.piece${i}`;
    await writePayload(source, p, path);
    paths.push(path);
  }
  return paths;
}

describe('raw images vs img2simg / simg2img', () => {
  it('from-raw is byte-identical to img2simg; to-raw equals simg2img; round trips', needs('img2simg', 'simg2img'), async () => {
    await fc.assert(
      fc.asyncProperty(rawRegions, readSizes, async (regions, readSize) => {
        const base = fresh();
        const raw = rawFromRegions(regions, buildRaw);
        const rawPath = write(tmp.dir, `${base.slice(tmp.dir.length + 1)}.raw`, raw);
        const ours = `${base}.ours.simg`;
        const theirs = `${base}.aosp.simg`;
        await rawToSparse(rawPath, ours, { readSize });
        img2simg(rawPath, theirs);
        expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
        // simg2img accepts ours and reproduces the original (padded to whole blocks)
        expect(simg2img([ours], `${base}.rt.raw`).equals(padTo(raw))).toBe(true);
        // our to-raw equals simg2img on the img2simg-made input
        await sparseToRaw(theirs, `${base}.ours.raw`);
        expect(readFileSync(`${base}.ours.raw`).equals(simg2img([theirs], `${base}.aosp.raw`))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('split pieces are valid, within the limit, and simg2img rebuilds the image', needs('simg2img'), async () => {
    await fc.assert(
      fc.asyncProperty(
        rawRegions.chain((regions) => {
          const size = regions.reduce((n, r) => n + r.bytes, 0);
          return fc.tuple(fc.constant(regions), limitFor(size));
        }),
        async ([regions, limit]) => {
          const base = fresh();
          const raw = rawFromRegions(regions, buildRaw);
          const rawPath = write(tmp.dir, `${base.slice(tmp.dir.length + 1)}.raw`, raw);
          const prepared = await prepareForDownload(rawPath, limit);
          if (raw.length <= limit) {
            expect(prepared).toMatchObject({ format: 'raw', pieces: [{ size: raw.length }] });
            return;
          }
          expect(prepared.format).toBe('sparse');
          const paths = await writePieces(rawPath, prepared.pieces, base);
          for (const [i, p] of prepared.pieces.entries()) {
            expect(p.size).toBeLessThanOrEqual(limit);
            const parsed = parseSparseBuffer(readFileSync(paths[i]!));
            expect(parsed.header.totalBlocks).toBe(Math.ceil(raw.length / 4096));
          }
          expect(simg2img(paths, `${base}.rt.raw`).equals(padTo(raw))).toBe(true);
          expect(await countPieces(rawPath, limit)).toBe(prepared.pieces.length);
        },
      ),
      { numRuns: 30 },
    );
  });
});

/** The expanded image a sparse spec describes, DONT_CARE as zeros. */
function expandSpec(specs: readonly SparseSpec[], sparse: Buffer): { raw: Buffer; crc: number } {
  const parsed = parseSparseBuffer(sparse);
  const blk = parsed.header.blockSize;
  const raw = Buffer.alloc(parsed.header.totalBlocks * blk);
  let crc = 0;
  for (const c of parsed.chunks) {
    if (c.type === 'raw') {
      const data = sparse.subarray(c.dataOffset, c.dataOffset + c.dataLength);
      data.copy(raw, c.startBlock * blk);
      crc = crc32(data, crc);
    } else if (c.type === 'fill') {
      const region = raw.subarray(c.startBlock * blk, (c.startBlock + c.blocks) * blk);
      for (let i = 0; i < region.length; i += 4) region.writeUInt32LE(c.fill, i);
      crc = crc32(region, crc);
    }
  }
  expect(parsed.chunks.length).toBe(specs.length);
  return { raw, crc: crc >>> 0 };
}

interface SparseCase {
  specs: SparseSpec[];
  blockSize: number;
  wideHeaders: boolean;
  limit: number;
}

/** Bytes the chunks before index k take in a piece (gaps cost a skip header), plus the 56-byte overhead. */
function prefixLimits(specs: readonly SparseSpec[], blockSize: number): number[] {
  const out: number[] = [];
  let len = 56;
  let gap = false;
  for (const c of specs) {
    if (c.type === 'dont-care') gap = true;
    else if (c.type !== 'crc32') {
      len += (gap ? 12 : 0) + 12 + (c.type === 'raw' ? c.blocks * blockSize : 4);
      gap = false;
      out.push(len);
    }
  }
  return out;
}

/** Random images with limits either scaled to the image or placed within a few bytes of a chunk boundary. */
const sparseCases: fc.Arbitrary<SparseCase> = fc.tuple(sparseSpecs, sparseLayout).chain(([specs, layout]) => {
  const headers = layout.wideHeaders ? { fh: 32, ch: 16 } : { fh: 28, ch: 12 };
  const size =
    headers.fh +
    specs.reduce((n, c) => n + headers.ch + (c.type === 'raw' ? c.blocks * layout.blockSize : c.type === 'dont-care' ? 0 : 4), 0);
  const edges = prefixLimits(specs, layout.blockSize).filter((l) => l >= 64 * 1024 - 16);
  const limit =
    edges.length === 0
      ? limitFor(size)
      : fc.oneof(limitFor(size), fc.tuple(fc.constantFrom(...edges), fc.integer({ min: -16, max: 16 })).map(([e, d]) => e + d));
  return limit.map((l) => ({ specs, blockSize: layout.blockSize, wideHeaders: layout.wideHeaders, limit: Math.max(64 * 1024, l) }));
});

describe('sparse images vs simg2simg / simg2img', needs('simg2simg', 'simg2img'), () => {
  it('resparse pieces are byte-identical to simg2simg; simg2img rebuilds the image; to-raw and CRC agree', async () => {
    await fc.assert(
      fc.asyncProperty(sparseCases, async ({ specs, blockSize, wideHeaders, limit }) => {
        const img = buildSparse(specs, { blockSize, ...(wideHeaders ? { fileHeaderSize: 32, chunkHeaderSize: 16 } : {}) });
        const base = fresh();
        const path = write(tmp.dir, `${base.slice(tmp.dir.length + 1)}.simg`, img);
        const expected = expandSpec(specs, img);

        const info = await readSparseFile(path);
        const ours = splitImage(path, blocksFromSparse(info), limit);
        const theirs = simg2simg(path, `${base}.aosp`, limit, tmp.dir);
        expect(ours.pieces.map((p) => p.size)).toEqual(theirs.map((b) => b.length));
        const paths = await writePieces(path, ours.pieces, base);
        paths.forEach((p, i) => expect(readFileSync(p).equals(theirs[i]!)).toBe(true));

        expect(simg2img(paths, `${base}.rt.raw`).equals(expected.raw)).toBe(true);
        await sparseToRaw(path, `${base}.ours.raw`);
        expect(readFileSync(`${base}.ours.raw`).equals(expected.raw)).toBe(true);
        expect(await sparseCrc(path)).toBe(expected.crc);
      }),
      { numRuns: 60 },
    );
  });
});

describe('small limits (below 64 KiB, down to the minimum) vs simg2simg', needs('simg2simg'), () => {
  it('matches byte for byte, including the zero-length runs of libsparse\'s second resparse pass', async () => {
    await fc.assert(
      fc.asyncProperty(sparseSpecs, sparseLayout, fc.integer({ min: 0, max: 70_000 }), async (specs, layout, extra) => {
        const img = buildSparse(specs, { blockSize: layout.blockSize });
        const limit = minResparseLimit(layout.blockSize) + extra;
        const base = fresh();
        const path = write(tmp.dir, `${base.slice(tmp.dir.length + 1)}.simg`, img);
        const ours = splitImage(path, blocksFromSparse(await readSparseFile(path)), limit);
        const theirs = simg2simg(path, `${base}.aosp`, limit, tmp.dir);
        expect(ours.pieces.map((p) => p.size)).toEqual(theirs.map((b) => b.length));
        const paths = await writePieces(path, ours.pieces, base);
        paths.forEach((p, i) => expect(readFileSync(p).equals(theirs[i]!)).toBe(true));
      }),
      { numRuns: 40 },
    );
  });

  it('the double pass: a split at 0 bytes leaves a zero-length RAW chunk, and the second pass adds another', async () => {
    const img = buildSparse([
      { type: 'fill', blocks: 1, value: 0 },
      { type: 'raw', blocks: 1, seed: 1 },
    ]);
    const path = write(tmp.dir, 'zero-split.simg', img);
    const ours = splitImage(path, blocksFromSparse(await readSparseFile(path)), 4164);
    const theirs = simg2simg(path, `${tmp.dir}/zero-split.aosp`, 4164, tmp.dir);
    expect(theirs.map((b) => b.length)).toEqual([80, 4148, 40]);
    const paths = await writePieces(path, ours.pieces, `${tmp.dir}/zero-split.ours`);
    paths.forEach((p, i) => expect(readFileSync(p).equals(theirs[i]!)).toBe(true));
    expect(parseSparseBuffer(readFileSync(paths[0]!)).chunks.map((c) => [c.type, c.blocks])).toEqual([
      ['fill', 1],
      ['raw', 0],
      ['raw', 0],
      ['dont-care', 1],
    ]);
  });
});

describe('edge cases', () => {
  it('an empty raw file matches img2simg', needs('img2simg'), async () => {
    const rawPath = write(tmp.dir, 'empty.raw', Buffer.alloc(0));
    await rawToSparse(rawPath, `${tmp.dir}/empty.ours`);
    img2simg(rawPath, `${tmp.dir}/empty.aosp`);
    expect(readFileSync(`${tmp.dir}/empty.ours`).equals(readFileSync(`${tmp.dir}/empty.aosp`))).toBe(true);
  });

  it('a DONT_CARE-only image resparses to one skip-only piece, like simg2simg', needs('simg2simg'), async () => {
    const img = buildSparse([{ type: 'dont-care', blocks: 100000 }]);
    const path = write(tmp.dir, 'skip.simg', img);
    const ours = splitImage(path, blocksFromSparse(await readSparseFile(path)), 64 * 1024);
    const theirs = simg2simg(path, `${tmp.dir}/skip.aosp`, 64 * 1024, tmp.dir);
    expect(theirs).toHaveLength(1);
    expect(ours.pieces).toHaveLength(1);
    await writePayload(path, ours.pieces[0]!, `${tmp.dir}/skip.ours`);
    expect(readFileSync(`${tmp.dir}/skip.ours`).equals(theirs[0]!)).toBe(true);
  });

  it('adjacent FILL chunks with the same value merge (one chunk in the pieces), as in libsparse', needs('simg2simg'), async () => {
    const img = buildSparse([
      { type: 'fill', blocks: 10, value: 7 },
      { type: 'fill', blocks: 10, value: 7 },
      { type: 'raw', blocks: 40, seed: 9 },
    ]);
    const path = write(tmp.dir, 'merge.simg', img);
    const ours = splitImage(path, blocksFromSparse(await readSparseFile(path)), 64 * 1024);
    await writePayload(path, ours.pieces[0]!, `${tmp.dir}/merge.ours`);
    const first = parseSparseBuffer(readFileSync(`${tmp.dir}/merge.ours`));
    expect(first.chunks[0]).toMatchObject({ type: 'fill', blocks: 20, fill: 7 });
    const theirs = simg2simg(path, `${tmp.dir}/merge.aosp`, 64 * 1024, tmp.dir);
    expect(readFileSync(`${tmp.dir}/merge.ours`).equals(theirs[0]!)).toBe(true);
  });

  it('an unsplittable overflowing last run leaves an empty trailing piece, as libsparse does', needs('simg2simg'), async () => {
    // budget = limit - 56 = 65553; the RAW run costs 12 (gap) + 12 + 65536 > budget, but the split
    // point (65553 - 12, aligned down) is the whole run, so it moves whole and a 40-byte piece follows.
    const img = buildSparse([
      { type: 'dont-care', blocks: 10 },
      { type: 'raw', blocks: 16, seed: 4 },
    ]);
    const path = write(tmp.dir, 'tail.simg', img);
    const limit = 65536 + 56 + 12 + 5;
    const ours = splitImage(path, blocksFromSparse(await readSparseFile(path)), limit);
    const theirs = simg2simg(path, `${tmp.dir}/tail.aosp`, limit, tmp.dir);
    expect(theirs.map((b) => b.length)).toEqual([65588, 40]);
    expect(ours.pieces.map((p) => p.size)).toEqual([65588, 40]);
    const paths = await writePieces(path, ours.pieces, `${tmp.dir}/tail.ours`);
    paths.forEach((p, i) => expect(readFileSync(p).equals(theirs[i]!)).toBe(true));
  });

  it('a small file is sent as is, whatever its format', async () => {
    const img = buildSparse([{ type: 'raw', blocks: 1, seed: 1 }]);
    const path = write(tmp.dir, 'small.simg', img);
    const p = await prepareForDownload(path, 1 << 20);
    expect(p).toEqual({ path, format: 'sparse', pieces: [{ size: img.length, segments: [{ kind: 'file', offset: 0, length: img.length }] }] });
    const u = await prepareForDownload(path, 0);
    expect(u.pieces).toHaveLength(1);
  });

  it('rejects a corrupt sparse file instead of sending it as raw', async () => {
    const img = buildSparse([{ type: 'raw', blocks: 4, seed: 1 }]);
    img.writeUInt32LE(5, 16);
    const path = write(tmp.dir, 'corrupt.simg', img);
    await expect(prepareForDownload(path, 8192)).rejects.toThrow(/corrupt\.simg.*total_blks/);
  });

  it('never overwrites its input', async () => {
    const data = buildRaw([{ kind: 'data', bytes: 10000, seed: 5 }]);
    const path = write(tmp.dir, 'self.raw', data);
    await expect(rawToSparse(path, path)).rejects.toThrow(/output is the input file/);
    const simg = `${tmp.dir}/self.simg`;
    await rawToSparse(path, simg);
    await expect(sparseToRaw(simg, simg)).rejects.toThrow(/output is the input file/);
    const prepared = await prepareForDownload(path, 0);
    await expect(writePayload(path, prepared.pieces[0]!, path)).rejects.toThrow(/output is the source file/);
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it("runs longer than 4 GiB stay whole (libsparse's 32-bit run lengths would wrap and turn zeros into DONT_CARE)", async () => {
    // Two adjacent zero FILL chunks of 2 GiB and 2 GiB + 12 KiB merge into one run past 4 GiB, as
    // libsparse merges them; the 2-block RAW chunk makes the 8 KiB limit split the file. (A raw file
    // with a 4 GiB hole reaches the same run, but costs 4 GiB of reads: seconds of system time.)
    const half = 2 ** 19;
    const runBlocks = 2 * half + 3;
    const source = write(tmp.dir, 'huge-fill.simg', buildSparse([
      { type: 'raw', blocks: 2, seed: 9 },
      { type: 'fill', blocks: half, value: 0 },
      { type: 'fill', blocks: half + 3, value: 0 },
    ]));
    const p = await prepareForDownload(source, 8192);
    const pieces = (await writePieces(source, p.pieces, fresh())).map((f) => parseSparseBuffer(readFileSync(f)));
    expect(pieces.length).toBeGreaterThan(1);
    for (const piece of pieces) expect(piece.header.totalBlocks).toBe(2 + runBlocks);
    const fills = pieces.flatMap((piece) => piece.chunks.filter((c) => c.type === 'fill'));
    expect(fills).toEqual([expect.objectContaining({ fill: 0, startBlock: 2, blocks: runBlocks })]);
  });

  it('refuses limits too small to make progress', async () => {
    const path = write(tmp.dir, 'limit.raw', Buffer.alloc(100000, 1));
    await expect(prepareForDownload(path, 100)).rejects.toThrow(/limit 100 is out of range/);
    await expect(prepareForDownload(path, -1)).rejects.toThrow(/invalid sparse limit/);
  });
});
