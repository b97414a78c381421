// Fastboot over UDP, device side: a UDP socket speaking UdpDeviceSession that
// hands each host session (one per init packet) to the caller as a device-side
// Transport — e.g. runFastbootDevice(transport, device) from the emulator.
// Transport-layer code only: it knows nothing about what the device does.

import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { TransportClosedError, TransportTimeoutError } from '../errors.js';
import { parseNetworkAddress } from './tcp.js';
import { DEFAULT_IO_TIMEOUT_MS, type IoOptions, type Transport } from './transport.js';
import { UdpDeviceSession } from './udp-protocol.js';

export interface UdpDeviceServerOptions {
  /** Offered in init; the host's offer may lower it (default 1024). */
  maxPacketSize?: number;
  /** First expected sequence number (default random, as devices may choose). */
  startSeq?: number;
  /** Test hook: drop a datagram (true = lost) in either direction. */
  lose?: (direction: 'in' | 'out', datagram: Buffer) => boolean;
}

export interface UdpDeviceServer {
  /** 'udp:127.0.0.1:PORT' */
  address: string;
  port: number;
  close(): Promise<void>;
}

interface Waiter {
  max: number;
  resolve(b: Buffer): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** What the device reads (host messages) and writes (replies) for one session. */
class UdpDeviceTransport implements Transport {
  readonly kind = 'udp' as const;
  readonly preferredWriteSize = 64 * 1024;
  readonly maxInFlight = 1;
  private readonly inbox: Buffer[] = [];
  private readonly waiters: Waiter[] = [];
  closed = false;

  constructor(
    readonly id: string,
    private readonly sendMessage: (m: Buffer) => void,
  ) {}

  deliver(message: Buffer): void {
    this.inbox.push(message);
    this.serve();
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.closed) throw new TransportClosedError(`${this.id} write`);
    this.sendMessage(Buffer.from(data));
  }

  read(maxLength: number, opts?: IoOptions): Promise<Buffer> {
    if (this.closed && this.inbox.length === 0) return Promise.reject(new TransportClosedError(`${this.id} read`));
    const timeoutMs = opts?.timeoutMs ?? DEFAULT_IO_TIMEOUT_MS;
    return new Promise<Buffer>((resolve, reject) => {
      const w: Waiter = {
        max: maxLength,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new TransportTimeoutError(`${this.id} read`, timeoutMs));
        }, Math.min(timeoutMs, 2_147_483_647)),
      };
      this.waiters.push(w);
      this.serve();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.serve();
  }

  private serve(): void {
    while (this.waiters.length > 0) {
      const head = this.inbox[0];
      if (head === undefined) {
        if (!this.closed) return;
        const w = this.waiters.shift()!;
        clearTimeout(w.timer);
        w.reject(new TransportClosedError(`${this.id} read`));
        continue;
      }
      const w = this.waiters.shift()!;
      clearTimeout(w.timer);
      if (head.length <= w.max) {
        this.inbox.shift();
        w.resolve(head);
      } else {
        this.inbox[0] = head.subarray(w.max);
        w.resolve(head.subarray(0, w.max));
      }
    }
  }
}

/**
 * Listen on 'udp:HOST:PORT' (PORT 0 = ephemeral). Every init packet starts a
 * new session: the previous session's transport is closed (the device "aborts
 * any in-progress operation") and `onSession` receives the new one.
 */
export async function listenUdpDevice(
  listen: string,
  onSession: (transport: Transport) => void,
  opts: UdpDeviceServerOptions = {},
): Promise<UdpDeviceServer> {
  const { host, port } = parseNetworkAddress(listen, 0);
  const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  const proto = new UdpDeviceSession(opts.maxPacketSize ?? 1024, opts.startSeq ?? Math.floor(Math.random() * 0x10000));
  let peer: { address: string; port: number } | undefined;
  let current: UdpDeviceTransport | undefined;

  const out = (d: Buffer | undefined, to: { address: string; port: number } | undefined): void => {
    if (!d || !to || opts.lose?.('out', d)) return;
    socket.send(d, to.port, to.address);
  };

  socket.on('message', (msg, rinfo) => {
    if (opts.lose?.('in', msg)) return;
    const from = { address: rinfo.address, port: rinfo.port };
    const step = proto.handle(msg);
    if (step.init) {
      void current?.close();
      peer = from;
      const t = new UdpDeviceTransport(`udp-device:${from.address}:${from.port}`, (m) => out(proto.send(m), peer));
      current = t;
      onSession(t);
    }
    out(step.reply, from);
    if (step.message && current) current.deliver(step.message);
  });
  socket.on('error', () => undefined); // ICMP errors from a vanished host: keep serving

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const bound = socket.address().port;
  return {
    address: `udp:${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    close: async () => {
      await current?.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}
