// Drivers that connect FastbootDeviceSession to the outside world: a TCP
// server speaking fastboot-over-TCP (FB01 + length framing), and a loop over
// any device-side Transport (e.g. the in-memory pair used by unit tests).
import net from 'node:net';
import { encodeFrame, encodeHandshake, FrameDecoder } from '../../transport/tcp-framing.js';
import type { Transport } from '../../transport/transport.js';
import { BadInputError, TransportError } from '../../errors.js';
import { DEFAULT_TCP_PORT, parseNetworkAddress } from '../../transport/tcp.js';
import { EmulatedFastbootDevice } from './device.js';
import { FastbootDeviceSession, MAX_COMMAND } from './session.js';

/** Bytes asked of the kernel per socket read. */
const READ_BUFFER_SIZE = 4 * 1024 * 1024;

/**
 * Serve one TCP connection (accepted paused) until it closes. Returns the
 * socket that now owns the connection (see largeReads).
 */
function serveSocket(device: EmulatedFastbootDevice, accepted: net.Socket): net.Socket {
  const decoder = new FrameDecoder({ handshake: true, maxFrameLength: 0xffff_ffff });
  const onChunk = (chunk: Buffer): void => {
    decoder.push(chunk);
    void pump(); // while a command runs, the running pump picks the new data up when it finishes
  };
  // Download data is consumed synchronously (dropped, hashed or copied), so a
  // read buffer can be reused unless the decoder still holds some of it.
  const large = largeReads(accepted, onChunk, () => decoder.buffered > 0);
  const socket = large ?? accepted;
  if (!large) {
    socket.on('data', onChunk);
    socket.resume();
  }
  socket.setNoDelay(true);
  const session = new FastbootDeviceSession(device, {
    send: (packet) => {
      if (!socket.destroyed) socket.write(encodeFrame(packet));
    },
    close: (abrupt) => {
      if (abrupt) socket.destroy();
      else socket.end();
    },
  });
  let command: Buffer[] = [];
  let commandBytes = 0;
  let busy = false;
  let greeted = false;

  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      if (!greeted) {
        if (!decoder.pollHandshake()) return;
        greeted = true;
        socket.write(encodeHandshake());
      }
      for (;;) {
        if (session.closed) {
          return;
        }
        const piece = session.dataRemaining > 0 ? decoder.next(session.dataRemaining) : decoder.next();
        if (!piece) return;
        if (session.dataRemaining > 0 && commandBytes === 0) {
          session.feedData(piece.data);
          continue;
        }
        // Command phase: collect one whole frame (bounded) before handling it.
        // Keep at most MAX_COMMAND bytes of an oversized frame (enough to log its start).
        // Copied: the piece may live in a read buffer that is about to be reused.
        if (commandBytes < MAX_COMMAND) command.push(Buffer.from(piece.data.subarray(0, MAX_COMMAND - commandBytes)));
        commandBytes += piece.data.length;
        if (!piece.end) continue;
        const packet = Buffer.concat(command);
        const length = commandBytes;
        command = [];
        commandBytes = 0;
        if (length > MAX_COMMAND) {
          session.commandTooLong(packet, length);
          continue;
        }
        socket.pause();
        await session.command(packet);
        socket.resume();
      }
    } catch (err) {
      // Bad handshake or framing: a real device would drop the link too.
      device.note(`connection dropped: ${(err as Error).message}`);
      socket.destroy();
    } finally {
      busy = false;
    }
  };
  socket.on('error', () => socket.destroy());
  return socket;
}

/**
 * Node reads an accepted socket 64 KiB at a time, each read into a fresh
 * buffer, a fixed cost per 64 KiB that halves the rate a bench device can
 * drop data at. `onread` (offered only for client sockets) reads up to
 * READ_BUFFER_SIZE per syscall into a buffer we reuse; so the accepted
 * socket's handle moves into a new Socket that has it. `retained()` says
 * the last buffer is still referenced (next read gets a fresh one). Returns
 * undefined (caller keeps `data` events) if this Node has no such handle.
 */
function largeReads(accepted: net.Socket, onChunk: (chunk: Buffer) => void, retained: () => boolean): net.Socket | undefined {
  const husk = accepted as unknown as { _handle?: object | null };
  const handle = husk._handle;
  if (!handle) return undefined;
  let buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  const nextBuffer = (): Buffer => (retained() ? (buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE)) : buffer);
  let socket: net.Socket;
  try {
    husk._handle = null;
    socket = new net.Socket({
      handle,
      readable: true,
      writable: true,
      onread: { buffer: nextBuffer, callback: (n: number, buf: Uint8Array) => void onChunk(Buffer.from(buf.buffer, buf.byteOffset, n)) },
    } as net.SocketConstructorOpts);
  } catch {
    husk._handle = handle;
    return undefined;
  }
  accepted.destroy(); // no handle left: this only settles the server's connection count
  return socket;
}

export interface FastbootTcpServer {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Listen on 'tcp:HOST:PORT' (PORT 0 = ephemeral). Connections are served one session each; the device state is shared. */
export async function listenTcp(listen: string, device: EmulatedFastbootDevice): Promise<FastbootTcpServer> {
  if (/^udp:/i.test(listen)) throw new BadInputError(`cannot listen on "${listen}": the emulator speaks TCP only`);
  const { host, port: wanted } = parseNetworkAddress(listen, DEFAULT_TCP_PORT);
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
    const socket = serveSocket(device, accepted);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new TransportError(`cannot listen on ${listen}: ${err.code ?? err.message}`, {
          code: 'transport.listen',
          cause: err,
          hint: err.code === 'EADDRINUSE' ? 'another process uses that port; pick another or use port 0' : undefined,
        }),
      ),
    );
    server.listen(wanted, host, () => {
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `tcp:${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Run a session over a device-side Transport until the host closes it, the
 * device reboots (closes it), or a fault drops it. Reads never time out for
 * long: an idle host just keeps the loop polling.
 */
export async function serveTransport(device: EmulatedFastbootDevice, transport: Transport): Promise<void> {
  const session = new FastbootDeviceSession(device, {
    send: (packet) => {
      transport.write(packet).catch(() => undefined);
    },
    close: () => {
      void transport.close();
    },
  });
  while (!session.closed) {
    let packet: Buffer;
    try {
      const want = session.dataRemaining > 0 ? Math.min(session.dataRemaining, 16 * 1024 * 1024) : MAX_COMMAND;
      packet = await transport.read(want, { timeoutMs: 2_147_483_647 });
    } catch {
      return; // closed by the host
    }
    if (session.dataRemaining > 0) session.feedData(packet);
    else await session.command(packet);
  }
}
