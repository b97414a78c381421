import { afterAll, describe, expect, it } from 'vitest';
import { BadInputError, ExitCode } from '../../src/errors.js';
import { SparseFormatError } from '../../src/sparse/errors.js';
import { isSparseFile, readSparseFile } from '../../src/sparse/file.js';
import { isSparse, parseSparseBuffer } from '../../src/sparse/parse.js';
import { buildSparse, tempDir, write } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const good = buildSparse([
  { type: 'raw', blocks: 2, seed: 1 },
  { type: 'fill', blocks: 3, value: 0xdeadbeef },
  { type: 'dont-care', blocks: 5 },
  { type: 'crc32', crc: 0x1234 },
  { type: 'raw', blocks: 1, seed: 2 },
]);

/** Parses both in memory and from a file; both must fail the same way. */
async function expectBoth(buf: Buffer, match: RegExp): Promise<SparseFormatError> {
  let memErr: unknown;
  try {
    parseSparseBuffer(buf);
  } catch (e) {
    memErr = e;
  }
  expect(memErr).toBeInstanceOf(SparseFormatError);
  expect((memErr as Error).message).toMatch(match);
  const path = write(tmp.dir, `bad-${Math.random().toString(36).slice(2)}.img`, buf);
  const fileErr = await readSparseFile(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(fileErr).toBeInstanceOf(SparseFormatError);
  expect((fileErr as Error).message).toContain(path);
  expect((fileErr as Error).message).toMatch(match);
  expect((fileErr as SparseFormatError).offset).toBe((memErr as SparseFormatError).offset);
  return memErr as SparseFormatError;
}

describe('parseSparseBuffer', () => {
  it('parses every chunk type with block positions and data offsets', () => {
    const { header, chunks } = parseSparseBuffer(good);
    expect(header).toEqual({
      majorVersion: 1,
      minorVersion: 0,
      fileHeaderSize: 28,
      chunkHeaderSize: 12,
      blockSize: 4096,
      totalBlocks: 11,
      totalChunks: 5,
      imageChecksum: 0,
    });
    expect(chunks.map((c) => [c.type, c.startBlock, c.blocks, c.headerOffset])).toEqual([
      ['raw', 0, 2, 28],
      ['fill', 2, 3, 28 + 12 + 8192],
      ['dont-care', 5, 5, 28 + 12 + 8192 + 16],
      ['crc32', 10, 0, 28 + 12 + 8192 + 16 + 12],
      ['raw', 10, 1, 28 + 12 + 8192 + 16 + 12 + 16],
    ]);
    expect(chunks[0]).toMatchObject({ dataOffset: 40, dataLength: 8192 });
    expect(chunks[1]).toMatchObject({ fill: 0xdeadbeef });
    expect(chunks[3]).toMatchObject({ crc: 0x1234 });
    expect(chunks[4]).toMatchObject({ dataOffset: 28 + 12 + 8192 + 16 + 12 + 16 + 12, dataLength: 4096 });
  });

  it('skips the extra bytes of longer file and chunk headers', () => {
    const img = buildSparse(
      [
        { type: 'raw', blocks: 1, seed: 3 },
        { type: 'fill', blocks: 2, value: 7 },
      ],
      { fileHeaderSize: 40, chunkHeaderSize: 20 },
    );
    const { header, chunks } = parseSparseBuffer(img);
    expect(header.fileHeaderSize).toBe(40);
    expect(header.chunkHeaderSize).toBe(20);
    expect(chunks[0]).toMatchObject({ headerOffset: 40, dataOffset: 60, dataLength: 4096 });
    expect(chunks[1]).toMatchObject({ headerOffset: 60 + 4096, fill: 7, startBlock: 1, blocks: 2 });
  });

  it('works on a view into a larger buffer', () => {
    const big = Buffer.concat([Buffer.alloc(13, 0xaa), good]);
    expect(parseSparseBuffer(big.subarray(13)).chunks).toHaveLength(5);
  });

  it('isSparse checks the magic only', () => {
    expect(isSparse(good)).toBe(true);
    expect(isSparse(good.subarray(0, 3))).toBe(false);
    expect(isSparse(Buffer.from([0x3a, 0xff, 0x26, 0xec]))).toBe(false);
  });
});

describe('strictness: each corruption names what and where', () => {
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };

  it('bad magic', async () => {
    const e = await expectBoth(mutate((b) => b.writeUInt32LE(0xed26ff3b, 0)), /bad magic: expected 0xed26ff3a, found 0xed26ff3b/);
    expect(e.offset).toBe(0);
    expect(e).toBeInstanceOf(BadInputError);
    expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
  });

  it('truncated header', async () => {
    await expectBoth(good.subarray(0, 20), /truncated file header: expected at least 28 bytes, found 20/);
  });

  it('unsupported major version', async () => {
    await expectBoth(mutate((b) => b.writeUInt16LE(2, 4)), /offset 4 .*major version: expected 1, found 2/);
  });

  it('zero block size and block size not a multiple of 4', async () => {
    await expectBoth(mutate((b) => b.writeUInt32LE(0, 12)), /offset 12 .*block size: expected a non-zero multiple of 4, found 0/);
    await expectBoth(mutate((b) => b.writeUInt32LE(4094, 12)), /found 4094/);
  });

  it('header sizes below the minimum', async () => {
    await expectBoth(mutate((b) => b.writeUInt16LE(27, 8)), /file header size too small: expected at least 28, found 27/);
    await expectBoth(mutate((b) => b.writeUInt16LE(8, 10)), /chunk header size too small: expected at least 12, found 8/);
  });

  it('wrong total_blks (too many and too few)', async () => {
    await expectBoth(mutate((b) => b.writeUInt32LE(12, 16)), /chunks cover 11 blocks but the header's total_blks is 12/);
    const e = await expectBoth(mutate((b) => b.writeUInt32LE(10, 16)), /chunk 4, offset 8276 .*ends at block 11, past the header's total_blks 10/);
    expect(e.chunkIndex).toBe(4);
  });

  it('truncated file: chunk running past the end, with its index and offset', async () => {
    const e = await expectBoth(good.subarray(0, 28 + 12 + 100), /chunk 0, offset 28 \(0x1c\): chunk runs past the end of the file: it ends at byte 8232, file has 140 bytes/);
    expect(e.chunkIndex).toBe(0);
    expect(e.offset).toBe(28);
  });

  it('total_chunks claiming more chunks than the file can hold', async () => {
    await expectBoth(mutate((b) => b.writeUInt32LE(0xffffffff, 20)), /declares 4294967295 chunks, which need at least \d+ bytes; file has \d+/);
    await expectBoth(mutate((b) => b.writeUInt32LE(6, 20)), /chunk 5, offset \d+ .*truncated chunk header/);
  });

  it('RAW chunk whose size disagrees with its block count', async () => {
    const e = await expectBoth(mutate((b) => b.writeUInt32LE(3, 28 + 4)), /chunk 0, offset 28 .*RAW chunk of 3 blocks: expected 12288 data bytes \(total_sz 12300\), found 8192/);
    expect(e.chunkIndex).toBe(0);
  });

  it('FILL, DONT_CARE and CRC32 chunks with wrong payload sizes', async () => {
    const fillAt = 28 + 12 + 8192;
    await expectBoth(mutate((b) => b.writeUInt32LE(20, fillAt + 8)), /chunk 1, offset 8232 .*FILL chunk: expected 4 payload bytes, found 8/);
    await expectBoth(mutate((b) => b.writeUInt32LE(16, fillAt + 16 + 8)), /chunk 2, .*DONT_CARE chunk: expected 0 payload bytes, found 4/);
    await expectBoth(mutate((b) => b.writeUInt32LE(1, fillAt + 28 + 4)), /chunk 3, .*CRC32 chunk: expected chunk_sz 0, found 1/);
  });

  it('chunk total_sz smaller than its header', async () => {
    await expectBoth(mutate((b) => b.writeUInt32LE(4, 28 + 8)), /chunk 0, offset 28 .*total_sz 4 is smaller than the chunk header size 12/);
  });

  it('unknown chunk type', async () => {
    await expectBoth(mutate((b) => b.writeUInt16LE(0xcac5, 28)), /chunk 0, offset 28 .*unknown chunk type 0xcac5/);
  });

  it('absurd sizes: an expanded size beyond 2^53 bytes', async () => {
    const img = buildSparse([{ type: 'dont-care', blocks: 0xffffffff }], { blockSize: 0x7ffffffc });
    await expectBoth(img, /absurd expanded size/);
  });
});

describe('readSparseFile', () => {
  it('agrees with the in-memory parser and reports trailing bytes', async () => {
    const path = write(tmp.dir, 'good-trailing.img', Buffer.concat([good, Buffer.alloc(5)]));
    const info = await readSparseFile(path);
    const mem = parseSparseBuffer(good);
    expect(info.header).toEqual(mem.header);
    expect(info.chunks).toEqual(mem.chunks);
    expect(info.trailingBytes).toBe(5);
    expect(info.fileSize).toBe(good.length + 5);
    expect(await isSparseFile(path)).toBe(true);
  });

  it('reads many small chunks correctly across its read-ahead window', async () => {
    const specs = Array.from({ length: 20000 }, (_, i) =>
      i % 3 === 2 ? ({ type: 'dont-care', blocks: 1 } as const) : ({ type: 'fill', blocks: 1, value: i } as const),
    );
    const img = buildSparse(specs);
    const path = write(tmp.dir, 'many.img', img);
    const info = await readSparseFile(path);
    expect(info.chunks).toEqual(parseSparseBuffer(img).chunks);
    expect(info.chunks[19999]).toMatchObject({ type: 'fill', fill: 19999, startBlock: 19999 });
  });

  it('names a missing file as bad input', async () => {
    await expect(readSparseFile(`${tmp.dir}/missing.img`)).rejects.toThrow(/missing\.img: cannot open: no such file/);
    await expect(isSparseFile(`${tmp.dir}/missing.img`)).rejects.toBeInstanceOf(BadInputError);
  });
});
