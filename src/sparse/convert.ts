// Whole-file conversions (img2simg / simg2img equivalents) and the CRCs Xiaomi
// ROMs record. All stream through bounded buffers.
import { writeSync } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { BadInputError } from '../errors.js';
import { chunkHeader, fileHeader } from './encode.js';
import { fileError, readSparseFile, withFile } from './file.js';
import { CHUNK_HEADER_SIZE, CHUNK_TYPE_FILL, CHUNK_TYPE_RAW, SPARSE_HEADER_SIZE } from './parse.js';
import { classifyBlocks, RAW_BLOCK_SIZE, readFullySync, scanRawFile, yieldToEventLoop, YIELD_EVERY, type ScanOptions } from './raw-scan.js';

/** Small on purpose: the buffer stays in the CPU cache (see raw-scan.ts). */
const IO_SIZE = 128 * 1024;
/** Largest RAW chunk payload whose total_sz still fits 32 bits. */
const RAW_CHUNK_MAX = Math.floor((0xffffffff - CHUNK_HEADER_SIZE) / RAW_BLOCK_SIZE) * RAW_BLOCK_SIZE;

export interface ConversionResult {
  blockSize: number;
  totalBlocks: number;
  chunks: number;
  /** Bytes written. */
  outputSize: number;
}

/**
 * Raw image -> sparse file, byte-identical to img2simg (AOSP v29): one pass,
 * each data run streamed straight to the output behind a reserved chunk header
 * that is filled in when the run ends; the file header is written last.
 */
export async function rawToSparse(rawPath: string, outPath: string, opts: ScanOptions = {}): Promise<ConversionResult> {
  return withFile(rawPath, async (input, size) => {
    return withOutput(outPath, input, async (out) => {
      const w = new SparseStreamWriter(out.fd);
      await scanRawFile(
        input.fd,
        size,
        ({ buf, runs }) => {
          for (const r of runs) {
            if (r.kind === 'fill') w.fill(r.to - r.from, r.value);
            else w.data(buf.subarray(r.from, r.to));
          }
        },
        opts.readSize,
      );
      w.finish();
      const totalBlocks = Math.ceil(size / RAW_BLOCK_SIZE);
      writeAllSync(out.fd, fileHeader(RAW_BLOCK_SIZE, totalBlocks, w.chunks), 0);
      return { blockSize: RAW_BLOCK_SIZE, totalBlocks, chunks: w.chunks, outputSize: w.position };
    });
  });
}

/**
 * rawToSparse for data that arrives in order rather than from a file (e.g. read
 * from a device): write() the raw bytes in any piece sizes, then finish(). The
 * output is the one rawToSparse would write for the same bytes. Memory: one
 * block of carry-over; the file header is written last.
 */
export class RawToSparseStream {
  private readonly w: SparseStreamWriter;
  private carry = Buffer.alloc(0);
  private size = 0;

  constructor(private readonly fd: number) {
    this.w = new SparseStreamWriter(fd);
  }

  write(bytes: Uint8Array): void {
    this.size += bytes.length;
    let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    if (this.carry.length > 0) {
      const need = RAW_BLOCK_SIZE - this.carry.length;
      if (buf.length < need) {
        this.carry = Buffer.concat([this.carry, buf]);
        return;
      }
      this.emit(Buffer.concat([this.carry, buf.subarray(0, need)]));
      buf = buf.subarray(need);
    }
    const whole = buf.length - (buf.length % RAW_BLOCK_SIZE);
    if (whole > 0) this.emit(buf.subarray(0, whole));
    this.carry = Buffer.from(buf.subarray(whole));
  }

  /** Ends the last run (a trailing partial block is data) and writes the file header. */
  finish(): ConversionResult {
    if (this.carry.length > 0) this.emit(this.carry);
    this.carry = Buffer.alloc(0);
    this.w.finish();
    const totalBlocks = Math.ceil(this.size / RAW_BLOCK_SIZE);
    writeAllSync(this.fd, fileHeader(RAW_BLOCK_SIZE, totalBlocks, this.w.chunks), 0);
    return { blockSize: RAW_BLOCK_SIZE, totalBlocks, chunks: this.w.chunks, outputSize: this.w.position };
  }

  private emit(buf: Buffer): void {
    for (const r of classifyBlocks(buf, buf.length)) {
      if (r.kind === 'fill') this.w.fill(r.to - r.from, r.value);
      else this.w.data(buf.subarray(r.from, r.to));
    }
  }
}

/**
 * Appends RAW/FILL chunks, merging consecutive runs the way libsparse does.
 * Data goes out as soon as it is scanned, behind a reserved chunk header that
 * is written when the run ends (positional writes).
 */
class SparseStreamWriter {
  position = SPARSE_HEADER_SIZE;
  chunks = 0;
  private run: { kind: 'data'; headerAt: number; len: number } | { kind: 'fill'; value: number; len: number } | undefined;

  constructor(private readonly fd: number) {}

  fill(len: number, value: number): void {
    if (this.run?.kind === 'fill' && this.run.value === value) {
      this.run.len += len;
      return;
    }
    this.endRun();
    this.run = { kind: 'fill', value, len };
  }

  data(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      if (this.run?.kind !== 'data' || this.run.len === RAW_CHUNK_MAX) {
        this.endRun();
        this.run = { kind: 'data', headerAt: this.position, len: 0 };
        this.position += CHUNK_HEADER_SIZE;
      }
      const take = Math.min(bytes.length - at, RAW_CHUNK_MAX - this.run.len);
      writeAllSync(this.fd, bytes.subarray(at, at + take), this.position);
      this.position += take;
      this.run.len += take;
      at += take;
    }
  }

  finish(): void {
    this.endRun();
  }

  private endRun(): void {
    const run = this.run;
    this.run = undefined;
    if (!run) return;
    this.chunks++;
    if (run.kind === 'fill') {
      const chunk = chunkHeader(CHUNK_TYPE_FILL, run.len / RAW_BLOCK_SIZE, CHUNK_HEADER_SIZE + 4, 4);
      new DataView(chunk.buffer).setUint32(CHUNK_HEADER_SIZE, run.value, true);
      writeAllSync(this.fd, chunk, this.position);
      this.position += chunk.length;
      return;
    }
    const blocks = Math.ceil(run.len / RAW_BLOCK_SIZE);
    const pad = blocks * RAW_BLOCK_SIZE - run.len;
    if (pad > 0) {
      writeAllSync(this.fd, new Uint8Array(pad), this.position);
      this.position += pad;
    }
    writeAllSync(this.fd, chunkHeader(CHUNK_TYPE_RAW, blocks, CHUNK_HEADER_SIZE + blocks * RAW_BLOCK_SIZE), run.headerAt);
  }
}

function writeAllSync(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) {
    done += writeSync(fd, data, done, data.length - done, position + done);
  }
}

/** Calls `use` with consecutive pieces of [offset, offset+length) of the file (buffer reused). */
async function forEachRange(fd: number, offset: number, length: number, buf: Buffer, use: (piece: Buffer, at: number) => void): Promise<void> {
  let sinceYield = 0;
  for (let done = 0; done < length; ) {
    const n = readFullySync(fd, buf, Math.min(buf.length, length - done), offset + done);
    use(buf.subarray(0, n), done);
    done += n;
    sinceYield += n;
    if (sinceYield >= YIELD_EVERY) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
}

/**
 * Sparse file -> raw image, content-identical to simg2img: RAW data copied,
 * FILL expanded, DONT_CARE (and zero FILL) left as holes, length total_blks * blk_sz.
 */
export async function sparseToRaw(sparsePath: string, outPath: string): Promise<ConversionResult> {
  const info = await readSparseFile(sparsePath);
  const { blockSize, totalBlocks } = info.header;
  return withFile(sparsePath, async (input) => {
    return withOutput(outPath, input, async (out) => {
      const buf = Buffer.allocUnsafe(IO_SIZE);
      for (const c of info.chunks) {
        const at = c.startBlock * blockSize;
        if (c.type === 'raw') {
          await forEachRange(input.fd, c.dataOffset, c.dataLength, buf, (piece, done) => writeAllSync(out.fd, piece, at + done));
        } else if (c.type === 'fill' && c.fill !== 0) {
          const pattern = patternBuffer(c.fill, Math.min(c.blocks * blockSize, IO_SIZE));
          await forEachPattern(pattern, c.blocks * blockSize, (piece, done) => writeAllSync(out.fd, piece, at + done));
        }
      }
      const outputSize = totalBlocks * blockSize;
      await out.truncate(outputSize);
      return { blockSize, totalBlocks, chunks: info.chunks.length, outputSize };
    });
  });
}

/** Calls `use` with `pattern` (or its head) repeated to cover `length` bytes. */
async function forEachPattern(pattern: Buffer, length: number, use: (piece: Buffer, at: number) => void): Promise<void> {
  let sinceYield = 0;
  for (let done = 0; done < length; done += pattern.length) {
    use(pattern.subarray(0, Math.min(pattern.length, length - done)), done);
    sinceYield += pattern.length;
    if (sinceYield >= YIELD_EVERY) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
}

function patternBuffer(value: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(Math.ceil(length / 4) * 4);
  b.writeUInt32LE(value, 0);
  for (let filled = 4; filled < b.length; filled *= 2) b.copyWithin(filled, 0, Math.min(filled, b.length - filled));
  return b;
}

/**
 * Xiaomi's sparsecrclist CRC: zlib CRC-32 over the expanded RAW and FILL data in
 * chunk order; DONT_CARE and CRC32 chunks contribute nothing.
 */
export async function sparseCrc(path: string): Promise<number> {
  const info = await readSparseFile(path);
  const blockSize = info.header.blockSize;
  return withFile(path, async (input) => {
    const buf = Buffer.allocUnsafe(IO_SIZE);
    let crc = 0;
    for (const c of info.chunks) {
      if (c.type === 'raw') {
        await forEachRange(input.fd, c.dataOffset, c.dataLength, buf, (piece) => {
          crc = crc32(piece, crc);
        });
      } else if (c.type === 'fill') {
        const length = c.blocks * blockSize;
        await forEachPattern(patternBuffer(c.fill, Math.min(length, IO_SIZE)), length, (piece) => {
          crc = crc32(piece, crc);
        });
      }
    }
    return crc >>> 0;
  });
}

/** Xiaomi's crclist CRC: zlib CRC-32 of the whole file. */
export async function fileCrc32(path: string): Promise<number> {
  return withFile(path, async (input, size) => {
    let crc = 0;
    await forEachRange(input.fd, 0, size, Buffer.allocUnsafe(IO_SIZE), (piece) => {
      crc = crc32(piece, crc);
    });
    return crc >>> 0;
  });
}

/**
 * Writes `path` through `use`, refusing to overwrite the input it is made from
 * and removing a half-written output when `use` fails.
 */
async function withOutput<T>(path: string, input: FileHandle, use: (out: FileHandle) => Promise<T>): Promise<T> {
  const [src, dst] = await Promise.all([input.stat(), stat(path).catch(() => undefined)]);
  if (dst && dst.dev === src.dev && dst.ino === src.ino) {
    throw new BadInputError(`${path}: output is the input file; choose another output path`, { code: 'input.same-file' });
  }
  let out: FileHandle;
  try {
    out = await open(path, 'w');
  } catch (err) {
    throw fileError(path, err);
  }
  try {
    const result = await use(out);
    await out.close();
    return result;
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    throw err;
  }
}
