// Host-side access to super images on disk: raw files read in place, Android
// sparse files (Xiaomi ships super.img sparse) read through their chunk map, so
// only the few kilobytes of metadata are ever read.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { fileError, isSparseFile, readSparseFile } from '../sparse/file.js';
import type { SparseChunk } from '../sparse/parse.js';
import { LpFormatError, type LpMetadata } from './format.js';
import { isEmptySuperImage, readEmptyImage, readGeometry, readSuperMetadata, type ReadAt } from './image.js';

export interface ImageReader {
  read: ReadAt;
  /** Size of the (expanded) image in bytes. */
  size: number;
  sparse: boolean;
  close(): void;
}

/** Reads up to `length` bytes at `offset`, never past `limit` (a short file gives a short buffer). */
export function readFd(fd: number, offset: number, length: number, limit: number): Buffer {
  const len = Math.max(0, Math.min(length, limit - offset));
  const out = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const n = readSync(fd, out, done, len - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return out.subarray(0, done);
}

/** Open a raw or sparse image for random reads of its (expanded) contents. */
export async function openImage(path: string): Promise<ImageReader> {
  const sparse = await isSparseFile(path).catch((err: unknown) => {
    throw fileError(path, err);
  });
  if (!sparse) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw fileError(path, err);
    }
    const size = fstatSync(fd).size;
    return { read: (o, l) => readFd(fd, o, l, size), size, sparse: false, close: () => closeSync(fd) };
  }
  const info = await readSparseFile(path);
  const bs = info.header.blockSize;
  const fd = openSync(path, 'r');
  const chunks = info.chunks.filter((c) => c.type !== 'crc32');
  const size = info.header.totalBlocks * bs;
  const read: ReadAt = (offset, length) => {
    const end = Math.min(offset + length, size);
    const out = Buffer.alloc(Math.max(0, end - offset));
    for (const c of chunks) {
      const start = c.startBlock * bs;
      const stop = start + c.blocks * bs;
      if (stop <= offset || start >= end) continue;
      const from = Math.max(start, offset);
      const to = Math.min(stop, end);
      fillFromChunk(fd, c, from - start, out, from - offset, to - from);
    }
    return out;
  };
  return { read, size, sparse: true, close: () => closeSync(fd) };
}

function fillFromChunk(fd: number, c: SparseChunk, within: number, out: Buffer, at: number, length: number): void {
  if (c.type === 'raw') {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, at + done, length - done, c.dataOffset + within + done);
      if (n === 0) break;
      done += n;
    }
  } else if (c.type === 'fill') {
    const word = Buffer.alloc(4);
    word.writeUInt32LE(c.fill >>> 0, 0);
    for (let i = 0; i < length; i++) out[at + i] = word[(within + i) % 4]!;
  }
}

export interface LpImage {
  metadata: LpMetadata;
  /** A super_empty image (geometry at offset 0, one metadata copy). */
  empty: boolean;
  sparse: boolean;
}

/** lpdump's ReadDeviceOrFile: a super_empty image as such, otherwise the super partition's metadata for `slot`. */
export async function readLpImage(path: string, slot = 0): Promise<LpImage> {
  const img = await openImage(path);
  try {
    const empty = isEmptySuperImage(img.read);
    const metadata = empty ? readEmptyImage(img.read) : readSuperMetadata(img.read, slot);
    return { metadata, empty, sparse: img.sparse };
  } catch (err) {
    if (err instanceof LpFormatError) throw new LpFormatError(`${path}: ${err.message}`);
    throw err;
  } finally {
    img.close();
  }
}

/** Number of metadata slots in a super image (1 for super_empty images). */
export async function slotCount(path: string): Promise<number> {
  const img = await openImage(path);
  try {
    return isEmptySuperImage(img.read) ? 1 : readGeometry(img.read).metadataSlotCount;
  } finally {
    img.close();
  }
}
