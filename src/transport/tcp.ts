// Fastboot over TCP (host side): FB01 handshake, then 8-byte big-endian length
// framing. read(max) returns the rest of the current frame, up to max bytes.
import net from 'node:net';
import { BadInputError, TransportClosedError, TransportError, TransportTimeoutError } from '../errors.js';
import { DEFAULT_IO_TIMEOUT_MS, type IoOptions, type Transport } from './transport.js';
import { encodeFrameHeader, encodeHandshake, FrameDecoder, FramingError } from './tcp-framing.js';

export const DEFAULT_TCP_PORT = 5554;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Stop reading from the socket while this much unread data is queued. */
const READ_HIGH_WATER = 8 * 1024 * 1024;

export interface NetworkAddress {
  host: string;
  port: number;
}

/** Parse 'tcp:HOST[:PORT]', 'udp:HOST[:PORT]', 'HOST[:PORT]' or '[v6]:PORT'. */
export function parseNetworkAddress(spec: string, defaultPort: number): NetworkAddress {
  const rest = spec.replace(/^(tcp|udp):/i, '');
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
  } else if ((rest.match(/:/g) ?? []).length > 1) {
    host = rest; // bare IPv6 literal without port
  } else {
    const i = rest.lastIndexOf(':');
    host = i < 0 ? rest : rest.slice(0, i);
    portText = i < 0 ? undefined : rest.slice(i + 1);
  }
  if (host === '') throw new BadInputError(`bad network address "${spec}": missing host`, { hint: 'use tcp:HOST[:PORT], e.g. tcp:192.168.1.5:5554' });
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
      throw new BadInputError(`bad network address "${spec}": port "${portText}" is not a number in 0..65535`, {
        hint: 'use tcp:HOST[:PORT], e.g. tcp:192.168.1.5:5554',
      });
    }
    port = Number(portText);
  }
  return { host, port };
}

export interface TcpTransportOptions {
  /** Exchange the "FB01" handshake (default true). false = framing only (EDL emulator link). */
  handshake?: boolean;
  /** Default per-operation timeout for read/write. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
}

export async function openTcpTransport(address: string, opts: TcpTransportOptions = {}): Promise<Transport> {
  const { host, port } = parseNetworkAddress(address, DEFAULT_TCP_PORT);
  const id = `tcp:${host.includes(':') ? `[${host}]` : host}:${port}`;
  const connectTimeout = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const socket = await connect(id, host, port, connectTimeout);
  const transport = new TcpTransport(id, socket, opts.timeoutMs ?? DEFAULT_IO_TIMEOUT_MS, opts.handshake ?? true);
  if (opts.handshake ?? true) {
    try {
      await transport.handshake(connectTimeout);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }
  return transport;
}

function connect(id: string, host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TransportTimeoutError(`connect to ${id}`, timeoutMs, { hint: 'is the device on the network and in fastboot mode?' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new TransportError(`connect to ${id}: ${err.code ?? err.message}`, {
          code: 'transport.connect',
          cause: err,
          hint: err.code === 'ECONNREFUSED' ? 'nothing is listening there; is the device in fastboot mode with TCP enabled?' : undefined,
        }),
      );
    });
  });
}

interface PendingRead {
  max: number;
  resolve(buf: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

class TcpTransport implements Transport {
  readonly kind = 'tcp' as const;
  readonly preferredWriteSize = 1024 * 1024;
  readonly maxInFlight = 4;
  private readonly decoder: FrameDecoder;
  private readonly reads: PendingRead[] = [];
  /** Pieces of the current frame already taken from the decoder but not yet returned. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private closedError: Error | undefined;
  private handshakeWaiter: (() => void) | undefined;
  private readonly closedPromise: Promise<void>;
  private paused = false;

  constructor(
    readonly id: string,
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
    handshake: boolean,
  ) {
    this.decoder = new FrameDecoder({ handshake });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      if (this.decoder.buffered > READ_HIGH_WATER && !this.paused) {
        this.paused = true;
        socket.pause();
      }
      this.pump();
    });
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (err) => this.fail(new TransportClosedError(`${id}: ${err.message}`, { cause: err })));
    socket.on('end', () => this.fail(new TransportClosedError(id)));
    socket.on('close', () => this.fail(new TransportClosedError(id)));
  }

  async handshake(timeoutMs: number): Promise<void> {
    this.socket.write(encodeHandshake());
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.handshakeWaiter = undefined;
        reject(new TransportTimeoutError(`${this.id}: fastboot TCP handshake`, timeoutMs, { hint: 'the peer accepted the connection but did not answer "FB01"; is it a fastboot device?' }));
      }, timeoutMs);
      this.handshakeWaiter = () => {
        clearTimeout(timer);
        this.handshakeWaiter = undefined;
        if (this.closedError && !this.decoder.handshakeDone) reject(this.closedError);
        else resolve();
      };
      this.pump();
    });
  }

  write(data: Uint8Array, opts: IoOptions = {}): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new TransportTimeoutError(`${this.id}: write of ${data.length} bytes`, timeoutMs, { hint: 'the device stopped reading' }));
      }, timeoutMs);
      this.socket.cork();
      this.socket.write(encodeFrameHeader(data.length));
      // The callback fires once the kernel took the data, which paces writers.
      this.socket.write(data, (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(this.closedError ?? new TransportClosedError(`${this.id}: write`, { cause: err }));
        else resolve();
      });
      this.socket.uncork();
    });
  }

  read(maxLength: number, opts: IoOptions = {}): Promise<Buffer> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const pending: PendingRead = { max: Math.max(1, maxLength), resolve, reject, timer: undefined };
      pending.timer = setTimeout(() => {
        const i = this.reads.indexOf(pending);
        if (i >= 0) this.reads.splice(i, 1);
        reject(new TransportTimeoutError(`${this.id}: read`, timeoutMs));
      }, timeoutMs);
      this.reads.push(pending);
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (!this.closedError) this.fail(new TransportClosedError(`${this.id} (closed by us)`));
    if (!this.socket.destroyed) {
      this.socket.end();
      const timer = setTimeout(() => this.socket.destroy(), 1000);
      await this.closedPromise;
      clearTimeout(timer);
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.pump();
  }

  /** Serve pending reads from decoded frames; each read gets min(max, rest of frame) bytes. */
  private pump(): void {
    try {
      this.decoder.pollHandshake();
    } catch (err) {
      this.protocolError(err);
      return;
    }
    if (this.handshakeWaiter && (this.decoder.handshakeDone || this.closedError)) this.handshakeWaiter();
    while (this.reads.length > 0) {
      const req = this.reads[0]!;
      let piece;
      try {
        while (this.partialBytes < req.max && (piece = this.decoder.next(req.max - this.partialBytes))) {
          this.partial.push(piece.data);
          this.partialBytes += piece.data.length;
          if (piece.end) break;
        }
      } catch (err) {
        this.protocolError(err);
        return;
      }
      const complete = this.partialBytes >= req.max || piece?.end === true;
      if (!complete) {
        if (this.closedError) {
          this.reads.shift();
          clearTimeout(req.timer);
          req.reject(this.closedError);
          continue;
        }
        break;
      }
      this.reads.shift();
      clearTimeout(req.timer);
      const out = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      req.resolve(out);
    }
    if (this.paused && this.decoder.buffered < READ_HIGH_WATER / 2) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private protocolError(err: unknown): void {
    const msg = err instanceof FramingError ? err.message : String(err);
    this.closedError = new TransportError(`${this.id}: ${msg}`, { code: 'transport.protocol', cause: err });
    this.socket.destroy();
    for (const r of this.reads.splice(0)) {
      clearTimeout(r.timer);
      r.reject(this.closedError);
    }
    this.handshakeWaiter?.();
  }
}
