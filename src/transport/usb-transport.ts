// Bulk-pipe Transport over one claimed USB interface.
//
// Writes are split into `writeSize` transfers; up to `inFlight` of them are
// submitted at once (libusb completes transfers of one endpoint in order), so
// the device never waits for JavaScript between two transfers. Every transfer
// carries a libusb timeout and a JS watchdog with the same deadline, because a
// transfer whose callback never comes must not hang the flash.

import { ShortWriteError, TransportError, TransportTimeoutError } from '../errors.js';
import type { IoOptions, Transport } from './transport.js';
import { mapUsbError, UsbDisconnectedError, type UsbTarget } from './usb-errors.js';
import { LIBUSB, type UsbDeviceLike, type UsbEndpointLike, type UsbErrorLike, type UsbInterfaceLike, type UsbTransferLike } from './usb-module.js';

/** AOSP halves its URB size on ENOMEM down to this floor. */
export const MIN_USB_WRITE_SIZE = 16 * 1024;
/** Largest single IN transfer; bigger reads return in several pieces. */
export const MAX_USB_READ_SIZE = 16 * 1024 * 1024;
/** qdl waits for the ZLP after a packet-aligned read; we bound that wait. */
const ZLP_READ_TIMEOUT_MS = 2_000;
/** How long close() waits for cancelled transfers to come back before releasing. */
const CLOSE_DRAIN_MS = 1_000;

export interface UsbTransportConfig {
  id: string;
  description: string;
  target: UsbTarget;
  device: UsbDeviceLike;
  iface: UsbInterfaceLike;
  inEp: UsbEndpointLike;
  outEp: UsbEndpointLike;
  writeSize: number;
  inFlight: number;
  timeoutMs: number;
  /** 'edl': ZLP after packet-aligned writes and reads (edl.md §2.3); 'never': fastboot. */
  zlp: 'never' | 'edl';
}

interface QueuedChunk {
  buf: Buffer;
  timeoutMs: number;
  resolve(): void;
  reject(err: TransportError): void;
}

interface ActiveTransfer {
  /** Cancel the transfer and settle it with `err` now. */
  abort(err: TransportError): void;
}

const noop = (): void => {};

export class UsbTransport implements Transport {
  readonly kind = 'usb' as const;
  readonly id: string;
  /** Human description, e.g. "usb:1-4.2 (serial 0123ABCD, 18d1:4ee0)". */
  readonly description: string;
  readonly maxInFlight: number;
  private writeSize: number;
  private readonly cfg: UsbTransportConfig;
  private readonly queue: QueuedChunk[] = [];
  private readonly active = new Set<ActiveTransfer>();
  /** Transfers submitted to libusb whose callback has not come back yet. */
  private outstanding = 0;
  private drained: (() => void) | undefined;
  /** Sticky: after a write failure the byte stream is in an unknown state. */
  private broken: TransportError | undefined;
  private closed = false;
  private writeTail: Promise<void> = Promise.resolve();
  private readTail: Promise<unknown> = Promise.resolve();
  /** Bytes received beyond what a read asked for; served first by the next read. */
  private stash: Buffer = Buffer.alloc(0);

  constructor(cfg: UsbTransportConfig) {
    this.cfg = cfg;
    this.id = cfg.id;
    this.description = cfg.description;
    this.maxInFlight = cfg.inFlight;
    this.writeSize = cfg.writeSize;
    // The package default (0) means "wait forever"; never leave it there.
    cfg.inEp.timeout = cfg.timeoutMs;
    cfg.outEp.timeout = cfg.timeoutMs;
  }

  get preferredWriteSize(): number {
    return this.writeSize;
  }

  write(data: Uint8Array, opts?: IoOptions): Promise<void> {
    const timeoutMs = opts?.timeoutMs ?? this.cfg.timeoutMs;
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const chunks = this.splitForWrite(data);
    const done = Promise.all(chunks.map((buf) => this.enqueue(buf, timeoutMs)));
    done.catch(noop); // settled through `mine`; avoid an unhandled-rejection report meanwhile
    // Resolve in call order even if a fake (or a platform) completes out of order.
    const mine = this.writeTail.catch(noop).then(() => done).then(noop);
    this.writeTail = mine;
    return mine;
  }

  read(maxLength: number, opts?: IoOptions): Promise<Buffer> {
    const timeoutMs = opts?.timeoutMs ?? this.cfg.timeoutMs;
    const run = this.readTail.catch(noop).then(() => this.readOnce(maxLength, timeoutMs));
    this.readTail = run;
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortAll(new TransportError(`${this.id}: transport closed`, { code: 'transport.closed-by-host' }));
    await this.waitDrained(CLOSE_DRAIN_MS);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, CLOSE_DRAIN_MS);
      try {
        this.cfg.iface.release(() => {
          clearTimeout(t);
          resolve();
        });
      } catch {
        clearTimeout(t);
        resolve();
      }
    });
    try {
      this.cfg.device.close();
    } catch {
      // Already gone (unplugged / rebooted): nothing left to release.
    }
  }

  // ---- writes -------------------------------------------------------------

  private splitForWrite(data: Uint8Array): Buffer[] {
    const whole = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const chunks: Buffer[] = [];
    for (let off = 0; off < whole.length; off += this.writeSize) {
      chunks.push(whole.subarray(off, Math.min(off + this.writeSize, whole.length)));
    }
    if (this.cfg.zlp === 'edl') {
      // qdl: a write whose length is a multiple of wMaxPacketSize ends with a ZLP,
      // so the programmer sees the end of the packet; an empty write is an explicit ZLP.
      const mps = this.cfg.outEp.descriptor.wMaxPacketSize;
      if (whole.length === 0 || (mps > 0 && whole.length % mps === 0)) chunks.push(Buffer.alloc(0));
    }
    // fastboot: never send a ZLP (AOSP refuses 0-length writes), so an empty write is a no-op.
    return chunks;
  }

  private enqueue(buf: Buffer, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ buf, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (!this.broken && !this.closed && this.active.size < this.maxInFlight && this.queue.length > 0) {
      this.submitChunk(this.queue.shift()!);
    }
  }

  private submitChunk(chunk: QueuedChunk): void {
    const len = chunk.buf.length;
    const result = this.submit(this.cfg.outEp, chunk.buf, chunk.timeoutMs, `write (${len} bytes)`, (err, actual) => {
      if (err) {
        this.fail(err);
        chunk.reject(err);
      } else if (actual !== len) {
        const short = new ShortWriteError(`${this.id} write`, len, actual);
        this.fail(short);
        chunk.reject(short);
      } else {
        chunk.resolve();
      }
      this.pump();
    });
    if (result === 'no-mem') this.splitAfterNoMem(chunk);
  }

  /** AOSP: on ENOMEM halve the transfer size (not below 16 KiB) and retry. */
  private splitAfterNoMem(chunk: QueuedChunk): void {
    const half = Math.floor(chunk.buf.length / 2 / 1024) * 1024;
    if (half < MIN_USB_WRITE_SIZE) {
      const err = mapUsbError({ errno: LIBUSB.ERROR_NO_MEM, message: 'LIBUSB_ERROR_NO_MEM' }, 'write', this.cfg.target);
      this.fail(err);
      chunk.reject(err);
      return;
    }
    this.writeSize = Math.min(this.writeSize, half);
    let remaining = 2;
    const part = (buf: Buffer): QueuedChunk => ({
      buf,
      timeoutMs: chunk.timeoutMs,
      resolve: () => {
        if (--remaining === 0) chunk.resolve();
      },
      reject: chunk.reject,
    });
    this.queue.unshift(part(chunk.buf.subarray(0, half)), part(chunk.buf.subarray(half)));
  }

  // ---- reads --------------------------------------------------------------

  private async readOnce(maxLength: number, timeoutMs: number): Promise<Buffer> {
    if (!Number.isInteger(maxLength) || maxLength <= 0) {
      throw new TransportError(`${this.id} read: invalid length ${maxLength}`, { code: 'transport.invalid-length' });
    }
    if (this.stash.length > 0) return this.takeStash(maxLength);
    const unusable = this.unusable();
    if (unusable) throw unusable;
    const mps = Math.max(1, this.cfg.inEp.descriptor.wMaxPacketSize);
    // Ask for whole packets: a device packet larger than the request is a libusb overflow.
    const reqLen = Math.min(Math.ceil(maxLength / mps) * mps, Math.max(mps, Math.floor(MAX_USB_READ_SIZE / mps) * mps));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const remaining = Math.max(1, deadline - Date.now());
      const data = await this.inTransfer(reqLen, remaining, timeoutMs);
      if (this.cfg.zlp === 'edl') {
        if (data.length === reqLen && reqLen % mps === 0) await this.consumeZlp(timeoutMs);
      } else if (data.length === 0) {
        // fastboot replies are never empty: a stray ZLP is skipped, as AOSP ignores ZLPs.
        if (Date.now() >= deadline) throw new TransportTimeoutError(`${this.id} read`, timeoutMs);
        continue;
      }
      if (data.length > maxLength) {
        this.stash = Buffer.concat([data.subarray(maxLength), this.stash]);
        return data.subarray(0, maxLength);
      }
      return data;
    }
  }

  private takeStash(maxLength: number): Buffer {
    const out = this.stash.subarray(0, maxLength);
    this.stash = this.stash.subarray(out.length);
    return Buffer.from(out);
  }

  /** qdl: after a full, packet-aligned read, read the ZLP the device sends. Failures are benign. */
  private async consumeZlp(timeoutMs: number): Promise<void> {
    try {
      await this.inTransfer(0, Math.min(timeoutMs, ZLP_READ_TIMEOUT_MS), timeoutMs);
    } catch (e) {
      if (e instanceof UsbDisconnectedError) throw e;
    }
  }

  private inTransfer(len: number, timeoutMs: number, reportedTimeoutMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const buf = Buffer.alloc(len);
      this.submit(
        this.cfg.inEp,
        buf,
        timeoutMs,
        'read',
        (err, actual) => {
          if (err) {
            if (err instanceof UsbDisconnectedError) this.fail(err);
            reject(err);
          } else {
            resolve(buf.subarray(0, actual));
          }
        },
        reportedTimeoutMs,
        // Data that arrives after our watchdog gave up is kept for the next read.
        (late) => {
          this.stash = Buffer.concat([this.stash, late]);
        },
      );
    });
  }

  // ---- one transfer -------------------------------------------------------

  /**
   * Submit one bulk transfer with a libusb timeout and a JS watchdog.
   * `done` is called exactly once. Returns 'no-mem' (and does not call `done`)
   * when the kernel refused the buffer, so the caller can retry smaller.
   */
  private submit(
    ep: UsbEndpointLike,
    buf: Buffer,
    timeoutMs: number,
    op: string,
    done: (err: TransportError | undefined, actual: number) => void,
    reportedTimeoutMs = timeoutMs,
    onLateData?: (data: Buffer) => void,
  ): 'submitted' | 'no-mem' | 'failed' {
    let settled = false;
    let transfer: UsbTransferLike | undefined;
    const entry: ActiveTransfer = {
      abort: (err) => {
        if (settled) return;
        cancelQuietly(transfer);
        settle(err, 0);
      },
    };
    const settle = (err: TransportError | undefined, actual: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.active.delete(entry);
      done(err, actual);
    };
    const timer = setTimeout(() => {
      entry.abort(new TransportTimeoutError(`${this.id} ${op}`, reportedTimeoutMs));
    }, timeoutMs);
    try {
      transfer = ep.makeTransfer(timeoutMs, (error, _b, actual) => {
        this.transferReturned();
        if (settled) {
          if (onLateData && actual > 0) onLateData(Buffer.from(buf.subarray(0, actual)));
          return;
        }
        if (!error) return settle(undefined, actual);
        const errno = (error as UsbErrorLike).errno;
        // libusb reports a timeout with partial data; reads keep what arrived (as qdl does).
        if (errno === LIBUSB.TRANSFER_TIMED_OUT && ep.direction === 'in' && actual > 0) return settle(undefined, actual);
        const partial = errno === LIBUSB.TRANSFER_TIMED_OUT && actual > 0 ? ` (${actual} of ${buf.length} bytes sent)` : '';
        settle(mapUsbError(error, op + partial, this.cfg.target, reportedTimeoutMs), actual);
      });
      this.active.add(entry);
      transfer.submit(buf);
      this.outstanding++;
      return 'submitted';
    } catch (e) {
      settled = true;
      clearTimeout(timer);
      this.active.delete(entry);
      if ((e as UsbErrorLike).errno === LIBUSB.ERROR_NO_MEM && buf.length > MIN_USB_WRITE_SIZE && ep.direction === 'out') return 'no-mem';
      done(mapUsbError(e, op, this.cfg.target, reportedTimeoutMs), 0);
      return 'failed';
    }
  }

  private transferReturned(): void {
    this.outstanding = Math.max(0, this.outstanding - 1);
    if (this.outstanding === 0 && this.drained) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }

  private waitDrained(ms: number): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.drained = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  // ---- failure handling ---------------------------------------------------

  private unusable(): TransportError | undefined {
    if (this.closed) return new TransportError(`${this.id}: transport already closed`, { code: 'transport.closed-by-host' });
    return this.broken;
  }

  /** A write failed: the stream is unusable; fail everything queued or in flight. */
  private fail(err: TransportError): void {
    if (this.broken) return;
    this.broken = err;
    this.abortAll(err);
  }

  private abortAll(err: TransportError): void {
    for (const a of [...this.active]) a.abort(err);
    for (const q of this.queue.splice(0)) q.reject(err);
  }
}

function cancelQuietly(transfer: UsbTransferLike | undefined): void {
  try {
    transfer?.cancel();
  } catch {
    // Already completed or device gone; the callback (if any) is ignored.
  }
}
