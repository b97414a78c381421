import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TransportError, TransportTimeoutError } from '../../src/errors.js';
import { EmulatedFastbootDevice, runFastbootDevice } from '../../src/emulator/fastboot/index.js';
import { FastbootClient } from '../../src/fastboot/client.js';
import type { Transport } from '../../src/transport/transport.js';
import { openUdpTransport, UdpTransport, type DatagramLink } from '../../src/transport/udp.js';
import {
  decodeUdpPacket,
  encodeUdpPacket,
  UDP_ID,
  UdpDeviceSession,
  UdpHostSession,
} from '../../src/transport/udp-protocol.js';
import { listenUdpDevice } from '../../src/transport/udp-server.js';
import { needs, peerPath } from '../helpers/peers.js';

const hex = (b: Buffer): string => b.toString('hex');
const pkt = (id: number, flags: number, seq: number, data: string | Buffer = ''): Buffer =>
  encodeUdpPacket({ id, flags, seq, data: typeof data === 'string' ? Buffer.from(data, 'latin1') : data });

describe('UDP packet codec', () => {
  it('encodes the 4-byte header big-endian and round-trips', () => {
    const b = encodeUdpPacket({ id: UDP_ID.FASTBOOT, flags: 1, seq: 0x1234, data: Buffer.from('abc') });
    expect(hex(b)).toBe('03011234616263');
    expect(decodeUdpPacket(b)).toEqual({ id: 3, flags: 1, seq: 0x1234, data: Buffer.from('abc') });
    expect(decodeUdpPacket(Buffer.from([1, 0, 0]))).toBeUndefined();
  });
});

describe('UDP host state machine', () => {
  it('follows the README initialisation example (S = 0x55AA, host 2048 / device 1024 bytes, v2 device)', () => {
    const h = new UdpHostSession(2048);
    const q = h.queryPacket();
    expect(hex(q)).toBe('01000000');
    expect(h.accept(q, Buffer.from('0100000055aa', 'hex')).kind).toBe('match');
    const init = h.initPacket();
    expect(hex(init)).toBe('020055aa00010800');
    expect(h.accept(init, Buffer.from('020055aa00020400', 'hex')).kind).toBe('match');
    expect(h.version).toBe(1);
    expect(h.maxPacketSize).toBe(1024);
    expect(h.maxData).toBe(1020);
    expect(hex(h.fastbootPacket(Buffer.from('getvar:version'), false))).toBe('030055ab' + Buffer.from('getvar:version').toString('hex'));
  });

  it('ignores stale answers, reports device errors, wraps the sequence at 0xffff', () => {
    const h = new UdpHostSession();
    const q = h.queryPacket();
    h.accept(q, Buffer.from('01000000ffff', 'hex'));
    const init = h.initPacket();
    h.accept(init, Buffer.from('0200ffff00010400', 'hex'));
    expect(h.sequence).toBe(0);
    const p = h.fastbootPacket(Buffer.from('x'), false);
    expect(h.accept(p, pkt(UDP_ID.FASTBOOT, 0, 0xffff)).kind).toBe('stale'); // duplicate of the init answer's seq
    expect(h.accept(p, pkt(UDP_ID.INIT, 0, 0)).kind).toBe('stale'); // wrong id
    expect(h.accept(p, pkt(UDP_ID.ERROR, 0, 0, 'bad packet'))).toEqual({ kind: 'error', message: 'bad packet' });
    expect(h.accept(p, pkt(UDP_ID.FASTBOOT, 0, 0)).kind).toBe('match');
    expect(h.sequence).toBe(1);
  });

  it('rejects a device that offers less than the 512-byte minimum', () => {
    const h = new UdpHostSession();
    const q = h.queryPacket();
    h.accept(q, Buffer.from('010000000000', 'hex'));
    expect(() => h.accept(h.initPacket(), Buffer.from('0200000000010100', 'hex'))).toThrow(/below the protocol minimum 512/);
  });
});

describe('UDP device state machine', () => {
  it('runs the README chunking example (2100 bytes, 1024-byte packets, S = 0xFFFF)', () => {
    const d = new UdpDeviceSession(1024, 0xfffe);
    expect(hex(d.handle(pkt(UDP_ID.QUERY, 0, 0)).reply!)).toBe('01000000fffe');
    const init = d.handle(Buffer.from('0200fffe00010800', 'hex'));
    expect(init.init).toBe(true);
    expect(hex(init.reply!)).toBe('0200fffe00010400');
    const cmd = d.handle(pkt(3, 0, 0xffff, 'download:00000834'));
    expect(hex(cmd.reply!)).toBe('0300ffff');
    expect(cmd.message!.toString()).toBe('download:00000834');
    // poll before the device has anything to say: held, no reply
    expect(d.handle(pkt(3, 0, 0)).reply).toBeUndefined();
    expect(d.handle(pkt(3, 0, 0)).reply).toBeUndefined(); // host retransmit, still held
    expect(hex(d.send(Buffer.from('DATA00000834'))!)).toBe('03000000' + Buffer.from('DATA00000834').toString('hex'));
    const data = randomBytes(2100);
    const a = d.handle(pkt(3, 1, 1, data.subarray(0, 1020)));
    expect(a.message).toBeUndefined();
    const b = d.handle(pkt(3, 1, 2, data.subarray(1020, 2040)));
    const c = d.handle(pkt(3, 0, 3, data.subarray(2040)));
    expect([a, b, c].map((s) => hex(s.reply!))).toEqual(['03000001', '03000002', '03000003']);
    expect(c.message!.equals(data)).toBe(true);
    // a retransmit of the last packet gets the saved answer again, and is not delivered twice
    const again = d.handle(pkt(3, 0, 3, data.subarray(2040)));
    expect(hex(again.reply!)).toBe('03000003');
    expect(again.message).toBeUndefined();
    // older packets are ignored
    expect(d.handle(pkt(3, 0, 1, 'x'))).toEqual({});
    d.send(Buffer.from('OKAY'));
    expect(hex(d.handle(pkt(3, 0, 4)).reply!)).toBe('03000004' + Buffer.from('OKAY').toString('hex'));
  });

  it('splits a long device message with the continuation flag', () => {
    const d = new UdpDeviceSession(512, 0);
    d.handle(pkt(UDP_ID.INIT, 0, 0, Buffer.from('00010200', 'hex')));
    const long = randomBytes(1200);
    d.send(long);
    const r1 = decodeUdpPacket(d.handle(pkt(3, 0, 1)).reply!)!;
    const r2 = decodeUdpPacket(d.handle(pkt(3, 0, 2)).reply!)!;
    const r3 = decodeUdpPacket(d.handle(pkt(3, 0, 3)).reply!)!;
    expect([r1.flags, r2.flags, r3.flags]).toEqual([1, 1, 0]);
    expect([r1.data.length, r2.data.length, r3.data.length]).toEqual([508, 508, 184]);
    expect(Buffer.concat([r1.data, r2.data, r3.data]).equals(long)).toBe(true);
  });

  it('answers unknown ids and pre-init fastboot packets with an error packet', () => {
    const d = new UdpDeviceSession(1024, 0);
    expect(decodeUdpPacket(d.handle(pkt(3, 0, 0, 'getvar:x')).reply!)!.id).toBe(UDP_ID.ERROR);
    const e = decodeUdpPacket(d.handle(pkt(0x10, 0, 0)).reply!)!;
    expect(e.id).toBe(UDP_ID.ERROR);
    expect(e.data.toString()).toContain('unknown packet id 0x10');
  });
});

/** Host <-> device over an in-memory lossy "network", driven by the real state machines. */
function memoryNetwork(opts: { loseEvery?: number; deviceMax?: number; startSeq?: number; silent?: boolean } = {}) {
  const device = new UdpDeviceSession(opts.deviceMax ?? 1024, opts.startSeq ?? 0x1234);
  const received: Buffer[] = [];
  let n = 0;
  let sent = 0;
  let toHost: (d: Buffer) => void = () => undefined;
  const lost = (): boolean => !!opts.loseEvery && ++n % opts.loseEvery === 0;
  const deliver = (d: Buffer | undefined): void => {
    if (d && !lost()) setImmediate(() => toHost(d));
  };
  const link: DatagramLink = {
    send: (d) => {
      sent++;
      if (opts.silent || lost()) return;
      const copy = Buffer.from(d);
      setImmediate(() => {
        const step = device.handle(copy);
        deliver(step.reply);
        if (step.message) received.push(step.message);
      });
    },
    listen: (onDatagram) => {
      toHost = onDatagram;
    },
    close: () => undefined,
  };
  return { link, device, received, reply: (m: string | Buffer) => deliver(device.send(Buffer.from(m))), sentCount: () => sent };
}

describe('UDP host transport (in-memory network)', () => {
  it('connects, writes in packet-sized pieces, reads replies, survives 1-in-4 packet loss', async () => {
    const net = memoryNetwork({ loseEvery: 4, deviceMax: 1024 });
    const t = await UdpTransport.connect('udp:test', net.link, { retransmitMs: 15, timeoutMs: 3000 });
    expect(t.maxPacketSize).toBe(1024);
    const data = randomBytes(10_000);
    await t.write(data);
    expect(net.received).toHaveLength(1);
    expect(net.received[0]!.equals(data)).toBe(true);
    setTimeout(() => net.reply('OKAY'), 30); // the device answers later: the read poll is held meanwhile
    expect((await t.read(256)).toString()).toBe('OKAY');
    const long = randomBytes(3000); // longer than a packet: continuation on the device side
    net.reply(long);
    const got = Buffer.concat([await t.read(1024), await t.read(4096)]);
    expect(got.equals(long)).toBe(true);
    await t.close();
  });

  it('gives up on a silent address after the bounded number of queries', async () => {
    const net = memoryNetwork({ silent: true });
    const start = Date.now();
    const e = await UdpTransport.connect('udp:silent', net.link, { retransmitMs: 20, connectAttempts: 4 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('udp.no-answer');
    expect(net.sentCount()).toBe(4);
    expect(Date.now() - start).toBeLessThan(1000);
  });

  it('a device that stops answering mid-session gives a typed timeout, and the link is then unusable', async () => {
    const net = memoryNetwork();
    const t = await UdpTransport.connect('udp:test', net.link, { retransmitMs: 10 });
    const e = await t.read(256, { timeoutMs: 100 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportTimeoutError);
    expect(await t.write(Buffer.from('getvar:x')).catch((x: unknown) => x)).toBeInstanceOf(TransportError);
  });

  it('a device error packet becomes a typed transport error', async () => {
    const net = memoryNetwork();
    const t = await UdpTransport.connect('udp:test', net.link, { retransmitMs: 10 });
    // desynchronise: the device thinks the session never started
    (net.device as unknown as { last: undefined }).last = undefined;
    const e = (await t.write(Buffer.from('getvar:x')).catch((x: unknown) => x)) as TransportError;
    expect(e.code).toBe('udp.device-error');
    expect(e.message).toContain('fastboot packet before init');
  });
});

function runFastboot(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(peerPath('fastboot'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('UDP over real sockets with the emulated device', () => {
  async function withServer<T>(fn: (address: string, device: EmulatedFastbootDevice) => Promise<T>, lose?: () => boolean): Promise<T> {
    const device = new EmulatedFastbootDevice({ store: null, product: 'udp-phone', serial: 'UDP0001', maxDownloadSize: 1024 * 1024 });
    const sessions: Promise<void>[] = [];
    const server = await listenUdpDevice('udp:127.0.0.1:0', (t: Transport) => sessions.push(runFastbootDevice(t, device)), {
      maxPacketSize: 1400,
      lose: lose ? () => lose() : undefined,
    });
    try {
      return await fn(server.address, device);
    } finally {
      await server.close();
    }
  }

  it('miflash host transport: getvar and a download through the fastboot client', async () => {
    await withServer(async (address, device) => {
      const t = await openUdpTransport(address, { timeoutMs: 5000, retransmitMs: 50 });
      expect(t.id).toBe(address);
      const client = new FastbootClient(t, { timeoutMs: 5000 });
      expect(await client.getvar('product')).toBe('udp-phone');
      const img = randomBytes(200 * 1024 + 7);
      await client.download(img);
      const sha = createHash('sha256').update(img).digest('hex');
      expect(device.log).toContain(`download ${img.length} ${sha}`);
      await client.close();
    });
  });

  it('keeps working with 10% datagram loss in both directions', async () => {
    let i = 0;
    await withServer(
      async (address, device) => {
        const t = await openUdpTransport(address, { timeoutMs: 10_000, retransmitMs: 20 });
        const client = new FastbootClient(t, { timeoutMs: 10_000 });
        expect(await client.getvar('serialno')).toBe('UDP0001');
        const img = randomBytes(64 * 1024);
        await client.download(img);
        expect(device.log).toContain(`download ${img.length} ${createHash('sha256').update(img).digest('hex')}`);
        await client.close();
      },
      () => ++i % 10 === 0,
    );
  });

  it('nothing listening: a typed error, quickly', async () => {
    const e = (await openUdpTransport('udp:127.0.0.1:9', { retransmitMs: 30, connectAttempts: 3 }).catch((x: unknown) => x)) as TransportError;
    expect(e).toBeInstanceOf(TransportError);
    expect(['udp.refused', 'udp.no-answer']).toContain(e.code); // refused where ICMP unreachable comes back (Linux loopback)
  });

  it('AOSP fastboot (udp:) talks to the UDP device side', needs('fastboot'), async () => {
    await withServer(async (address) => {
      const r = await runFastboot(['-s', address, 'getvar', 'product']);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/^product: udp-phone$/m);
    });
  });

  it('AOSP fastboot flashes over UDP (continuation packets) through the UDP device side', needs('fastboot'), async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'miflash-udp-'));
    try {
      const img = randomBytes(300 * 1024 + 5);
      const file = path.join(dir, 'boot.img');
      writeFileSync(file, img);
      await withServer(async (address, device) => {
        const r = await runFastboot(['-s', address, 'flash', 'boot', file]);
        expect(r.code, r.out).toBe(0);
        expect(device.log).toContain(`download ${img.length} ${createHash('sha256').update(img).digest('hex')}`);
        expect(device.log).toContain('flash:boot');
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
