// `edl read`: a partition or sector range streamed from the device's <read>
// raw data phase straight to a file, in constant memory (one 1 MiB staging
// buffer). Raw output leaves all-zero 4 KiB blocks as holes (same bytes, little
// disk); --sparse writes an Android sparse image through src/sparse. The file
// appears under its name only when the whole read succeeded.
import { closeSync, fsyncSync, ftruncateSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RawToSparseStream } from '../sparse/convert.js';
import { EdlInputError } from './errors.js';
import type { FirehoseClient } from './firehose.js';
import type { Target } from './target.js';

export interface ReadToFileOptions {
  /** Write an Android sparse image instead of a raw one. */
  sparse?: boolean;
  onProgress?: (bytes: number, total: number) => void;
}

export interface ReadToFileResult {
  path: string;
  format: 'raw' | 'sparse';
  /** Bytes read from the device. */
  bytes: number;
  /** Size of the output file. */
  outputSize: number;
  /** Raw output: bytes left as holes (all-zero blocks). */
  holes?: number;
  /** Sparse output: chunk count. */
  chunks?: number;
}

const BLOCK = 4096;
const STAGE = 1024 * 1024;
const ZERO = Buffer.alloc(BLOCK);

/** Positional writes of the non-zero blocks of each staged piece; zero blocks stay holes. */
class HoleyWriter {
  holes = 0;
  private pos = 0;
  constructor(private readonly fd: number) {}

  write(buf: Buffer): void {
    let runStart = -1;
    for (let i = 0; i < buf.length; i += BLOCK) {
      const end = Math.min(i + BLOCK, buf.length);
      if (end - i !== BLOCK || buf.compare(ZERO, 0, BLOCK, i, end) !== 0) {
        if (runStart < 0) runStart = i;
        continue;
      }
      this.holes += BLOCK;
      if (runStart >= 0) writeAll(this.fd, buf.subarray(runStart, i), this.pos + runStart);
      runStart = -1;
    }
    if (runStart >= 0) writeAll(this.fd, buf.subarray(runStart), this.pos + runStart);
    this.pos += buf.length;
  }

  finish(): number {
    ftruncateSync(this.fd, this.pos);
    return this.pos;
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Refuse outputs that cannot be replaced atomically (directories, devices). */
function checkOutput(path: string): void {
  const st = statSync(path, { throwIfNoEntry: false });
  if (st && !st.isFile()) throw new EdlInputError(`${path}: not a regular file; give the path of the backup file to write`, { code: 'edl.output' });
  const dir = statSync(dirname(path), { throwIfNoEntry: false });
  if (!dir?.isDirectory()) throw new EdlInputError(`${path}: folder ${dirname(path)} does not exist`, { code: 'edl.output' });
}

export async function readToFile(fh: FirehoseClient, t: Target, out: string, opts: ReadToFileOptions = {}): Promise<ReadToFileResult> {
  checkOutput(out);
  const total = t.sectors * t.sectorSize;
  const partial = join(dirname(out), `.${basename(out)}.miflash-partial`);
  const fd = openSync(partial, 'w');
  let closed = false;
  try {
    const sparse = opts.sparse ? new RawToSparseStream(fd) : undefined;
    const raw = sparse ? undefined : new HoleyWriter(fd);
    const stage = Buffer.allocUnsafe(Math.min(STAGE, total));
    let fill = 0;
    let got = 0;
    const flush = (): void => {
      const piece = stage.subarray(0, fill);
      if (sparse) sparse.write(piece);
      else raw!.write(piece);
      fill = 0;
    };
    await fh.read({ lun: t.lun, sectorSize: t.sectorSize, startSector: t.start, sectors: t.sectors }, (chunk) => {
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(chunk.length - at, stage.length - fill);
        chunk.copy(stage, fill, at, at + n);
        fill += n;
        at += n;
        if (fill === stage.length) flush();
      }
      got += chunk.length;
      opts.onProgress?.(got, total);
    });
    if (fill > 0) flush();
    let result: ReadToFileResult;
    if (sparse) {
      const r = sparse.finish();
      result = { path: out, format: 'sparse', bytes: got, outputSize: r.outputSize, chunks: r.chunks };
    } else {
      const size = raw!.finish();
      result = { path: out, format: 'raw', bytes: got, outputSize: size, holes: raw!.holes };
    }
    fsyncSync(fd);
    closeSync(fd);
    closed = true;
    renameSync(partial, out);
    return result;
  } catch (err) {
    if (!closed) closeSync(fd);
    try {
      unlinkSync(partial);
    } catch {
      // already gone
    }
    throw err;
  }
}
