// Fastboot over UDP, host side: the UdpHostSession state machine driven over a
// datagram link with retransmission (500 ms, bounded), one packet outstanding
// at a time (the protocol has no windowing).

import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { TransportError, TransportTimeoutError } from '../errors.js';
import { parseNetworkAddress } from './tcp.js';
import type { IoOptions, Transport } from './transport.js';
import { UDP_HOST_MAX_PACKET_SIZE, UdpHostSession, UdpProtocolError, type UdpPacket } from './udp-protocol.js';

export const DEFAULT_UDP_PORT = 5554;
/** AOSP kResponseTimeoutMs. */
export const UDP_RETRANSMIT_MS = 500;
/** AOSP kMaxConnectAttempts: the first query is tried only a few times. */
export const UDP_CONNECT_ATTEMPTS = 4;
/** AOSP keeps retransmitting for 60 s (120 x 500 ms): a device may ignore us during a long flash. */
export const UDP_DEFAULT_TIMEOUT_MS = 60_000;
/** Gap between read polls when the device answered a poll with nothing. */
const EMPTY_POLL_DELAY_MS = 20;

/** A connected datagram socket, or an in-memory stand-in in tests. */
export interface DatagramLink {
  send(datagram: Buffer): void;
  /** Register the single receiver of incoming datagrams and link errors. */
  listen(onDatagram: (d: Buffer) => void, onError: (e: Error) => void): void;
  close(): void;
}

export interface UdpTransportOptions {
  /** Per-operation budget for one packet exchange (default 60 s, as AOSP). */
  timeoutMs?: number;
  /** Default 500 ms. */
  retransmitMs?: number;
  /** Offered in init (default 8192). */
  hostMaxPacketSize?: number;
  /** Query attempts before giving up (default 4). */
  connectAttempts?: number;
}

interface Waiter {
  sent: Buffer;
  resolve(p: UdpPacket): void;
  reject(e: Error): void;
}

const noop = (): void => {};

export class UdpTransport implements Transport {
  readonly kind = 'udp' as const;
  readonly maxInFlight = 1;
  readonly preferredWriteSize = 1024 * 1024;
  private readonly session: UdpHostSession;
  private readonly timeoutMs: number;
  private readonly retransmitMs: number;
  private waiter: Waiter | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private stash: Buffer = Buffer.alloc(0);
  private dead: TransportError | undefined;

  private constructor(
    readonly id: string,
    private readonly link: DatagramLink,
    opts: UdpTransportOptions,
  ) {
    this.session = new UdpHostSession(opts.hostMaxPacketSize ?? UDP_HOST_MAX_PACKET_SIZE);
    this.timeoutMs = opts.timeoutMs ?? UDP_DEFAULT_TIMEOUT_MS;
    this.retransmitMs = opts.retransmitMs ?? UDP_RETRANSMIT_MS;
    link.listen(
      (d) => this.onDatagram(d),
      (e) => this.onLinkError(e),
    );
  }

  /** Query + init over an already connected link. */
  static async connect(id: string, link: DatagramLink, opts: UdpTransportOptions = {}): Promise<UdpTransport> {
    const t = new UdpTransport(id, link, opts);
    try {
      const attempts = opts.connectAttempts ?? UDP_CONNECT_ATTEMPTS;
      await t.exchange(t.session.queryPacket(), attempts, 'query', () =>
        new TransportError(`${id}: no fastboot device answered (${attempts} queries, ${attempts * t.retransmitMs} ms)`, {
          code: 'udp.no-answer',
          hint: 'Check the address and that the device runs fastboot over UDP (port 5554 by default); a firewall may drop UDP.',
        }),
      );
      await t.exchange(t.session.initPacket(), t.attemptsFor(t.timeoutMs), 'init');
    } catch (e) {
      link.close();
      throw e;
    }
    return t;
  }

  /** Negotiated max packet size (header included). */
  get maxPacketSize(): number {
    return this.session.maxPacketSize;
  }

  write(data: Uint8Array, opts?: IoOptions): Promise<void> {
    return this.serial(async () => {
      const attempts = this.attemptsFor(opts?.timeoutMs ?? this.timeoutMs);
      const room = this.session.maxData;
      for (let off = 0; off < data.length; off += room) {
        const end = Math.min(off + room, data.length);
        const ack = await this.exchange(this.session.fastbootPacket(data.subarray(off, end), end < data.length), attempts, 'write');
        if (ack.data.length > 0) {
          throw this.die(new TransportError(`${this.id} write: device put ${ack.data.length} bytes of data in an ACK`, { code: 'udp.protocol' }));
        }
      }
    });
  }

  read(maxLength: number, opts?: IoOptions): Promise<Buffer> {
    return this.serial(async () => {
      if (this.stash.length > 0) return this.takeStash(maxLength);
      const timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const parts: Buffer[] = [];
        let more = true;
        while (more) {
          const left = Math.max(1, deadline - Date.now());
          const resp = await this.exchange(this.session.fastbootPacket(new Uint8Array(0), false), this.attemptsFor(left), 'read', () =>
            new TransportTimeoutError(`${this.id} read`, timeoutMs),
          );
          parts.push(Buffer.from(resp.data));
          more = (resp.flags & 0x01) !== 0;
        }
        const msg = Buffer.concat(parts);
        if (msg.length > 0) {
          this.stash = msg;
          return this.takeStash(maxLength);
        }
        if (Date.now() >= deadline) throw new TransportTimeoutError(`${this.id} read`, timeoutMs);
        await new Promise((r) => setTimeout(r, EMPTY_POLL_DELAY_MS));
      }
    });
  }

  async close(): Promise<void> {
    if (this.dead?.code === 'transport.closed-by-host') return;
    const err = this.die(new TransportError(`${this.id}: transport closed`, { code: 'transport.closed-by-host' }));
    this.waiter?.reject(err);
    this.link.close();
  }

  // ---- internals ------------------------------------------------------------

  private attemptsFor(timeoutMs: number): number {
    return Math.max(1, Math.ceil(timeoutMs / this.retransmitMs));
  }

  private takeStash(max: number): Buffer {
    const out = this.stash.subarray(0, max);
    this.stash = this.stash.subarray(out.length);
    return out;
  }

  /** One operation at a time: the protocol allows a single outstanding packet. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.catch(noop).then(() => {
      if (this.dead) throw this.dead;
      return op();
    });
    this.tail = run;
    return run;
  }

  /** Send `packet` every retransmitMs until a matching response, at most `attempts` times. */
  private exchange(packet: Buffer, attempts: number, op: string, onGiveUp?: () => TransportError): Promise<UdpPacket> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<UdpPacket>((resolve, reject) => {
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        this.waiter = undefined;
      };
      const transmit = (): void => {
        if (sent >= attempts) {
          finish();
          const err = onGiveUp?.() ?? new TransportTimeoutError(`${this.id} ${op}`, attempts * this.retransmitMs);
          // A lost exchange leaves the sequence numbers out of step: the session is over.
          reject(this.die(err));
          return;
        }
        sent++;
        try {
          this.link.send(packet);
        } catch (e) {
          finish();
          reject(this.die(linkError(this.id, op, e)));
          return;
        }
        timer = setTimeout(transmit, this.retransmitMs);
      };
      this.waiter = {
        sent: packet,
        resolve: (p) => {
          finish();
          resolve(p);
        },
        reject: (e) => {
          finish();
          reject(e);
        },
      };
      transmit();
    });
  }

  private onDatagram(d: Buffer): void {
    const w = this.waiter;
    if (!w) return; // late duplicate of an answered packet
    let r;
    try {
      r = this.session.accept(w.sent, d);
    } catch (e) {
      const msg = e instanceof UdpProtocolError ? e.message : String(e);
      w.reject(this.die(new TransportError(`${this.id}: UDP protocol error: ${msg}`, { code: 'udp.protocol', cause: e })));
      return;
    }
    if (r.kind === 'match') w.resolve(r.packet);
    else if (r.kind === 'error') {
      w.reject(this.die(new TransportError(`${this.id}: device reported a UDP protocol error: ${r.message}`, { code: 'udp.device-error' })));
    }
  }

  private onLinkError(e: Error): void {
    const err = linkError(this.id, 'receive', e);
    if (this.waiter) this.waiter.reject(this.die(err));
    else this.die(err);
  }

  private die(err: TransportError): TransportError {
    this.dead ??= err;
    return err;
  }
}

function linkError(id: string, op: string, e: unknown): TransportError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') {
    return new TransportError(`${id} ${op}: nothing listens on that UDP port (ICMP port unreachable)`, {
      code: 'udp.refused',
      cause: e,
      hint: 'Check the address and port (default 5554) and that the device is in fastboot over UDP.',
    });
  }
  return new TransportError(`${id} ${op}: UDP socket error: ${(e as Error).message ?? String(e)}`, { code: 'udp.socket', cause: e });
}

/** A connected dgram socket as a DatagramLink. */
async function connectSocket(host: string, port: number): Promise<DatagramLink> {
  const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  let onDatagram: (d: Buffer) => void = noop;
  let onError: (e: Error) => void = noop;
  socket.on('message', (msg) => onDatagram(msg));
  socket.on('error', (e) => onError(e));
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error): void => reject(e);
    socket.once('error', fail);
    socket.connect(port, host, () => {
      socket.off('error', fail);
      resolve();
    });
  }).catch((e: unknown) => {
    socket.close();
    throw new TransportError(`udp:${host}:${port}: cannot reach ${host}: ${(e as Error).message}`, { code: 'udp.resolve', cause: e });
  });
  let closed = false;
  return {
    send: (d) => {
      if (!closed) socket.send(d);
    },
    listen: (d, e) => {
      onDatagram = d;
      onError = e;
    },
    close: () => {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}

/** Open 'udp:HOST[:PORT]' (default port 5554): query, init, then fastboot packets. */
export async function openUdpTransport(address: string, opts: UdpTransportOptions = {}): Promise<UdpTransport> {
  const { host, port } = parseNetworkAddress(address, DEFAULT_UDP_PORT);
  const id = `udp:${host.includes(':') ? `[${host}]` : host}:${port}`;
  const link = await connectSocket(host, port);
  return UdpTransport.connect(id, link, opts);
}
