// Image digests (hash.ts) in worker threads, one job per worker at a time, as
// many workers as cores but at most MAX_HASH_WORKERS: several images are checked in parallel
// with each other, and an archive's files are hashed while it is extracted
// without slowing the extraction's own thread. Workers start on first use, are
// shared by the whole process and never keep it alive while idle.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DigestOptions, FileDigest } from './hash.js';
import type { FromWorker, ToWorker } from './hash-worker.js';

export interface FileJobOptions extends DigestOptions {
  /** Called on the main thread every few MiB; throwing (e.g. Ctrl-C) cancels the job with that error. */
  onProgress?: (done: number, total: number) => void;
}

/** Bytes streamed to a worker (an archive entry being extracted). */
export interface DigestStream {
  /** Copies `chunk` to the worker. */
  write(chunk: Uint8Array): void;
  /** Bytes sent and not yet digested. */
  readonly inFlight: number;
  /** Resolves once at most `bytes` are in flight. */
  below(bytes: number): Promise<void>;
  /** All bytes written: the digest. */
  end(): Promise<FileDigest>;
  /** Drops the job (its worker forgets it). */
  cancel(): void;
}

interface Job {
  id: number;
  resolve: (d: FileDigest) => void;
  reject: (err: Error) => void;
  onProgress?: (done: number, total: number) => void;
  onAck?: (bytes: number, inRing: boolean) => void;
  first: ToWorker;
}

/** A worker thread, or the same code on the main thread when no worker can be started (tests running from src/). */
interface Lane {
  post(m: ToWorker, transfer?: ArrayBuffer[]): void;
  busy: number;
  setBusy(busy: boolean): void;
  terminate(): void;
}

let nextId = 1;
/** Shared memory per streamed job: what may be queued to its worker, plus a piece of slack. */
const RING_SIZE = 1 << 20;

export class HashPool {
  private readonly lanes: Lane[] = [];
  private readonly jobs = new Map<number, { job: Job; lane: Lane }>();
  private readonly queue: Job[] = [];
  /** Rings of finished stream jobs, for the next ones. */
  private readonly rings: Uint8Array[] = [];

  constructor(private readonly size = defaultSize()) {}

  /** Workers (or in-thread lanes) started and not stopped. */
  get workers(): number {
    return this.lanes.length;
  }

  /** Digest of a file read by a worker. Jobs start in submission order as workers free up. */
  digestFile(path: string, opts: FileJobOptions = {}): Promise<FileDigest> {
    const { onProgress, ...digestOpts } = opts;
    return new Promise<FileDigest>((resolve, reject) => {
      const id = nextId++;
      this.queue.push({ id, resolve, reject, ...(onProgress ? { onProgress } : {}), first: { type: 'file', id, path, opts: digestOpts } });
      this.pump();
    });
  }

  /**
   * A streamed job, bound now to the least busy worker (its messages queue there).
   * Bytes go through a ring of shared memory (no allocation per piece: garbage
   * buffers would pile up in both threads until their next GC); a piece that
   * does not fit in the ring's free space is copied and transferred instead.
   */
  stream(size: number, opts: DigestOptions = {}): DigestStream {
    const id = nextId++;
    const ring = this.rings.pop() ?? new Uint8Array(new SharedArrayBuffer(RING_SIZE));
    let head = 0;
    let ringUsed = 0;
    let inFlight = 0;
    let waiters: Array<{ bytes: number; resolve: () => void }> = [];
    let failed: Error | undefined;
    let ringReturned = false;
    const giveBack = () => {
      if (ringReturned) return;
      ringReturned = true;
      this.rings.push(ring);
    };
    const wake = () => {
      const ready = waiters.filter((w) => failed || inFlight <= w.bytes);
      waiters = waiters.filter((w) => !ready.includes(w));
      ready.forEach((w) => w.resolve());
    };
    const result = new Promise<FileDigest>((resolve, reject) => {
      const job: Job = {
        id,
        resolve: (d) => {
          giveBack();
          resolve(d);
        },
        reject: (err) => {
          failed = err;
          wake();
          reject(err);
        },
        onAck: (bytes, inRing) => {
          inFlight -= bytes;
          if (inRing) ringUsed -= bytes;
          wake();
        },
        first: { type: 'begin', id, size, opts, ring: ring.buffer as SharedArrayBuffer },
      };
      this.start(job, this.leastBusy());
    });
    result.catch(() => {}); // surfaced by end()
    const post = (m: ToWorker, transfer?: ArrayBuffer[]) => this.jobs.get(id)?.lane.post(m, transfer);
    return {
      write: (chunk) => {
        if (failed || chunk.length === 0) return;
        inFlight += chunk.length;
        if (chunk.length > ring.length - ringUsed) {
          const data = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer;
          post({ type: 'data', id, offset: 0, length: data.byteLength, data }, [data]);
          return;
        }
        // Into the ring at `head`, in two pieces when it wraps.
        ringUsed += chunk.length;
        let done = 0;
        while (done < chunk.length) {
          const n = Math.min(chunk.length - done, ring.length - head);
          ring.set(chunk.subarray(done, done + n), head);
          post({ type: 'data', id, offset: head, length: n });
          head = (head + n) % ring.length;
          done += n;
        }
      },
      get inFlight() {
        return inFlight;
      },
      below: (bytes) => (failed || inFlight <= bytes ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ bytes, resolve }))),
      end: () => {
        post({ type: 'end', id });
        return result;
      },
      cancel: () => {
        const entry = this.jobs.get(id);
        if (!entry) return;
        entry.lane.post({ type: 'cancel', id });
        this.finish(id);
        entry.job.reject(new Error('digest cancelled'));
      },
    };
  }

  /** Stops the workers if no job is running or queued (each holds ~10 MiB); the next job starts them again. */
  release(): void {
    if (this.jobs.size === 0 && this.queue.length === 0) {
      for (const lane of this.lanes.splice(0)) lane.terminate();
      this.rings.length = 0;
    }
  }

  /** Stops every worker (pending jobs fail). The pool can be used again afterwards. */
  close(): void {
    for (const { job } of this.jobs.values()) job.reject(new Error('hash pool closed'));
    for (const job of this.queue) job.reject(new Error('hash pool closed'));
    this.jobs.clear();
    this.queue.length = 0;
    for (const lane of this.lanes.splice(0)) lane.terminate();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const lane = this.idleLane();
      if (!lane) return;
      this.start(this.queue.shift()!, lane);
    }
  }

  private idleLane(): Lane | undefined {
    const idle = this.lanes.find((l) => l.busy === 0);
    if (idle) return idle;
    if (this.lanes.length < this.size) return this.addLane();
    return undefined;
  }

  private leastBusy(): Lane {
    const idle = this.idleLane();
    if (idle) return idle;
    return this.lanes.reduce((a, b) => (b.busy <= a.busy ? b : a)); // ties: the later lane (the first often holds a long stream)
  }

  private start(job: Job, lane: Lane): void {
    this.jobs.set(job.id, { job, lane });
    lane.busy++;
    lane.setBusy(true);
    lane.post(job.first);
  }

  private finish(id: number): void {
    const entry = this.jobs.get(id);
    if (!entry) return;
    this.jobs.delete(id);
    entry.lane.busy--;
    if (entry.lane.busy === 0) entry.lane.setBusy(false);
    this.pump();
  }

  private onMessage(lane: Lane, m: FromWorker): void {
    const entry = this.jobs.get(m.id);
    if (!entry) return;
    const { job } = entry;
    switch (m.type) {
      case 'ack':
        job.onAck?.(m.bytes, m.ring);
        return;
      case 'progress':
        try {
          job.onProgress?.(m.done, m.total);
        } catch (err) {
          // The worker is inside a synchronous read loop: stop it the only way there is.
          this.dropLane(lane, err as Error);
        }
        return;
      case 'done':
        this.finish(m.id);
        job.resolve(m.digest);
        return;
      case 'error':
        this.finish(m.id);
        job.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        return;
    }
  }

  /** A lane that died or had to be stopped: its jobs fail with `err`. */
  private dropLane(lane: Lane, err: Error): void {
    const i = this.lanes.indexOf(lane);
    if (i >= 0) this.lanes.splice(i, 1);
    lane.terminate();
    for (const [id, e] of [...this.jobs]) {
      if (e.lane !== lane) continue;
      this.jobs.delete(id);
      e.job.reject(err);
    }
    this.pump();
  }

  private addLane(): Lane {
    const lane = workerLane((l, m) => this.onMessage(l, m), (l, err) => this.dropLane(l, err)) ?? inlineLane((l, m) => this.onMessage(l, m));
    this.lanes.push(lane);
    return lane;
  }
}

/**
 * V8 flags bin/miflash.js set at run time (the young generation's growth). A worker
 * thread's start resets V8's flags to the command line's, so they are set again
 * once the worker runs; without the launcher (tests, a library user) nothing is set.
 */
function launcherFlags(): string | undefined {
  const flags = (globalThis as Record<symbol, unknown>)[Symbol.for('miflash.v8Flags')];
  return typeof flags === 'string' ? flags : undefined;
}

/** dist/rom/hash-worker.js: next to this module, or (running from src/ under a test runner) in the build. */
function workerFile(): string | undefined {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../../dist/rom/hash-worker.js', here) : new URL('./hash-worker.js', here);
  const path = fileURLToPath(url);
  return existsSync(path) ? path : undefined;
}

function workerLane(onMessage: (l: Lane, m: FromWorker) => void, onDeath: (l: Lane, err: Error) => void): Lane | undefined {
  const file = workerFile();
  if (!file) return undefined;
  const worker = new Worker(file, { workerData: { miflashHashWorker: true } });
  worker.unref();
  const flags = launcherFlags();
  if (flags) worker.once('online', () => setFlagsFromString(flags));
  const lane: Lane = {
    busy: 0,
    post: (m, transfer) => worker.postMessage(m, transfer ?? []),
    setBusy: (busy) => (busy ? worker.ref() : worker.unref()),
    terminate: () => void worker.terminate(),
  };
  worker.on('message', (m: FromWorker) => onMessage(lane, m));
  worker.on('error', (err) => onDeath(lane, err));
  worker.on('exit', (code) => onDeath(lane, new Error(`hash worker exited (${code})`)));
  return lane;
}

/** The worker's code on this thread, one message per event-loop turn (no worker file: tests from src/). */
function inlineLane(onMessage: (l: Lane, m: FromWorker) => void): Lane {
  let handle: typeof import('./hash-worker.js').handleMessage | undefined;
  const loading = import('./hash-worker.js').then((m) => (handle = m.handleMessage));
  let chain: Promise<unknown> = loading;
  const lane: Lane = {
    busy: 0,
    post: (m) => {
      chain = chain.then(
        () =>
          new Promise<void>((resolve) =>
            setImmediate(() => {
              handle!(m, (out) => onMessage(lane, out));
              resolve();
            }),
          ),
      );
    },
    setBusy: () => {},
    terminate: () => {},
  };
  return lane;
}

const shared = new Map<number, HashPool>();

/**
 * Workers the shared pool may start, whatever the core count. Each costs ~10 MiB
 * of RSS (its own V8 isolate and Node environment; resourceLimits do not shrink
 * that), and miflash's peak RSS budget is 96 MiB: with 4 workers (a 4-core
 * machine) the preflight of the bench ROM peaked at 114.6 MiB, with 2 at 94 MiB.
 * Two keep the long MD5 of the biggest image on one core and everything else on
 * the other, which is what a ROM's preflight time is made of (preflight.ts).
 */
export const MAX_HASH_WORKERS = 2;

/** The process-wide pool of `size` workers (default: one per core, at most MAX_HASH_WORKERS). */
export function hashPool(size = defaultSize()): HashPool {
  let pool = shared.get(size);
  if (!pool) shared.set(size, (pool = new HashPool(size)));
  return pool;
}

function defaultSize(): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_HASH_WORKERS));
}
