// Links for the emulated EDL device: an in-process Transport end (unit tests)
// and a TCP server (end-to-end tests; 8-byte length framing, no handshake,
// so packet boundaries survive as they do on USB).
import net from 'node:net';
import { TransportClosedError, TransportTimeoutError } from '../../errors.js';
import { encodeFrame, FrameDecoder } from '../../transport/tcp-framing.js';
import type { Transport } from '../../transport/transport.js';
import { EmulatedEdlDevice, type EdlEmulatorOptions } from './device.js';
import type { VirtualDisk } from './disk.js';

/** Serve the device on the device end of a memory transport pair until either side closes. */
export function serveOnTransport(t: Transport, disks: VirtualDisk[], opts: EdlEmulatorOptions): { device: EmulatedEdlDevice; done: Promise<void> } {
  let queue: Promise<void> = Promise.resolve();
  let gone = false;
  const device = new EmulatedEdlDevice(disks, opts, {
    send: (p) => {
      queue = queue.then(() => t.write(p)).catch(() => undefined);
    },
    disconnect: () => {
      gone = true;
      queue = queue.then(() => t.close());
    },
  });
  const done = (async () => {
    device.start();
    while (!gone) {
      let packet: Buffer;
      try {
        packet = await t.read(64 * 1024 * 1024, { timeoutMs: 600_000 });
      } catch (err) {
        if (err instanceof TransportTimeoutError) continue;
        if (err instanceof TransportClosedError) break;
        throw err;
      }
      device.receive(packet);
    }
    await queue;
  })();
  return { device, done };
}

export interface EdlTcpServer {
  /** "tcp:127.0.0.1:PORT" */
  address: string;
  port: number;
  /** Devices served so far (one per connection = one enumeration). */
  sessions: EmulatedEdlDevice[];
  close(): Promise<void>;
}

/**
 * Listen on host:port (0 = ephemeral). Each connection is one enumeration of the
 * device: it starts in Sahara, unless the previous connection dropped while the
 * programmer was running (then Firehose is still up, as on real hardware).
 */
export async function startEdlTcpServer(host: string, port: number, disks: VirtualDisk[], opts: EdlEmulatorOptions, onEvent?: (line: string) => void): Promise<EdlTcpServer> {
  const sessions: EmulatedEdlDevice[] = [];
  const sockets = new Set<net.Socket>();
  let programmerRunning = false;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder({ handshake: false, maxFrameLength: 64 * 1024 * 1024 });
    let frame: Buffer[] = [];
    const device = new EmulatedEdlDevice(disks, { ...opts, startInFirehose: opts.startInFirehose || programmerRunning }, {
      send: (p) => {
        if (socket.destroyed || socket.write(encodeFrame(p))) return undefined;
        // The socket buffer is full: let the device wait (a multi-GB <read> must not pile up in memory).
        return new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      },
      disconnect: (reason) => {
        programmerRunning = false;
        onEvent?.(`disconnect: ${reason}`);
        socket.end();
      },
    });
    sessions.push(device);
    onEvent?.(`connect: ${device.opts.startInFirehose || programmerRunning ? 'firehose already running' : 'sahara'}`);
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      try {
        for (let piece = decoder.next(); piece; piece = decoder.next()) {
          frame.push(piece.data);
          if (!piece.end) continue;
          const packet = frame.length === 1 ? Buffer.from(frame[0]!) : Buffer.concat(frame);
          frame = [];
          device.receive(packet);
        }
      } catch (err) {
        onEvent?.(`framing error: ${(err as Error).message}`);
        socket.destroy();
      }
    });
    socket.on('close', () => {
      sockets.delete(socket);
      if (device.state === 'firehose') programmerRunning = true;
    });
    socket.on('error', () => undefined);
    device.start();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as net.AddressInfo).port;
  return {
    address: `tcp:${host}:${actual}`,
    port: actual,
    sessions,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
