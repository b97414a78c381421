// Everything a ROM check needs from an image's bytes, in one streamed pass:
// MD5 (md5sum.xml), zlib CRC-32 of the file (crclist.txt) and, for a sparse
// image, strict format validation and Xiaomi's sparse CRC (sparsecrclist.txt:
// CRC-32 over RAW data and expanded FILL blocks in chunk order). The digester
// is fed bytes in order, so it serves a file read from disk and a file being
// extracted from an archive alike (hash-pool.ts runs it in worker threads).
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { CHUNK_HEADER_SIZE, CHUNK_TYPE_CRC32, CHUNK_TYPE_FILL, CHUNK_TYPE_RAW, SPARSE_MAGIC, parseSparseSteps, type ParsedSparse, type ReadRequest } from '../sparse/parse.js';
import { SparseFormatError } from '../sparse/errors.js';

const IO_SIZE = 1 << 20;

/** zlib CRC-32 (native; package.json requires Node >= 20.15, where node:zlib has crc32). */
export function crc32(data: Uint8Array, prev = 0): number {
  return zlib.crc32(data, prev) >>> 0;
}

// ---- CRC-32 of concatenations without the bytes (zlib's crc32_combine) ----

const POLY = 0xedb88320;

/** a(x) * b(x) modulo the CRC polynomial, bit-reflected as zlib does. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) mod p for k = 0..63. */
const X2N: number[] = (() => {
  const t = [0x40000000];
  for (let k = 1; k < 64; k++) t.push(multModP(t[k - 1]!, t[k - 1]!));
  return t;
})();

/** x^(n * 2^k) mod p; n may exceed 2^32 (file lengths). */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000;
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k % 64]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** CRC-32 of A‖B from crc(A), crc(B) and B's length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ crcB) >>> 0;
}

/** CRC-32 of `unit` repeated `count` times, continuing from `prev`: O(log count), whatever the length. */
export function crc32Repeat(unit: Uint8Array, count: number, prev = 0): number {
  let result = 0;
  let resultLength = 0;
  let base = crc32(unit);
  let baseLength = unit.length;
  for (let n = count; n > 0; n = Math.floor(n / 2)) {
    if (n % 2 === 1) {
      result = resultLength === 0 ? base : crc32Combine(result, base, baseLength);
      resultLength += baseLength;
    }
    if (n > 1) {
      base = crc32Combine(base, base, baseLength);
      baseLength *= 2;
    }
  }
  return resultLength === 0 ? prev >>> 0 : crc32Combine(prev, result, resultLength);
}

// ---- the digest ----

export type SparseDigest =
  | { valid: true; crc: number; blockSize: number; totalBlocks: number; chunks: number }
  | { valid: false; error: string };

export interface FileDigest {
  size: number;
  md5: string;
  crc32: number;
  /** Present when the file starts with the sparse magic. */
  sparse?: SparseDigest;
}

export interface DigestOptions {
  /** MD5 only (an archive's name check, or one half of a split digest): no CRC, no sparse parsing. */
  md5Only?: boolean;
  /** Everything but the MD5 (the other half; `md5` is then ''). Two threads can digest one large file. */
  skipMd5?: boolean;
}

/** The two halves of a split digest, as one. */
export function joinDigests(md5Half: FileDigest, rest: FileDigest): FileDigest {
  if (md5Half.size !== rest.size) throw new Error(`internal: halves of one digest disagree on the size (${md5Half.size} vs ${rest.size})`);
  return { ...rest, md5: md5Half.md5 };
}

/** Byte-fed digest of one file of known size. */
export class FileDigester {
  private readonly md5: Hash | undefined;
  private crc = 0;
  private done = 0;
  private head = Buffer.alloc(4);
  private sparse: SparseStream | undefined;
  private sniffed = false;

  constructor(
    private readonly size: number,
    private readonly opts: DigestOptions = {},
  ) {
    this.md5 = opts.skipMd5 ? undefined : createHash('md5');
  }

  update(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.md5?.update(chunk);
    if (this.opts.md5Only) {
      this.done += chunk.length;
      return;
    }
    this.crc = zlib.crc32(chunk, this.crc);
    if (!this.sniffed) this.sniff(chunk);
    this.sparse?.feed(chunk);
    this.done += chunk.length;
  }

  /** The first 4 bytes decide: the sparse magic starts a sparse parse from offset 0. */
  private sniff(chunk: Uint8Array): void {
    const take = Math.min(4 - this.done, chunk.length);
    this.head.set(chunk.subarray(0, take), this.done);
    if (this.done + take < 4 && this.done + take < this.size) return;
    this.sniffed = true;
    if (this.done + take === 4 && this.head.readUInt32LE(0) === SPARSE_MAGIC) {
      this.sparse = new SparseStream(this.size);
      if (this.done > 0) this.sparse.feed(this.head.subarray(0, this.done)); // bytes seen before this chunk
    }
  }

  digest(): FileDigest {
    if (this.done !== this.size) throw new Error(`internal: digest of ${this.done} bytes, expected ${this.size}`);
    const out: FileDigest = { size: this.size, md5: this.md5?.digest('hex') ?? '', crc32: this.crc >>> 0 };
    if (this.sparse) out.sparse = this.sparse.finish();
    return out;
  }
}

/**
 * Drives the strict sparse parser (src/sparse/parse.ts) from a byte stream:
 * its read requests come in increasing offsets, so each is served as the bytes
 * pass by. RAW payloads and FILL values found on the way feed the sparse CRC.
 */
class SparseStream {
  private readonly steps: Generator<ReadRequest, ParsedSparse, Uint8Array>;
  private want: ReadRequest | undefined;
  private wantKind: 'file-header' | 'chunk-header' | 'payload' = 'file-header';
  private readonly acc = Buffer.alloc(64);
  private accLength = 0;
  private pos = 0;
  private chunkHeaderSize = CHUNK_HEADER_SIZE;
  private blockSize = 0;
  private rawEnd = -1;
  private rawStart = -1;
  /** The chunk whose 4-byte payload is requested next. */
  private pending: { type: number; blocks: number } | undefined;
  private crc = 0;
  private error: string | undefined;
  private result: ParsedSparse | undefined;

  constructor(fileSize: number) {
    this.steps = parseSparseSteps(fileSize);
    this.advance(undefined);
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && this.error === undefined) {
      const left = chunk.length - i;
      if (this.pos >= this.rawStart && this.pos < this.rawEnd) {
        const n = Math.min(left, this.rawEnd - this.pos);
        this.crc = zlib.crc32(chunk.subarray(i, i + n), this.crc);
        i += n;
        this.pos += n;
        continue;
      }
      // Bytes nobody asked for (wide headers, the parsed-to-the-end tail): skip to the next RAW payload or request.
      const next = Math.min(this.want?.offset ?? Infinity, this.rawStart > this.pos ? this.rawStart : Infinity);
      if (next === Infinity) return;
      if (this.pos < next) {
        const n = Math.min(left, next - this.pos);
        i += n;
        this.pos += n;
        continue;
      }
      if (!this.want) return;
      const n = Math.min(left, this.want.length - this.accLength);
      this.acc.set(chunk.subarray(i, i + n), this.accLength);
      this.accLength += n;
      i += n;
      this.pos += n;
      if (this.accLength === this.want.length) this.served(this.acc.subarray(0, this.accLength));
    }
  }

  private served(bytes: Buffer): void {
    const kind = this.wantKind;
    const at = this.want!.offset;
    // Read what is needed now: the parser may keep a view of these bytes only until its next step.
    if (kind === 'file-header' && bytes.length >= 28) {
      this.chunkHeaderSize = bytes.readUInt16LE(10);
      this.blockSize = bytes.readUInt32LE(12);
    }
    const chunk = kind === 'chunk-header' ? { type: bytes.readUInt16LE(0), blocks: bytes.readUInt32LE(4), total: bytes.readUInt32LE(8) } : undefined;
    const value = kind === 'payload' ? bytes.readUInt32LE(0) : 0;
    if (!this.advance(Buffer.from(bytes))) return; // the parser refused these bytes
    if (chunk?.type === CHUNK_TYPE_RAW) {
      this.rawStart = at + this.chunkHeaderSize;
      this.rawEnd = at + chunk.total;
    } else if (chunk?.type === CHUNK_TYPE_FILL || chunk?.type === CHUNK_TYPE_CRC32) {
      this.pending = chunk;
    }
    if (kind === 'payload' && this.pending) {
      if (this.pending.type === CHUNK_TYPE_FILL) this.crc = fillCrc(this.crc, value, this.pending.blocks, this.blockSize);
      this.pending = undefined;
    }
    // The next request's kind: a FILL/CRC32 chunk's value follows its header.
    if (this.want) this.wantKind = kind === 'chunk-header' && this.pending ? 'payload' : 'chunk-header';
  }

  /** Steps the parser; false when it threw (the error is kept). */
  private advance(input: Uint8Array | undefined): boolean {
    this.accLength = 0;
    try {
      const next = input === undefined ? this.steps.next() : this.steps.next(input);
      if (next.done) {
        this.want = undefined;
        this.result = next.value;
      } else {
        this.want = next.value;
      }
      return true;
    } catch (err) {
      this.error = err instanceof SparseFormatError ? err.message : String((err as Error).message ?? err);
      this.want = undefined;
      return false;
    }
  }

  finish(): SparseDigest {
    if (this.error !== undefined) return { valid: false, error: this.error };
    if (!this.result) return { valid: false, error: 'truncated: the file ends inside its chunk list' };
    return { valid: true, crc: this.crc >>> 0, blockSize: this.result.header.blockSize, totalBlocks: this.result.header.totalBlocks, chunks: this.result.chunks.length };
  }
}

/** CRC-32 continued over `blocks` blocks of the 32-bit little-endian `value` repeated (O(log n): FILLs can be huge). */
function fillCrc(prev: number, value: number, blocks: number, blockSize: number): number {
  const unit = Buffer.allocUnsafe(4);
  unit.writeUInt32LE(value >>> 0, 0);
  return crc32Repeat(unit, (blocks * blockSize) / 4, prev);
}

/** Digest of a file on disk, read in 1 MiB pieces on the calling thread. */
export async function digestFile(path: string, onBytes?: (done: number) => void, opts: DigestOptions = {}): Promise<FileDigest> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const d = new FileDigester(size, opts);
    const buf = Buffer.allocUnsafe(IO_SIZE);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), done);
      if (bytesRead === 0) throw new Error(`${path}: file shrank while reading (${done} of ${size} bytes)`);
      d.update(buf.subarray(0, bytesRead));
      done += bytesRead;
      onBytes?.(done);
    }
    return d.digest();
  } finally {
    await fh.close();
  }
}
