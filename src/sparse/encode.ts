// Encoding a list of runs as a sparse image, exactly as libsparse's
// write_all_blocks does: a DONT_CARE chunk for every gap (including the leading
// one), RAW chunks rounded up to the block size with zero padding, FILL chunks,
// and a trailing DONT_CARE up to the end of the image. The result is a Payload:
// header bytes plus ranges of the source file, never the data itself.
import type { Payload, Segment } from './descriptor.js';
import { blocksSpanned, type BackedBlock } from './blocks.js';
import {
  CHUNK_HEADER_SIZE,
  CHUNK_TYPE_DONT_CARE,
  CHUNK_TYPE_FILL,
  CHUNK_TYPE_RAW,
  SPARSE_HEADER_SIZE,
  SPARSE_MAGIC,
  SPARSE_MAJOR_VERSION,
} from './parse.js';

export interface EncodeOptions {
  /**
   * Reproduce AOSP libsparse byte for byte even where it is wrong: when the image
   * length is not a multiple of the block size, a piece that ends before the
   * last block gets no trailing DONT_CARE chunk (libsparse refuses to write a
   * partial-block skip) although its header still counts that chunk, so the
   * piece is malformed. Default false: the trailing DONT_CARE is written,
   * rounded up to total_blks, which makes the piece valid.
   */
  aospQuirks?: boolean;
}

export interface ImageGeometry {
  blockSize: number;
  /** Expanded length in bytes (raw file size, or total_blks * blk_sz). */
  len: number;
}

/** Chunk count as libsparse's sparse_count_chunks computes it for the header. */
export function countChunks(runs: readonly BackedBlock[], geo: ImageGeometry): number {
  let chunks = 0;
  let lastBlock = 0;
  for (const bb of runs) {
    if (bb.block > lastBlock) chunks++;
    chunks++;
    lastBlock = bb.block + blocksSpanned(bb, geo.blockSize);
  }
  if (lastBlock < Math.ceil(geo.len / geo.blockSize)) chunks++;
  return chunks;
}

export function encodeSparse(runs: readonly BackedBlock[], geo: ImageGeometry, opts: EncodeOptions = {}): Payload {
  const { blockSize } = geo;
  const totalBlocks = Math.ceil(geo.len / blockSize);
  const out = new SegmentBuilder();
  out.bytes(fileHeader(blockSize, totalBlocks, countChunks(runs, geo)));
  let lastBlock = 0;
  for (const bb of runs) {
    if (bb.block > lastBlock) out.bytes(chunkHeader(CHUNK_TYPE_DONT_CARE, bb.block - lastBlock, CHUNK_HEADER_SIZE));
    const blocks = blocksSpanned(bb, blockSize);
    if (bb.kind === 'fill') {
      const fill = chunkHeader(CHUNK_TYPE_FILL, blocks, CHUNK_HEADER_SIZE + 4, 4);
      new DataView(fill.buffer).setUint32(CHUNK_HEADER_SIZE, bb.value, true);
      out.bytes(fill);
    } else {
      const padded = blocks * blockSize;
      if (CHUNK_HEADER_SIZE + padded > 0xffffffff) {
        throw new RangeError(`RAW run of ${padded} bytes does not fit one sparse chunk`);
      }
      out.bytes(chunkHeader(CHUNK_TYPE_RAW, blocks, CHUNK_HEADER_SIZE + padded));
      out.file(bb.offset, bb.len);
      out.zeros(padded - bb.len);
    }
    lastBlock = bb.block + blocks;
  }
  const pad = geo.len - lastBlock * blockSize;
  if (pad > 0) {
    if (pad % blockSize === 0) out.bytes(chunkHeader(CHUNK_TYPE_DONT_CARE, pad / blockSize, CHUNK_HEADER_SIZE));
    else if (!opts.aospQuirks) out.bytes(chunkHeader(CHUNK_TYPE_DONT_CARE, totalBlocks - lastBlock, CHUNK_HEADER_SIZE));
  }
  return out.payload();
}

export function fileHeader(blockSize: number, totalBlocks: number, totalChunks: number, checksum = 0): Uint8Array {
  const b = new Uint8Array(SPARSE_HEADER_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, SPARSE_MAGIC, true);
  dv.setUint16(4, SPARSE_MAJOR_VERSION, true);
  dv.setUint16(6, 0, true);
  dv.setUint16(8, SPARSE_HEADER_SIZE, true);
  dv.setUint16(10, CHUNK_HEADER_SIZE, true);
  dv.setUint32(12, blockSize, true);
  dv.setUint32(16, totalBlocks, true);
  dv.setUint32(20, totalChunks, true);
  dv.setUint32(24, checksum, true);
  return b;
}

/** A chunk header, optionally with room for `extra` payload bytes after it. */
export function chunkHeader(type: number, blocks: number, totalSize: number, extra = 0): Uint8Array {
  const b = new Uint8Array(CHUNK_HEADER_SIZE + extra);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, type, true);
  dv.setUint16(2, 0, true);
  dv.setUint32(4, blocks, true);
  dv.setUint32(8, totalSize, true);
  return b;
}

/** Collects segments, coalescing adjacent literal bytes and adjacent zero runs. */
class SegmentBuilder {
  private readonly segments: Segment[] = [];
  private pending: Uint8Array[] = [];
  private size = 0;

  bytes(data: Uint8Array): void {
    this.pending.push(data);
    this.size += data.length;
  }

  file(offset: number, length: number): void {
    if (length === 0) return;
    this.flush();
    const last = this.segments[this.segments.length - 1];
    if (last?.kind === 'file' && last.offset + last.length === offset) last.length += length;
    else this.segments.push({ kind: 'file', offset, length });
    this.size += length;
  }

  zeros(length: number): void {
    if (length === 0) return;
    this.flush();
    this.segments.push({ kind: 'zeros', length });
    this.size += length;
  }

  payload(): Payload {
    this.flush();
    return { size: this.size, segments: this.segments };
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const total = this.pending.reduce((n, p) => n + p.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const p of this.pending) {
      data.set(p, at);
      at += p.length;
    }
    this.segments.push({ kind: 'bytes', data });
    this.pending = [];
  }
}
