// Minimal Android sparse image writer for benchmark inputs. It writes a chunk
// list straight to disk (RAW data is fresh random bytes), so an 8 GiB image
// with ~3 GiB of data is made in seconds without materialising the expanded
// image. Format facts: /work/shared/docs/reference-tools.md §2.1.
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';

export const SPARSE_MAGIC = 0xed26ff3a;
export const BLOCK = 4096;
export const CHUNK_RAW = 0xcac1;
export const CHUNK_FILL = 0xcac2;
export const CHUNK_DONT_CARE = 0xcac3;

const FILE_HDR = 28;
const CHUNK_HDR = 12;
const RANDOM_BUF = 4 << 20;

/**
 * @typedef {{ type: 'raw', blocks: number }
 *         | { type: 'fill', blocks: number, value: number }
 *         | { type: 'skip', blocks: number }} Chunk
 */

/** Bytes the sparse file will take for these chunks. */
export function sparseFileSize(chunks) {
  let size = FILE_HDR;
  for (const c of chunks) {
    size += CHUNK_HDR + (c.type === 'raw' ? c.blocks * BLOCK : c.type === 'fill' ? 4 : 0);
  }
  return size;
}

export function fileHeader(totalBlocks, totalChunks) {
  const h = Buffer.alloc(FILE_HDR);
  h.writeUInt32LE(SPARSE_MAGIC, 0);
  h.writeUInt16LE(1, 4); // major
  h.writeUInt16LE(0, 6); // minor
  h.writeUInt16LE(FILE_HDR, 8);
  h.writeUInt16LE(CHUNK_HDR, 10);
  h.writeUInt32LE(BLOCK, 12);
  h.writeUInt32LE(totalBlocks, 16);
  h.writeUInt32LE(totalChunks, 20);
  h.writeUInt32LE(0, 24); // checksum: 0, as libsparse writes it
  return h;
}

export function chunkHeader(type, blocks, payload) {
  const h = Buffer.alloc(CHUNK_HDR);
  h.writeUInt16LE(type, 0);
  h.writeUInt32LE(blocks, 4);
  h.writeUInt32LE(CHUNK_HDR + payload, 8);
  return h;
}

/**
 * Writes `chunks` as a sparse image at `path` (via a temporary file renamed at
 * the end, so an interrupted run never leaves a truncated image behind).
 * Returns the expanded size and the file size.
 */
export function writeSparseImage(path, chunks) {
  const totalBlocks = chunks.reduce((n, c) => n + c.blocks, 0);
  if (totalBlocks > 0xffffffff) throw new Error(`${path}: ${totalBlocks} blocks exceed the u32 header field`);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  const rand = Buffer.allocUnsafe(RANDOM_BUF);
  try {
    writeSync(fd, fileHeader(totalBlocks, chunks.length));
    for (const c of chunks) {
      if (c.type === 'raw') {
        if (c.blocks * BLOCK + CHUNK_HDR > 0xffffffff) throw new Error(`RAW chunk of ${c.blocks} blocks exceeds u32 total_sz`);
        writeSync(fd, chunkHeader(CHUNK_RAW, c.blocks, c.blocks * BLOCK));
        let left = c.blocks * BLOCK;
        while (left > 0) {
          const n = Math.min(left, RANDOM_BUF);
          randomFillSync(rand, 0, n);
          writeAll(fd, rand, n);
          left -= n;
        }
      } else if (c.type === 'fill') {
        const p = Buffer.alloc(4);
        p.writeUInt32LE(c.value >>> 0, 0);
        writeSync(fd, Buffer.concat([chunkHeader(CHUNK_FILL, c.blocks, 4), p]));
      } else {
        writeSync(fd, chunkHeader(CHUNK_DONT_CARE, c.blocks, 0));
      }
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return { expandedSize: totalBlocks * BLOCK, fileSize: sparseFileSize(chunks) };
}

/** writeSync may write less than asked; loop until `n` bytes of `buf` are out. */
export function writeAll(fd, buf, n, position) {
  let done = 0;
  while (done < n) {
    done += writeSync(fd, buf, done, n - done, position === undefined ? null : position + done);
  }
}
