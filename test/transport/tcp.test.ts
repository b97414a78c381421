import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BadInputError, TransportClosedError, TransportError, TransportTimeoutError } from '../../src/errors.js';
import { encodeFrame, FrameDecoder } from '../../src/transport/tcp-framing.js';
import { openTcpTransport, parseNetworkAddress } from '../../src/transport/tcp.js';
import type { Transport } from '../../src/transport/transport.js';

/** A scripted peer: records decoded frames, lets the test write raw bytes. */
interface Peer {
  port: number;
  frames: Buffer[];
  sockets: net.Socket[];
  received: Buffer[];
  connected: Promise<net.Socket>;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function peer(opts: { handshakeReply?: string | null; onFrame?: (f: Buffer, s: net.Socket) => void } = {}): Promise<Peer> {
  const frames: Buffer[] = [];
  const received: Buffer[] = [];
  const sockets: net.Socket[] = [];
  let onConnect!: (s: net.Socket) => void;
  const connected = new Promise<net.Socket>((r) => (onConnect = r));
  const server = net.createServer((s) => {
    sockets.push(s);
    const dec = new FrameDecoder({ handshake: true });
    let cur: Buffer[] = [];
    let greeted = false;
    s.on('data', (chunk) => {
      received.push(chunk);
      dec.push(chunk);
      if (!greeted && dec.pollHandshake()) {
        greeted = true;
        if (opts.handshakeReply !== null) s.write(opts.handshakeReply ?? 'FB01');
      }
      for (let p = dec.next(); p; p = dec.next()) {
        cur.push(p.data);
        if (p.end) {
          const f = Buffer.concat(cur);
          cur = [];
          frames.push(f);
          opts.onFrame?.(f, s);
        }
      }
    });
    s.on('error', () => undefined);
    onConnect(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p: Peer = {
    port: (server.address() as net.AddressInfo).port,
    frames,
    sockets,
    received,
    connected,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  cleanups.push(p.close);
  return p;
}

async function open(port: number, opts = {}): Promise<Transport> {
  const t = await openTcpTransport(`tcp:127.0.0.1:${port}`, opts);
  cleanups.push(() => t.close());
  return t;
}

describe('parseNetworkAddress', () => {
  it('accepts tcp:HOST[:PORT], HOST:PORT and [v6]:PORT', () => {
    expect(parseNetworkAddress('tcp:192.168.1.5', 5554)).toEqual({ host: '192.168.1.5', port: 5554 });
    expect(parseNetworkAddress('tcp:phone.lan:6000', 5554)).toEqual({ host: 'phone.lan', port: 6000 });
    expect(parseNetworkAddress('127.0.0.1:0', 5554)).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseNetworkAddress('udp:[::1]:7000', 5554)).toEqual({ host: '::1', port: 7000 });
    expect(parseNetworkAddress('fe80::1', 5554)).toEqual({ host: 'fe80::1', port: 5554 });
  });
  it('rejects a missing host or a bad port with BadInputError', () => {
    expect(() => parseNetworkAddress('tcp:', 5554)).toThrow(BadInputError);
    expect(() => parseNetworkAddress('tcp:host:99999', 5554)).toThrow(/port "99999"/);
    expect(() => parseNetworkAddress('tcp:host:abc', 5554)).toThrow(/port "abc"/);
  });
});

describe('openTcpTransport', () => {
  it('handshakes, frames writes in order, and reads whole reply frames', async () => {
    const p = await peer({
      onFrame: (f, s) => {
        if (f.toString() === 'getvar:product') s.write(Buffer.concat([encodeFrame(Buffer.from('INFOx')), encodeFrame(Buffer.from('OKAYemu'))]));
      },
    });
    const t = await open(p.port);
    expect(t).toMatchObject({ id: `tcp:127.0.0.1:${p.port}`, kind: 'tcp', preferredWriteSize: 1 << 20, maxInFlight: 4 });
    expect(Buffer.concat(p.received).subarray(0, 4).toString()).toBe('FB01');
    // Several writes in flight at once arrive as separate frames, in call order.
    const big = Buffer.alloc(3 << 20, 0x5a);
    await Promise.all([t.write(Buffer.from('download:00300000')), t.write(big), t.write(Buffer.from('flash:boot'))]);
    await t.write(Buffer.from('getvar:product'));
    expect((await t.read(256)).toString()).toBe('INFOx');
    expect((await t.read(256)).toString()).toBe('OKAYemu');
    await expect.poll(() => p.frames.length).toBe(4);
    expect(p.frames[0]!.toString()).toBe('download:00300000');
    expect(p.frames[1]!.equals(big)).toBe(true);
    expect(p.frames[2]!.toString()).toBe('flash:boot');
  });

  it('read(max) returns at most max bytes and the rest of the frame on the next read, never crossing frames', async () => {
    const p = await peer();
    const t = await open(p.port);
    const s = await p.connected;
    s.write(Buffer.concat([encodeFrame(Buffer.from('0123456789')), encodeFrame(Buffer.from('AB'))]));
    expect((await t.read(4)).toString()).toBe('0123');
    expect((await t.read(100)).toString()).toBe('456789');
    expect((await t.read(100)).toString()).toBe('AB');
  });

  it('waits for a frame split across TCP segments', async () => {
    const p = await peer();
    const t = await open(p.port);
    const s = await p.connected;
    const f = encodeFrame(Buffer.from('OKAYsplit'));
    const r = t.read(256);
    s.write(f.subarray(0, 5));
    await new Promise((res) => setTimeout(res, 30));
    s.write(f.subarray(5, 10));
    await new Promise((res) => setTimeout(res, 30));
    s.write(f.subarray(10));
    expect((await r).toString()).toBe('OKAYsplit');
  });

  it('times out a read with TransportTimeoutError and keeps later data intact', async () => {
    const p = await peer();
    const t = await open(p.port);
    const s = await p.connected;
    const started = Date.now();
    await expect(t.read(64, { timeoutMs: 100 })).rejects.toBeInstanceOf(TransportTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    s.write(encodeFrame(Buffer.from('OKAYlate')));
    expect((await t.read(64, { timeoutMs: 1000 })).toString()).toBe('OKAYlate');
  });

  it('delivers data sent before the peer closed, then TransportClosedError', async () => {
    const p = await peer();
    const t = await open(p.port);
    const s = await p.connected;
    s.end(encodeFrame(Buffer.from('OKAY')));
    expect((await t.read(64)).toString()).toBe('OKAY');
    await expect(t.read(64, { timeoutMs: 2000 })).rejects.toBeInstanceOf(TransportClosedError);
    await expect(t.write(Buffer.from('getvar:x'))).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('a pending read fails with TransportClosedError when the peer drops the link', async () => {
    const p = await peer();
    const t = await open(p.port);
    const s = await p.connected;
    const r = t.read(64, { timeoutMs: 5000 });
    s.destroy();
    await expect(r).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('a write the device never reads times out', async () => {
    const p = await peer();
    const t = await open(p.port);
    const s = await p.connected;
    s.pause(); // the device stops reading: kernel buffers fill, the write callback never fires
    s.removeAllListeners('data');
    const chunk = Buffer.alloc(8 << 20);
    await expect(
      (async () => {
        for (let i = 0; i < 64; i++) await t.write(chunk, { timeoutMs: 300 });
      })(),
    ).rejects.toBeInstanceOf(TransportTimeoutError);
  });

  it('fails the handshake on a non-fastboot peer and on a silent one', async () => {
    const wrong = await peer({ handshakeReply: 'HTTP' });
    await expect(openTcpTransport(`tcp:127.0.0.1:${wrong.port}`)).rejects.toThrow(/bad fastboot TCP handshake/);
    const silent = await peer({ handshakeReply: null });
    await expect(openTcpTransport(`tcp:127.0.0.1:${silent.port}`, { connectTimeoutMs: 200 })).rejects.toBeInstanceOf(
      TransportTimeoutError,
    );
  });

  it('handshake:false frames without FB01 (EDL emulator link)', async () => {
    const frames: Buffer[] = [];
    const server = net.createServer((s) => {
      const dec = new FrameDecoder();
      s.on('data', (c) => {
        dec.push(c);
        for (let p = dec.next(); p; p = dec.next()) if (p.end) frames.push(Buffer.from(p.data));
      });
      s.write(encodeFrame(Buffer.from('<?xml?>')));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    const t = await open((server.address() as net.AddressInfo).port, { handshake: false });
    expect((await t.read(4096)).toString()).toBe('<?xml?>');
    await t.write(Buffer.from('hello'));
    await expect.poll(() => frames.map(String)).toEqual(['hello']);
    await t.close();
  });

  it('connection refused is a TransportError naming the address', async () => {
    const p = await peer();
    const port = p.port;
    await p.close();
    const err = await openTcpTransport(`tcp:127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toContain(`tcp:127.0.0.1:${port}`);
    expect((err as Error).message).toContain('ECONNREFUSED');
  });
});
