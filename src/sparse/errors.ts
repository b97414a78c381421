// Errors for malformed sparse images. Every message names where the problem is
// (file, byte offset, chunk index) and what was expected versus found.
import { BadInputError } from '../errors.js';

export interface SparseFormatErrorInfo {
  /** Byte offset in the image where the offending structure starts. */
  offset: number;
  /** 0-based index of the offending chunk, when the problem is in a chunk. */
  chunkIndex?: number;
  /** Source file, when known. */
  path?: string;
  hint?: string;
}

export class SparseFormatError extends BadInputError {
  readonly offset: number;
  readonly chunkIndex?: number;
  readonly path?: string;
  /** The problem without the location prefix (used when re-locating the error). */
  readonly detail: string;

  constructor(detail: string, info: SparseFormatErrorInfo) {
    super(SparseFormatError.compose(detail, info), {
      code: 'sparse.invalid',
      hint: info.hint ?? 'the file is not a valid Android sparse image (truncated or corrupt?); re-extract it from the ROM package',
    });
    this.detail = detail;
    this.offset = info.offset;
    this.chunkIndex = info.chunkIndex;
    this.path = info.path;
  }

  /** Same error, now naming the file it came from. */
  withPath(path: string): SparseFormatError {
    return new SparseFormatError(this.detail, {
      offset: this.offset,
      chunkIndex: this.chunkIndex,
      path,
      hint: this.hint,
    });
  }

  private static compose(detail: string, info: SparseFormatErrorInfo): string {
    const where = [
      info.path === undefined ? 'sparse image' : `sparse image ${info.path}`,
      info.chunkIndex === undefined ? undefined : `chunk ${info.chunkIndex}`,
      `offset ${info.offset} (0x${info.offset.toString(16)})`,
    ].filter((s) => s !== undefined);
    return `${where.join(', ')}: ${detail}`;
  }
}
