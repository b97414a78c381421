// An in-process transport pair for unit tests: what one end writes, the other
// reads, packet by packet and in order. Close on either end propagates; every
// read honours its timeout, like a real link.
import { TransportClosedError, TransportTimeoutError } from '../errors.js';
import { DEFAULT_IO_TIMEOUT_MS, type IoOptions, type Transport } from './transport.js';

export interface MemoryTransportOptions {
  preferredWriteSize?: number;
  maxInFlight?: number;
  timeoutMs?: number;
}

interface Waiter {
  max: number;
  resolve(buf: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

class Channel {
  readonly packets: Buffer[] = [];
  readonly waiters: Waiter[] = [];
  closed = false;

  deliver(packet: Buffer): void {
    this.packets.push(packet);
    this.serve();
  }

  close(): void {
    this.closed = true;
    this.serve();
  }

  serve(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      const packet = this.packets[0];
      if (packet === undefined) {
        if (!this.closed) return;
        this.waiters.shift();
        clearTimeout(w.timer);
        w.reject(new TransportClosedError('memory transport read'));
        continue;
      }
      this.waiters.shift();
      clearTimeout(w.timer);
      if (packet.length <= w.max) {
        this.packets.shift();
        w.resolve(packet);
      } else {
        // Like TCP framing: the rest of the packet stays for the next read.
        this.packets[0] = packet.subarray(w.max);
        w.resolve(packet.subarray(0, w.max));
      }
    }
  }
}

class MemoryEnd implements Transport {
  readonly kind = 'memory' as const;
  readonly preferredWriteSize: number;
  readonly maxInFlight: number;
  private readonly timeoutMs: number;

  constructor(
    readonly id: string,
    private readonly inbox: Channel,
    private readonly outbox: Channel,
    opts: MemoryTransportOptions,
  ) {
    this.preferredWriteSize = opts.preferredWriteSize ?? 1024 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 4;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_IO_TIMEOUT_MS;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.outbox.closed || this.inbox.closed) throw new TransportClosedError(`${this.id} write`);
    // Copy: the caller may reuse its buffer as soon as write() resolves.
    this.outbox.deliver(Buffer.from(data));
  }

  read(maxLength: number, opts: IoOptions = {}): Promise<Buffer> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        max: Math.max(1, maxLength),
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.inbox.waiters.indexOf(waiter);
          if (i >= 0) this.inbox.waiters.splice(i, 1);
          reject(new TransportTimeoutError(`${this.id} read`, timeoutMs));
        }, timeoutMs),
      };
      this.inbox.waiters.push(waiter);
      this.inbox.serve();
    });
  }

  async close(): Promise<void> {
    this.inbox.close();
    this.outbox.close();
  }

  get closed(): boolean {
    return this.inbox.closed;
  }
}

/** Two connected ends: `host` (what a client uses) and `device` (what an emulator serves). */
export function createMemoryTransportPair(opts: MemoryTransportOptions = {}): { host: Transport; device: Transport } {
  const toDevice = new Channel();
  const toHost = new Channel();
  return {
    host: new MemoryEnd('memory:host', toHost, toDevice, opts),
    device: new MemoryEnd('memory:device', toDevice, toHost, opts),
  };
}
