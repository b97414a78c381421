// Worker thread of hash-pool.ts: digests one job at a time, either a file it
// reads itself (synchronous reads block only this thread) or bytes streamed to
// it by the main thread (an archive being extracted), acknowledging each piece
// so the sender can bound what is in flight.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FileDigester, type DigestOptions } from './hash.js';

export type ToWorker =
  | { type: 'file'; id: number; path: string; opts: DigestOptions }
  | { type: 'begin'; id: number; size: number; opts: DigestOptions; ring?: SharedArrayBuffer }
  /** Bytes of the job's ring (shared memory, no copy) or, when the ring was full, a transferred buffer. */
  | { type: 'data'; id: number; offset: number; length: number; data?: ArrayBuffer }
  | { type: 'end'; id: number }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'progress'; id: number; done: number; total: number }
  | { type: 'ack'; id: number; bytes: number; ring: boolean }
  | { type: 'done'; id: number; digest: ReturnType<FileDigester['digest']> }
  | { type: 'error'; id: number; message: string; code?: string };

const READ_SIZE = 1 << 20;
/** Progress at most every 16 MiB (each message costs the main thread a turn). */
const PROGRESS_EVERY = 16 << 20;

const streams = new Map<number, { digester: FileDigester; ring: Uint8Array | undefined }>();
let buffer: Buffer | undefined;

function digestPath(id: number, path: string, opts: DigestOptions, send: (m: FromWorker) => void): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const d = new FileDigester(size, opts);
    buffer ??= Buffer.allocUnsafe(READ_SIZE);
    let done = 0;
    let reported = 0;
    while (done < size) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - done), done);
      if (n === 0) throw Object.assign(new Error(`${path}: file shrank while reading (${done} of ${size} bytes)`), { code: 'EFILESHRANK' });
      d.update(buffer.subarray(0, n));
      done += n;
      if (done - reported >= PROGRESS_EVERY) {
        reported = done;
        send({ type: 'progress', id, done, total: size });
      }
    }
    send({ type: 'done', id, digest: d.digest() });
  } finally {
    closeSync(fd);
  }
}

/** One message: the worker's whole behaviour (also run on the main thread when no worker can be started). */
export function handleMessage(m: ToWorker, send: (m: FromWorker) => void): void {
  try {
    switch (m.type) {
      case 'file':
        digestPath(m.id, m.path, m.opts, send);
        return;
      case 'begin':
        streams.set(m.id, { digester: new FileDigester(m.size, m.opts), ring: m.ring ? new Uint8Array(m.ring) : undefined });
        return;
      case 'data': {
        const s = streams.get(m.id);
        const bytes = m.data ? new Uint8Array(m.data) : s?.ring?.subarray(m.offset, m.offset + m.length);
        if (s && bytes) s.digester.update(bytes);
        send({ type: 'ack', id: m.id, bytes: m.length, ring: !m.data });
        return;
      }
      case 'end': {
        const s = streams.get(m.id);
        streams.delete(m.id);
        if (s) send({ type: 'done', id: m.id, digest: s.digester.digest() });
        return;
      }
      case 'cancel':
        streams.delete(m.id);
        return;
    }
  } catch (err) {
    if (m.type !== 'file') streams.delete(m.id);
    const e = err as NodeJS.ErrnoException;
    send({ type: 'error', id: m.id, message: e?.message ?? String(err), ...(e?.code ? { code: e.code } : {}) });
  }
}

// Only when started by hash-pool.ts (this module is also imported on the main thread, maybe inside a test runner's worker).
if (!isMainThread && parentPort && (workerData as { miflashHashWorker?: boolean } | undefined)?.miflashHashWorker) {
  const port = parentPort;
  port.on('message', (m: ToWorker) => handleMessage(m, (out) => port.postMessage(out)));
}
