// Host-side access to sparse files: the strict parser driven through a file
// handle. Only headers are read (through a small read-ahead window); RAW data is
// seeked over, so validating a multi-GiB image reads kilobytes.
import { open, type FileHandle } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import { SparseFormatError } from './errors.js';
import { isSparse, parseSparseSteps, type ParsedSparse } from './parse.js';

const WINDOW = 64 * 1024;

export interface SparseFileInfo extends ParsedSparse {
  path: string;
  fileSize: number;
  /** Bytes after the last chunk (libsparse ignores them; so do we, but we report them). */
  trailingBytes: number;
}

/** Strictly validates a sparse file without loading it. Throws SparseFormatError naming the file. */
export async function readSparseFile(path: string): Promise<SparseFileInfo> {
  return withFile(path, async (fh, fileSize) => {
    const reader = new WindowReader(fh);
    const steps = parseSparseSteps(fileSize);
    try {
      let next = steps.next();
      while (!next.done) {
        next = steps.next(await reader.read(next.value.offset, next.value.length));
      }
      const { header, chunks } = next.value;
      return { path, fileSize, header, chunks, trailingBytes: fileSize - endOfChunks(next.value) };
    } catch (err) {
      if (err instanceof SparseFormatError) throw err.withPath(path);
      throw err;
    }
  });
}

/** True when the file starts with the sparse magic. */
export async function isSparseFile(path: string): Promise<boolean> {
  return withFile(path, async (fh) => {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && isSparse(head);
  });
}

function endOfChunks({ header, chunks }: ParsedSparse): number {
  const last = chunks[chunks.length - 1];
  if (!last) return header.fileHeaderSize;
  const payload = last.type === 'raw' ? last.dataLength : last.type === 'dont-care' ? 0 : 4;
  return last.headerOffset + header.chunkHeaderSize + payload;
}

/** Opens a file for reading, mapping "not found" and friends to BadInputError. */
export async function withFile<T>(path: string, use: (fh: FileHandle, size: number) => Promise<T>): Promise<T> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw fileError(path, err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new BadInputError(`${path}: not a regular file`, { code: 'input.not-file' });
    return await use(fh, st.size);
  } finally {
    await fh.close();
  }
}

export function fileError(path: string, err: unknown): BadInputError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String((err as Error).message ?? err);
  return new BadInputError(`${path}: cannot open: ${why}`, { code: 'input.unreadable', cause: err });
}

/** Serves small reads from a read-ahead window (chunk headers are often adjacent). */
class WindowReader {
  private buf = Buffer.alloc(WINDOW);
  private start = 0;
  private end = 0;

  constructor(private readonly fh: FileHandle) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < this.start || offset + length > this.end) {
      if (length > this.buf.length) this.buf = Buffer.alloc(length);
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, offset);
      this.start = offset;
      this.end = offset + bytesRead;
      if (bytesRead < length) {
        throw new BadInputError(`file shrank while reading: expected ${length} bytes at offset ${offset}`, { code: 'input.changed' });
      }
    }
    return this.buf.subarray(offset - this.start, offset - this.start + length);
  }
}
