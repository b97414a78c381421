// Streaming a Payload (header bytes + ranges of a source file + zero padding)
// through a fixed-size buffer: to a file, a hash, or any consumer.
import { createHash } from 'node:crypto';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import type { Payload } from './descriptor.js';
import { fileError } from './file.js';

const CHUNK = 1024 * 1024;
let zeroChunk: Buffer | undefined;

/**
 * Yields the payload's bytes in order, in pieces of at most `chunkSize` bytes.
 * File data is read into one reused buffer: consume (or copy) each piece before
 * asking for the next.
 */
export async function* payloadChunks(
  sourcePath: string,
  payload: Payload,
  chunkSize = CHUNK,
): AsyncGenerator<Uint8Array, void, undefined> {
  let fh: FileHandle | undefined;
  try {
    const buf = Buffer.allocUnsafe(chunkSize);
    for (const seg of payload.segments) {
      if (seg.kind === 'bytes') {
        for (let at = 0; at < seg.data.length; at += chunkSize) yield seg.data.subarray(at, at + chunkSize);
      } else if (seg.kind === 'zeros') {
        zeroChunk ??= Buffer.alloc(CHUNK);
        for (let left = seg.length; left > 0; left -= Math.min(left, chunkSize, CHUNK)) {
          yield zeroChunk.subarray(0, Math.min(left, chunkSize, CHUNK));
        }
      } else {
        fh ??= await openSource(sourcePath);
        for (let done = 0; done < seg.length; ) {
          const want = Math.min(chunkSize, seg.length - done);
          const { bytesRead } = await fh.read(buf, 0, want, seg.offset + done);
          if (bytesRead === 0) {
            throw new BadInputError(`${sourcePath}: file shrank while sending: no data at offset ${seg.offset + done}`, { code: 'input.changed' });
          }
          yield buf.subarray(0, bytesRead);
          done += bytesRead;
        }
      }
    }
  } finally {
    await fh?.close();
  }
}

async function openSource(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    throw fileError(path, err);
  }
}

/** Writes the payload to `outPath` (created or truncated). */
export async function writePayload(sourcePath: string, payload: Payload, outPath: string): Promise<void> {
  const [src, dst] = await Promise.all([stat(sourcePath).catch(() => undefined), stat(outPath).catch(() => undefined)]);
  if (src && dst && src.dev === dst.dev && src.ino === dst.ino) {
    throw new BadInputError(`${outPath}: output is the source file; choose another output path`, { code: 'input.same-file' });
  }
  const out = await open(outPath, 'w').catch((err: unknown) => {
    throw fileError(outPath, err);
  });
  try {
    for await (const piece of payloadChunks(sourcePath, payload)) await writeAll(out, piece);
    await out.close();
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(outPath, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** SHA-256 (hex) of the payload's bytes. */
export async function hashPayload(sourcePath: string, payload: Payload, algorithm = 'sha256'): Promise<string> {
  const h = createHash(algorithm);
  for await (const piece of payloadChunks(sourcePath, payload)) h.update(piece);
  return h.digest('hex');
}

export async function writeAll(fh: FileHandle, data: Uint8Array, position?: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position === undefined ? null : position + done);
    done += bytesWritten;
  }
}
