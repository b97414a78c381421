// Mutation fuzzing: 10 000+ corrupted sparse images through the strict parser
// and, when one still parses, through resparse + encode. The only failure
// allowed is a typed error; whatever parses must satisfy the format invariants,
// and every piece made from it must itself parse with the same geometry.
import { afterAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { blocksFromSparse } from '../../src/sparse/blocks.js';
import type { Payload } from '../../src/sparse/descriptor.js';
import { encodeSparse } from '../../src/sparse/encode.js';
import { SparseFormatError } from '../../src/sparse/errors.js';
import { readSparseFile } from '../../src/sparse/file.js';
import { parseSparseBuffer, type ParsedSparse } from '../../src/sparse/parse.js';
import { minResparseLimit, resparse } from '../../src/sparse/resparse.js';
import { buildSparse, tempDir, write } from './helpers.js';

const MUTATIONS = 10_000;
const FILE_EVERY = 25; // every 25th mutant also goes through the file reader

const bases = [
  buildSparse([
    { type: 'raw', blocks: 2, seed: 1 },
    { type: 'fill', blocks: 3, value: 0 },
    { type: 'dont-care', blocks: 7 },
    { type: 'fill', blocks: 3, value: 0 },
    { type: 'crc32', crc: 5 },
    { type: 'raw', blocks: 1, seed: 2 },
  ]),
  buildSparse(
    [
      { type: 'dont-care', blocks: 1000 },
      { type: 'raw', blocks: 3, seed: 3 },
      { type: 'fill', blocks: 50, value: 0xffffffff },
    ],
    { blockSize: 1024, fileHeaderSize: 32, chunkHeaderSize: 16 },
  ),
  buildSparse(Array.from({ length: 40 }, (_, i) => ({ type: 'fill' as const, blocks: i + 1, value: i % 3 }))),
];

const INTERESTING = [0, 1, 2, 3, 4, 12, 16, 27, 28, 4095, 4096, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xed26ff3a, 0xcac1, 0xcac2, 0xcac3, 0xcac4];

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(base: Buffer, rand: () => number): Buffer {
  let b = Buffer.from(base);
  const n = 1 + Math.floor(rand() * 3);
  const pick = (max: number): number => Math.floor(rand() * max);
  for (let k = 0; k < n; k++) {
    switch (pick(6)) {
      case 0: // flip random bits
        for (let j = 0; j < 1 + pick(8); j++) b[pick(b.length)]! ^= 1 << pick(8);
        break;
      case 1: // an interesting u32 at a header-ish offset (first 64 bytes or a chunk boundary)
      case 2: {
        if (b.length < 4) break;
        const at = rand() < 0.5 ? pick(Math.min(60, b.length - 3)) : pick(b.length - 3);
        b.writeUInt32LE(INTERESTING[pick(INTERESTING.length)]!, at);
        break;
      }
      case 3: // truncate
        b = b.subarray(0, pick(b.length + 1));
        break;
      case 4: // append junk
        b = Buffer.concat([b, Buffer.from(Array.from({ length: pick(64) }, () => pick(256)))]);
        break;
      case 5: // u16 field (versions, header sizes, chunk type)
        if (b.length >= 12) b.writeUInt16LE(INTERESTING[pick(INTERESTING.length)]! & 0xffff, pick(12));
        break;
    }
  }
  return b;
}

/** Bytes of a payload whose file segments refer to `source`. */
function materialise(payload: Payload, source: Buffer): Buffer {
  return Buffer.concat(
    payload.segments.map((s) =>
      s.kind === 'bytes' ? Buffer.from(s.data) : s.kind === 'zeros' ? Buffer.alloc(s.length) : source.subarray(s.offset, s.offset + s.length),
    ),
  );
}

function checkInvariants(p: ParsedSparse, buf: Buffer): void {
  let block = 0;
  let prevOffset = -1;
  for (const c of p.chunks) {
    expect(c.startBlock).toBe(block);
    expect(c.headerOffset).toBeGreaterThan(prevOffset);
    if (c.type === 'raw') {
      expect(c.dataLength).toBe(c.blocks * p.header.blockSize);
      expect(c.dataOffset + c.dataLength).toBeLessThanOrEqual(buf.length);
    }
    prevOffset = c.headerOffset;
    block += c.blocks;
  }
  expect(block).toBe(p.header.totalBlocks);
  expect(p.chunks).toHaveLength(p.header.totalChunks);
}

function checkResparse(p: ParsedSparse, buf: Buffer): void {
  const image = blocksFromSparse(p);
  const limit = Math.max(minResparseLimit(image.blockSize), 16 * 1024);
  if (limit > 0xffffffff) return;
  for (const runs of resparse(image, limit)) {
    const payload = encodeSparse(runs, image);
    expect(payload.size).toBeLessThanOrEqual(limit);
    const piece = parseSparseBuffer(materialise(payload, buf));
    expect(piece.header.totalBlocks).toBe(p.header.totalBlocks);
    expect(piece.header.blockSize).toBe(p.header.blockSize);
  }
}

describe('fuzz: mutated sparse images', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it(`${MUTATIONS} mutants: only SparseFormatError, never a crash`, async () => {
    const rand = rng(0x5eed);
    const stats = { ok: 0, rejected: 0, fileChecked: 0 };
    for (let i = 0; i < MUTATIONS; i++) {
      const buf = mutate(bases[i % bases.length]!, rand);
      let parsed: ParsedSparse | undefined;
      let error: unknown;
      try {
        parsed = parseSparseBuffer(buf);
      } catch (e) {
        error = e;
      }
      if (error !== undefined) {
        if (!(error instanceof SparseFormatError)) throw new Error(`mutant ${i}: untyped failure ${String(error)}`, { cause: error });
        expect(error.message).toMatch(/offset \d+/);
        stats.rejected++;
      } else {
        checkInvariants(parsed!, buf);
        try {
          checkResparse(parsed!, buf);
        } catch (e) {
          if (!(e instanceof BadInputError)) throw new Error(`mutant ${i}: resparse failed: ${String(e)}`, { cause: e });
        }
        stats.ok++;
      }
      if (i % FILE_EVERY === 0) {
        const path = write(tmp.dir, 'mutant.img', buf);
        const fromFile = await readSparseFile(path).then(
          (r) => ({ header: r.header, chunks: r.chunks }),
          (e: unknown) => e,
        );
        if (error === undefined) expect(fromFile).toEqual(parsed);
        else {
          expect(fromFile).toBeInstanceOf(SparseFormatError);
          expect((fromFile as SparseFormatError).detail).toBe((error as SparseFormatError).detail);
        }
        stats.fileChecked++;
      }
    }
    // The mutator must exercise both outcomes for the test to mean anything.
    expect(stats.rejected).toBeGreaterThan(MUTATIONS / 2);
    expect(stats.ok).toBeGreaterThan(50);
    expect(stats.fileChecked).toBe(MUTATIONS / FILE_EVERY);
  });
});
