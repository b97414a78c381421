// Strict parser for Android sparse images (libsparse format, all little-endian).
//
// The parser is a generator that asks for byte ranges and receives them, so the
// same checks drive an in-memory buffer (device side: a downloaded image) and a
// file read through a handle (host side: headers only, RAW data is skipped).
import { SparseFormatError } from './errors.js';

export const SPARSE_MAGIC = 0xed26ff3a;
export const SPARSE_HEADER_SIZE = 28;
export const CHUNK_HEADER_SIZE = 12;
export const SPARSE_MAJOR_VERSION = 1;

export const CHUNK_TYPE_RAW = 0xcac1;
export const CHUNK_TYPE_FILL = 0xcac2;
export const CHUNK_TYPE_DONT_CARE = 0xcac3;
export const CHUNK_TYPE_CRC32 = 0xcac4;

export interface SparseHeader {
  majorVersion: number;
  minorVersion: number;
  fileHeaderSize: number;
  chunkHeaderSize: number;
  blockSize: number;
  totalBlocks: number;
  totalChunks: number;
  imageChecksum: number;
}

export type SparseChunk =
  | { type: 'raw'; index: number; startBlock: number; blocks: number; headerOffset: number; dataOffset: number; dataLength: number }
  | { type: 'fill'; index: number; startBlock: number; blocks: number; headerOffset: number; fill: number /* u32 LE */ }
  | { type: 'dont-care'; index: number; startBlock: number; blocks: number; headerOffset: number }
  | { type: 'crc32'; index: number; startBlock: number; blocks: 0; headerOffset: number; crc: number };

export interface ParsedSparse {
  header: SparseHeader;
  chunks: SparseChunk[];
}

/** A request for `length` bytes at `offset`; always within the file (the parser checks bounds first). */
export interface ReadRequest {
  offset: number;
  length: number;
}

/** True when the first 4 bytes are the sparse magic. */
export function isSparse(buf: Uint8Array): boolean {
  if (buf.length < 4) return false;
  return view(buf).getUint32(0, true) === SPARSE_MAGIC;
}

/** Parse and validate a whole sparse image held in memory. Throws SparseFormatError. */
export function parseSparseBuffer(buf: Uint8Array): ParsedSparse {
  const steps = parseSparseSteps(buf.length);
  let next = steps.next();
  while (!next.done) {
    const { offset, length } = next.value;
    next = steps.next(buf.subarray(offset, offset + length));
  }
  return next.value;
}

/** Parse only the 28-byte header fields (no chunk walk). Throws SparseFormatError. */
export function parseSparseHeader(buf: Uint8Array, fileSize = buf.length): SparseHeader {
  if (buf.length < SPARSE_HEADER_SIZE) {
    throw new SparseFormatError(
      `truncated file header: expected at least ${SPARSE_HEADER_SIZE} bytes, found ${buf.length}`,
      { offset: 0 },
    );
  }
  const dv = view(buf);
  const magic = dv.getUint32(0, true);
  if (magic !== SPARSE_MAGIC) {
    throw new SparseFormatError(`bad magic: expected 0x${hex(SPARSE_MAGIC)}, found 0x${hex(magic)}`, { offset: 0 });
  }
  const header: SparseHeader = {
    majorVersion: dv.getUint16(4, true),
    minorVersion: dv.getUint16(6, true),
    fileHeaderSize: dv.getUint16(8, true),
    chunkHeaderSize: dv.getUint16(10, true),
    blockSize: dv.getUint32(12, true),
    totalBlocks: dv.getUint32(16, true),
    totalChunks: dv.getUint32(20, true),
    imageChecksum: dv.getUint32(24, true),
  };
  checkHeader(header, fileSize);
  return header;
}

function checkHeader(h: SparseHeader, fileSize: number): void {
  if (h.majorVersion !== SPARSE_MAJOR_VERSION) {
    throw new SparseFormatError(`unsupported major version: expected ${SPARSE_MAJOR_VERSION}, found ${h.majorVersion}`, {
      offset: 4,
    });
  }
  if (h.fileHeaderSize < SPARSE_HEADER_SIZE) {
    throw new SparseFormatError(
      `file header size too small: expected at least ${SPARSE_HEADER_SIZE}, found ${h.fileHeaderSize}`,
      { offset: 8 },
    );
  }
  if (h.chunkHeaderSize < CHUNK_HEADER_SIZE) {
    throw new SparseFormatError(
      `chunk header size too small: expected at least ${CHUNK_HEADER_SIZE}, found ${h.chunkHeaderSize}`,
      { offset: 10 },
    );
  }
  if (h.blockSize === 0 || h.blockSize % 4 !== 0) {
    throw new SparseFormatError(`bad block size: expected a non-zero multiple of 4, found ${h.blockSize}`, {
      offset: 12,
    });
  }
  if (h.totalBlocks * h.blockSize > Number.MAX_SAFE_INTEGER) {
    throw new SparseFormatError(
      `absurd expanded size: ${h.totalBlocks} blocks of ${h.blockSize} bytes exceeds 2^53 bytes`,
      { offset: 16 },
    );
  }
  if (h.fileHeaderSize > fileSize) {
    throw new SparseFormatError(
      `truncated file header: header size is ${h.fileHeaderSize} bytes, file has ${fileSize}`,
      { offset: 0 },
    );
  }
  const minSize = h.fileHeaderSize + h.totalChunks * h.chunkHeaderSize;
  if (minSize > fileSize) {
    throw new SparseFormatError(
      `header declares ${h.totalChunks} chunks, which need at least ${minSize} bytes; file has ${fileSize}`,
      { offset: 20 },
    );
  }
}

/**
 * The parser proper. Yields the ranges it needs to read; returns the header and
 * chunk list. `fileSize` bounds every access: nothing past it is ever requested.
 */
export function* parseSparseSteps(fileSize: number): Generator<ReadRequest, ParsedSparse, Uint8Array> {
  const head = yield { offset: 0, length: Math.min(SPARSE_HEADER_SIZE, fileSize) };
  const header = parseSparseHeader(head, fileSize);
  const chunks: SparseChunk[] = [];
  let offset = header.fileHeaderSize;
  let block = 0;
  for (let index = 0; index < header.totalChunks; index++) {
    if (offset + header.chunkHeaderSize > fileSize) {
      throw new SparseFormatError(
        `truncated chunk header: expected ${header.chunkHeaderSize} bytes, file ends after ${fileSize - offset}`,
        { offset, chunkIndex: index },
      );
    }
    const raw = yield { offset, length: CHUNK_HEADER_SIZE };
    // Read everything needed from `raw` now: the next request may reuse its memory.
    const totalSize = view(raw).getUint32(8, true);
    const chunk = decodeChunk(raw, header, { index, offset, block, fileSize });
    if (chunk.type === 'fill' || chunk.type === 'crc32') {
      const payload = yield { offset: offset + header.chunkHeaderSize, length: 4 };
      const value = view(payload).getUint32(0, true);
      if (chunk.type === 'fill') chunk.fill = value;
      else chunk.crc = value;
    }
    chunks.push(chunk);
    offset += totalSize;
    block += chunk.blocks;
  }
  if (block !== header.totalBlocks) {
    throw new SparseFormatError(
      `chunks cover ${block} blocks but the header's total_blks is ${header.totalBlocks}`,
      { offset: 16 },
    );
  }
  return { header, chunks };
}

interface ChunkPosition {
  index: number;
  offset: number;
  block: number;
  fileSize: number;
}

function decodeChunk(raw: Uint8Array, header: SparseHeader, at: ChunkPosition): SparseChunk {
  const dv = view(raw);
  const type = dv.getUint16(0, true);
  const blocks = dv.getUint32(4, true);
  const totalSize = dv.getUint32(8, true);
  const where = { offset: at.offset, chunkIndex: at.index };
  const fail = (detail: string): never => {
    throw new SparseFormatError(detail, where);
  };
  if (totalSize < header.chunkHeaderSize) {
    fail(`chunk total_sz ${totalSize} is smaller than the chunk header size ${header.chunkHeaderSize}`);
  }
  const payload = totalSize - header.chunkHeaderSize;
  const dataOffset = at.offset + header.chunkHeaderSize;
  if (at.offset + totalSize > at.fileSize) {
    fail(
      `chunk runs past the end of the file: it ends at byte ${at.offset + totalSize}, file has ${at.fileSize} bytes`,
    );
  }
  if (at.block + blocks > header.totalBlocks) {
    fail(`chunk ends at block ${at.block + blocks}, past the header's total_blks ${header.totalBlocks}`);
  }
  const base = { index: at.index, startBlock: at.block, headerOffset: at.offset };
  switch (type) {
    case CHUNK_TYPE_RAW: {
      const expected = blocks * header.blockSize;
      if (payload !== expected) {
        fail(`RAW chunk of ${blocks} blocks: expected ${expected} data bytes (total_sz ${expected + header.chunkHeaderSize}), found ${payload}`);
      }
      return { type: 'raw', ...base, blocks, dataOffset, dataLength: payload };
    }
    case CHUNK_TYPE_FILL:
      if (payload !== 4) fail(`FILL chunk: expected 4 payload bytes, found ${payload}`);
      return { type: 'fill', ...base, blocks, fill: 0 };
    case CHUNK_TYPE_DONT_CARE:
      if (payload !== 0) fail(`DONT_CARE chunk: expected 0 payload bytes, found ${payload}`);
      return { type: 'dont-care', ...base, blocks };
    case CHUNK_TYPE_CRC32:
      if (payload !== 4) fail(`CRC32 chunk: expected 4 payload bytes, found ${payload}`);
      if (blocks !== 0) fail(`CRC32 chunk: expected chunk_sz 0, found ${blocks}`);
      return { type: 'crc32', ...base, blocks: 0, crc: 0 };
    default:
      return fail(
        `unknown chunk type 0x${type.toString(16).padStart(4, '0')}: expected RAW 0xcac1, FILL 0xcac2, DONT_CARE 0xcac3 or CRC32 0xcac4`,
      );
  }
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
