// What the AOSP fastboot client (v29, fastboot.cpp load_buf_fd /
// get_sparse_limit) sends for one image, as descriptors:
//
// - limit 0 (unlimited) or file size <= limit: the file as is, one download;
// - otherwise split at min(limit, 1 GiB): a sparse file is resparsed; a raw
//   file is first imported like libsparse's sparse_file_import_auto (4096-byte
//   blocks, uniform blocks become FILL) and then resparsed.
//
// A file with the sparse magic that fails validation is an error here (AOSP
// would silently send it as raw data).
import { stat } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import { blocksFromSparse, type BlockImage } from './blocks.js';
import type { PreparedImage } from './descriptor.js';
import { encodeSparse, type EncodeOptions } from './encode.js';
import { fileError, isSparseFile, readSparseFile } from './file.js';
import { blocksFromRawFile, type ScanOptions } from './raw-scan.js';
import { resparse } from './resparse.js';

/** fastboot.cpp RESPARSE_LIMIT: pieces never exceed 1 GiB, whatever the device allows. */
export const RESPARSE_LIMIT = 1024 * 1024 * 1024;

export type PrepareOptions = EncodeOptions & ScanOptions;

/**
 * The downloads for one image. `limit` is the -S value or the device's
 * max-download-size (0 = unlimited). Pieces are byte-identical to AOSP
 * fastboot's, except that by default a piece libsparse would leave malformed
 * (see EncodeOptions.aospQuirks) is made valid, and runs over 4 GiB are not
 * truncated to 32 bits.
 */
export async function prepareForDownload(path: string, limit: number, opts: PrepareOptions = {}): Promise<PreparedImage> {
  checkLimit(limit);
  const size = await fileSize(path);
  const sparse = await isSparseFile(path);
  const parsed = sparse ? await readSparseFile(path) : undefined;
  if (limit === 0 || size <= limit) {
    return {
      path,
      format: sparse ? 'sparse' : 'raw',
      pieces: [{ size, segments: size === 0 ? [] : [{ kind: 'file', offset: 0, length: size }] }],
    };
  }
  const image: BlockImage = parsed ? blocksFromSparse(parsed) : await blocksFromRawFile(path, opts);
  return splitImage(path, image, Math.min(limit, RESPARSE_LIMIT), opts);
}

/** Resparses a block model into download pieces of at most `maxLen` bytes. */
export function splitImage(path: string, image: BlockImage, maxLen: number, opts: EncodeOptions = {}): PreparedImage {
  const pieces = resparse(image, maxLen).map((runs) => encodeSparse(runs, image, opts));
  return { path, format: 'sparse', pieces };
}

/** Number of downloads for this image and limit (Xiaomi's sparsecrclist count). */
export async function countPieces(path: string, limit: number): Promise<number> {
  return (await prepareForDownload(path, limit)).pieces.length;
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new BadInputError(`invalid sparse limit ${limit}: expected a byte count >= 0 (0 = unlimited)`, {
      code: 'sparse.limit',
    });
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new BadInputError(`${path}: not a regular file`, { code: 'input.not-file' });
    return st.size;
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw fileError(path, err);
  }
}
