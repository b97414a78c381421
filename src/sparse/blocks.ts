// The in-memory model of an image, as libsparse keeps it: an ordered list of
// "backed blocks", each a run of output blocks backed either by a range of the
// source file or by a 32-bit fill pattern. Gaps between runs are DONT_CARE.
//
// Merging follows libsparse (backed_block.cpp merge_bb): a run appended right
// after a run of the same kind merges into it when it is a FILL with the same
// value, or a file range that continues the previous one. Lengths are plain
// numbers here (libsparse uses 32-bit lengths, which overflow past 4 GiB runs).
import type { ParsedSparse } from './parse.js';

export type BackedBlock =
  | { kind: 'file'; block: number; len: number; offset: number }
  | { kind: 'fill'; block: number; len: number; value: number };

export interface BlockImage {
  blockSize: number;
  /** Expanded image length in bytes (may be a non-multiple of blockSize for raw inputs). */
  len: number;
  /** Runs in block order, non-overlapping. */
  blocks: BackedBlock[];
}

/** Appends runs in block order, merging the way libsparse's queue_bb does. */
export class BlockListBuilder {
  readonly blocks: BackedBlock[] = [];

  constructor(readonly blockSize: number) {}

  addFile(block: number, len: number, offset: number): void {
    if (len === 0) return;
    const last = this.last();
    if (last?.kind === 'file' && this.adjacent(last, block) && last.offset + last.len === offset) {
      last.len += len;
      return;
    }
    this.blocks.push({ kind: 'file', block, len, offset });
  }

  addFill(block: number, len: number, value: number): void {
    if (len === 0) return;
    const last = this.last();
    if (last?.kind === 'fill' && this.adjacent(last, block) && last.value === value) {
      last.len += len;
      return;
    }
    this.blocks.push({ kind: 'fill', block, len, value });
  }

  private last(): BackedBlock | undefined {
    return this.blocks[this.blocks.length - 1];
  }

  /** libsparse rounds the earlier run's length down when testing adjacency. */
  private adjacent(a: BackedBlock, block: number): boolean {
    return a.block + Math.floor(a.len / this.blockSize) === block;
  }
}

/** The block model of a parsed sparse file (RAW data refers to ranges of that file). */
export function blocksFromSparse(parsed: ParsedSparse): BlockImage {
  const { header, chunks } = parsed;
  const builder = new BlockListBuilder(header.blockSize);
  for (const c of chunks) {
    const len = c.blocks * header.blockSize;
    if (c.type === 'raw') builder.addFile(c.startBlock, len, c.dataOffset);
    else if (c.type === 'fill') builder.addFill(c.startBlock, len, c.fill);
  }
  return { blockSize: header.blockSize, len: header.totalBlocks * header.blockSize, blocks: builder.blocks };
}

export function blocksSpanned(bb: BackedBlock, blockSize: number): number {
  return Math.ceil(bb.len / blockSize);
}
