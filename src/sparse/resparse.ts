// Splitting an image into download-sized sparse pieces, reproducing libsparse's
// sparse_file_resparse / move_chunks_up_to_len (as AOSP fastboot uses it):
//
// - every piece keeps the full image length (it is addressed from block 0);
// - budget = limit - 56 (file header 28 + leading and trailing skip headers
//   2*12 + CRC 4);
// - runs are taken whole while they fit; the run that overflows is split at the
//   remaining budget (aligned down to the block size) when it is the piece's
//   first run or when more than 1/8 of the budget is left ("pieces are at least
//   7/8 of the requested size"); otherwise it starts the next piece.
//
// The arithmetic mirrors the C types where it matters: the split length is an
// unsigned 32-bit value (a negative remainder wraps and prevents the split).
import { BadInputError } from '../errors.js';
import { blocksSpanned, type BackedBlock, type BlockImage } from './blocks.js';
import { CHUNK_HEADER_SIZE, SPARSE_HEADER_SIZE } from './parse.js';

export const RESPARSE_OVERHEAD = SPARSE_HEADER_SIZE + 2 * CHUNK_HEADER_SIZE + 4;

/** Encoded size of a run as a chunk (header + payload). */
export function encodedRunSize(bb: BackedBlock, blockSize: number): number {
  return bb.kind === 'fill' ? CHUNK_HEADER_SIZE + 4 : CHUNK_HEADER_SIZE + blocksSpanned(bb, blockSize) * blockSize;
}

/** Smallest limit for which the algorithm always makes progress. */
export function minResparseLimit(blockSize: number): number {
  return RESPARSE_OVERHEAD + CHUNK_HEADER_SIZE + blockSize;
}

/**
 * Splits `image` into pieces of at most `maxLen` bytes each (when encoded).
 * Returns the runs of each piece; `image` is not modified.
 */
export function resparse(image: BlockImage, maxLen: number): BackedBlock[][] {
  const { blockSize } = image;
  if (!Number.isInteger(maxLen) || maxLen < minResparseLimit(blockSize) || maxLen > 0xffffffff) {
    throw new BadInputError(
      `sparse split limit ${maxLen} is out of range: expected ${minResparseLimit(blockSize)} to 4294967295 bytes`,
      { code: 'sparse.limit' },
    );
  }
  // fastboot (and simg2simg) call sparse_file_resparse twice: once to count the
  // pieces, once to fill them. The first call's splits stay in the run list, so
  // the second call walks pre-split runs; in degenerate cases (a split at 0
  // bytes, limits under ~32 KiB) that changes the result. Do the same.
  const counted = resparseOnce(image.blocks, maxLen, blockSize);
  return resparseOnce(counted.flat(), maxLen, blockSize);
}

function resparseOnce(list: readonly BackedBlock[], maxLen: number, blockSize: number): BackedBlock[][] {
  const cursor: Cursor = { list, index: 0 };
  const pieces: BackedBlock[][] = [];
  let more = true;
  while (more) {
    const step = takePiece(cursor, maxLen, blockSize);
    pieces.push(step.piece);
    more = step.more;
  }
  return pieces;
}

/** Position in the run list; `head` replaces list[index] after a split. */
interface Cursor {
  list: readonly BackedBlock[];
  index: number;
  head?: BackedBlock;
}

function runAt(c: Cursor, i: number): BackedBlock | undefined {
  return i === c.index && c.head ? c.head : c.list[i];
}

/**
 * One move_chunks_up_to_len: takes runs from the cursor into a piece. `more` is
 * true whenever the budget overflowed (libsparse then starts another piece even
 * if nothing is left, which yields an empty trailing piece).
 */
function takePiece(c: Cursor, maxLen: number, blockSize: number): { piece: BackedBlock[]; more: boolean } {
  const len = maxLen - RESPARSE_OVERHEAD;
  const piece: BackedBlock[] = [];
  let fileLen = 0;
  let lastBlock = 0;
  for (let i = c.index; ; i++) {
    const bb = runAt(c, i);
    if (!bb) {
      c.index = i;
      c.head = undefined;
      return { piece, more: false };
    }
    let count = 0;
    if (bb.block > lastBlock) count += CHUNK_HEADER_SIZE;
    lastBlock = bb.block + blocksSpanned(bb, blockSize);
    count += encodedRunSize(bb, blockSize);
    if (fileLen + count > len) {
      fileLen += CHUNK_HEADER_SIZE;
      if (piece.length === 0 || len - fileLen > Math.floor(len / 8)) {
        const [first, rest] = splitRun(bb, u32(len - fileLen), blockSize);
        piece.push(first);
        c.index = rest ? i : i + 1;
        c.head = rest;
      } else {
        // The overflowing run starts the next piece (never the cursor's head here:
        // the head is always the piece's first run, which takes the split branch).
        c.index = i;
        c.head = undefined;
      }
      return { piece, more: true };
    }
    fileLen += count;
    piece.push(bb);
  }
}

/** backed_block_split: cut a run after maxLen bytes (aligned down to the block size). */
function splitRun(bb: BackedBlock, maxLen: number, blockSize: number): [BackedBlock, BackedBlock | undefined] {
  const cut = maxLen - (maxLen % blockSize);
  if (bb.len <= cut) return [bb, undefined];
  const skip = cut / blockSize;
  if (bb.kind === 'file') {
    return [
      { ...bb, len: cut },
      { kind: 'file', block: bb.block + skip, len: bb.len - cut, offset: bb.offset + cut },
    ];
  }
  return [{ ...bb, len: cut }, { kind: 'fill', block: bb.block + skip, len: bb.len - cut, value: bb.value }];
}

function u32(n: number): number {
  return ((n % 0x100000000) + 0x100000000) % 0x100000000;
}
