// The emulated fastboot device over the in-memory transport pair: protocol
// replies, flashing (raw and sparse), partitions, slots, log, reboot.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { EmulatedFastbootDevice, runFastbootDevice, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import { tempDir } from '../helpers/emulator.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Reply {
  status: string;
  message: string;
  info: string[];
}

/** A minimal host: send one command, collect INFO lines until OKAY/FAIL/DATA. */
async function cmd(t: Transport, text: string): Promise<Reply> {
  await t.write(Buffer.from(text));
  const info: string[] = [];
  for (;;) {
    const r = (await t.read(256, { timeoutMs: 2000 })).toString('latin1');
    const status = r.slice(0, 4);
    if (status === 'INFO' || status === 'TEXT') info.push(r);
    else return { status, message: r.slice(4), info };
  }
}

async function download(t: Transport, data: Buffer, pieceSize = 65536): Promise<void> {
  const r = await cmd(t, `download:${data.length.toString(16).padStart(8, '0')}`);
  expect(r).toMatchObject({ status: 'DATA', message: data.length.toString(16).padStart(8, '0') });
  for (let i = 0; i < data.length; i += pieceSize) await t.write(data.subarray(i, i + pieceSize));
  expect((await t.read(256, { timeoutMs: 2000 })).toString()).toBe('OKAY');
}

function device(opts: Partial<FastbootEmulatorOptions> = {}): EmulatedFastbootDevice & { dir: string } {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const store = opts.store === null ? null : path.join(tmp.dir, 'store');
  return Object.assign(new EmulatedFastbootDevice({ ...opts, store, logFile: opts.logFile ?? path.join(tmp.dir, 'log') }), { dir: tmp.dir });
}

function connect(dev: EmulatedFastbootDevice): { host: Transport; done: Promise<void> } {
  const pair = createMemoryTransportPair();
  const done = runFastbootDevice(pair.device, dev);
  cleanups.push(() => void pair.host.close());
  return { host: pair.host, done };
}

// --- a tiny sparse writer for tests (libsparse layout, little-endian) ---
type Chunk = { raw: Buffer } | { fill: number; blocks: number } | { skip: number } | { crc: number };
function sparse(blockSize: number, chunks: Chunk[]): Buffer {
  const parts: Buffer[] = [];
  let blocks = 0;
  for (const c of chunks) {
    const h = Buffer.alloc(12);
    if ('raw' in c) {
      h.writeUInt16LE(0xcac1, 0);
      h.writeUInt32LE(c.raw.length / blockSize, 4);
      h.writeUInt32LE(12 + c.raw.length, 8);
      parts.push(h, c.raw);
      blocks += c.raw.length / blockSize;
    } else if ('fill' in c) {
      h.writeUInt16LE(0xcac2, 0);
      h.writeUInt32LE(c.blocks, 4);
      h.writeUInt32LE(16, 8);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(c.fill, 0);
      parts.push(h, v);
      blocks += c.blocks;
    } else if ('skip' in c) {
      h.writeUInt16LE(0xcac3, 0);
      h.writeUInt32LE(c.skip, 4);
      h.writeUInt32LE(12, 8);
      parts.push(h);
      blocks += c.skip;
    } else {
      h.writeUInt16LE(0xcac4, 0);
      h.writeUInt32LE(16, 8);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(c.crc, 0);
      parts.push(h, v);
    }
  }
  const fh = Buffer.alloc(28);
  fh.writeUInt32LE(0xed26ff3a, 0);
  fh.writeUInt16LE(1, 4);
  fh.writeUInt16LE(28, 8);
  fh.writeUInt16LE(12, 10);
  fh.writeUInt32LE(blockSize, 12);
  fh.writeUInt32LE(blocks, 16);
  fh.writeUInt32LE(chunks.length, 20);
  return Buffer.concat([fh, ...parts]);
}

function fillOf(value: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) b.writeUInt32LE(value, i);
  return b;
}

describe('emulated fastboot device: variables', () => {
  it('answers the getvars the AOSP client asks, FAILs unknown ones', async () => {
    const dev = device({ product: 'raphael', serial: 'abc123', maxDownloadSize: 0x1000_0000, slots: ['a', 'b'], vars: { anti: '4' } });
    const { host } = connect(dev);
    const get = async (v: string) => cmd(host, `getvar:${v}`);
    expect(await get('product')).toMatchObject({ status: 'OKAY', message: 'raphael' });
    expect(await get('serialno')).toMatchObject({ status: 'OKAY', message: 'abc123' });
    expect(await get('max-download-size')).toMatchObject({ status: 'OKAY', message: '0x10000000' });
    expect(await get('anti')).toMatchObject({ status: 'OKAY', message: '4' });
    expect(await get('unlocked')).toMatchObject({ status: 'OKAY', message: 'yes' });
    expect(await get('current-slot')).toMatchObject({ status: 'OKAY', message: 'a' });
    expect(await get('slot-count')).toMatchObject({ status: 'OKAY', message: '2' });
    expect(await get('has-slot:boot')).toMatchObject({ status: 'OKAY', message: 'yes' });
    expect(await get('has-slot:userdata')).toMatchObject({ status: 'OKAY', message: 'no' });
    expect(await get('partition-size:vbmeta_a')).toMatchObject({ status: 'OKAY', message: '0x10000' });
    expect(await get('partition-type:userdata')).toMatchObject({ status: 'OKAY', message: 'f2fs' });
    expect(await get('is-logical:system_b')).toMatchObject({ status: 'OKAY', message: 'no' });
    expect((await get('partition-size:nope')).status).toBe('FAIL');
    expect((await get('no-such-var')).status).toBe('FAIL');
  });

  it('getvar:all lists name:value INFO lines, then OKAY', async () => {
    const dev = device({ product: 'umi', partitions: { boot: 4096 } });
    const { host } = connect(dev);
    const r = await cmd(host, 'getvar:all');
    expect(r.status).toBe('OKAY');
    expect(r.info).toContain('INFOproduct:umi');
    expect(r.info).toContain('INFOpartition-size:boot:0x1000');
    expect(r.info).toContain('INFOhas-slot:boot:no');
    expect(r.info).toContain('INFOmax-download-size:0x20000000');
  });

  it('set_active switches current-slot; an unknown slot FAILs', async () => {
    const dev = device({ slots: ['a', 'b'] });
    const { host } = connect(dev);
    expect((await cmd(host, 'set_active:b')).status).toBe('OKAY');
    expect(await cmd(host, 'getvar:current-slot')).toMatchObject({ status: 'OKAY', message: 'b' });
    expect((await cmd(host, 'set_active:c')).status).toBe('FAIL');
  });

  it('oem/flashing lock and unlock change unlocked; oem device-info sends INFO', async () => {
    const dev = device();
    const { host } = connect(dev);
    expect((await cmd(host, 'flashing lock')).status).toBe('OKAY');
    expect((await cmd(host, 'getvar:unlocked')).message).toBe('no');
    const info = await cmd(host, 'oem device-info');
    expect(info.info).toContain('INFODevice unlocked: false');
    expect((await cmd(host, 'oem unlock')).status).toBe('OKAY');
    expect((await cmd(host, 'getvar:unlocked')).message).toBe('yes');
    expect((await cmd(host, 'bogus-command')).status).toBe('FAIL');
  });
});

describe('emulated fastboot device: flashing', () => {
  it('flashes a raw image sent in odd-sized pieces and logs the download with its SHA-256', async () => {
    const dev = device({ partitions: { boot: 256 * 1024 } });
    const { host } = connect(dev);
    const img = randomBytes(100_003);
    await download(host, img, 7777);
    expect((await cmd(host, 'flash:boot')).status).toBe('OKAY');
    const part = dev.readPartition('boot');
    expect(part.length).toBe(256 * 1024); // full size, created with ftruncate
    expect(part.subarray(0, img.length).equals(img)).toBe(true);
    const sha = createHash('sha256').update(img).digest('hex');
    expect(dev.log).toEqual([`download 100003 ${sha}`, 'flash:boot']);
    expect(readFileSync(path.join(dev.dir, 'log'), 'utf8')).toBe(`download 100003 ${sha}\nflash:boot\n`);
  });

  it('applies RAW, FILL, DONT_CARE and CRC32 chunks at their block offsets, leaving skipped blocks untouched', async () => {
    const bs = 4096;
    const dev = device({ partitions: { system: 16 * bs } });
    const { host } = connect(dev);
    // Pre-fill so DONT_CARE is visible: it must not overwrite.
    const before = randomBytes(16 * bs);
    await download(host, before);
    expect((await cmd(host, 'flash:system')).status).toBe('OKAY');

    const raw1 = randomBytes(2 * bs);
    const raw2 = randomBytes(bs);
    const expected = Buffer.concat([raw1, fillOf(0xdeadbeef, 3 * bs), before.subarray(5 * bs, 9 * bs), raw2]);
    const crc = crc32(Buffer.concat([raw1, fillOf(0xdeadbeef, 3 * bs), Buffer.alloc(4 * bs), raw2]));
    const img = sparse(bs, [{ raw: raw1 }, { fill: 0xdeadbeef, blocks: 3 }, { skip: 4 }, { raw: raw2 }, { crc }]);
    await download(host, img);
    expect(await cmd(host, 'flash:system')).toMatchObject({ status: 'OKAY' });
    const part = dev.readPartition('system');
    expect(part.subarray(0, 10 * bs).equals(expected)).toBe(true);
    expect(part.subarray(10 * bs).equals(before.subarray(10 * bs))).toBe(true);
  });

  it('FAILs a sparse image whose CRC32 chunk does not match, and writes nothing', async () => {
    const bs = 4096;
    const dev = device({ partitions: { system: 4 * bs } });
    const { host } = connect(dev);
    const raw = randomBytes(bs);
    await download(host, sparse(bs, [{ raw }, { crc: (crc32(raw) ^ 1) >>> 0 }]));
    const r = await cmd(host, 'flash:system');
    expect(r.status).toBe('FAIL');
    expect(r.message).toMatch(/CRC32 mismatch/);
    expect(dev.readPartition('system').equals(Buffer.alloc(4 * bs))).toBe(true);
  });

  it('resparsed pieces (leading DONT_CARE) land at the right offsets', async () => {
    const bs = 4096;
    const dev = device({ partitions: { vendor: 8 * bs } });
    const { host } = connect(dev);
    const a = randomBytes(3 * bs);
    const b = randomBytes(5 * bs);
    await download(host, sparse(bs, [{ raw: a }, { skip: 5 }]));
    expect((await cmd(host, 'flash:vendor')).status).toBe('OKAY');
    await download(host, sparse(bs, [{ skip: 3 }, { raw: b }]));
    expect((await cmd(host, 'flash:vendor')).status).toBe('OKAY');
    expect(dev.readPartition('vendor').equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('FAILs an image larger than the partition (raw and sparse-expanded) and an unknown partition', async () => {
    const dev = device({ partitions: { dtbo: 8192 } });
    const { host } = connect(dev);
    await download(host, randomBytes(8193));
    expect(await cmd(host, 'flash:dtbo')).toMatchObject({ status: 'FAIL', message: expect.stringMatching(/too large.*8193.*8192/) });
    await download(host, sparse(4096, [{ fill: 1, blocks: 3 }]));
    expect(await cmd(host, 'flash:dtbo')).toMatchObject({ status: 'FAIL', message: expect.stringMatching(/expands to 12288/) });
    await download(host, randomBytes(10));
    expect(await cmd(host, 'flash:nonexistent')).toMatchObject({ status: 'FAIL', message: expect.stringMatching(/nonexistent/) });
    expect((await cmd(host, 'erase:nonexistent')).status).toBe('FAIL');
  });

  it('FAILs flash without a download and a download above max-download-size', async () => {
    const dev = device({ maxDownloadSize: 1000 });
    const { host } = connect(dev);
    expect((await cmd(host, 'flash:boot')).status).toBe('FAIL');
    expect(await cmd(host, 'download:000003e9')).toMatchObject({ status: 'FAIL', message: expect.stringMatching(/too large/) });
    expect((await cmd(host, 'download:000003e8')).status).toBe('DATA');
    // The refused download is logged as received; the accepted one waits for its data.
    expect(dev.log).toEqual(['flash:boot', 'download:000003e9']);
  });

  it('accepts the Xiaomi pseudo-partitions crclist/sparsecrclist and stores them as files', async () => {
    const dev = device();
    const { host } = connect(dev);
    const list = Buffer.from('boot.img 0x1234abcd\n');
    await download(host, list);
    expect((await cmd(host, 'flash:crclist')).status).toBe('OKAY');
    expect(readFileSync(dev.partitionPath('crclist')).equals(list)).toBe(true);
  });

  it('flash:NAME_ab writes both slots; flash:NAME on an A/B device targets the current slot', async () => {
    const dev = device({ slots: ['a', 'b'], partitions: { xbl_a: 8192, xbl_b: 8192, boot_a: 8192, boot_b: 8192 } });
    const { host } = connect(dev);
    const img = randomBytes(5000);
    await download(host, img);
    expect((await cmd(host, 'flash:xbl_ab')).status).toBe('OKAY');
    expect(dev.readPartition('xbl_a').subarray(0, 5000).equals(img)).toBe(true);
    expect(dev.readPartition('xbl_b').subarray(0, 5000).equals(img)).toBe(true);
    expect((await cmd(host, 'set_active:b')).status).toBe('OKAY');
    expect((await cmd(host, 'flash:boot')).status).toBe('OKAY');
    expect(dev.readPartition('boot_b').subarray(0, 5000).equals(img)).toBe(true);
    expect(dev.readPartition('boot_a').equals(Buffer.alloc(8192))).toBe(true);
  });

  it('erase zeroes the whole partition and keeps its size', async () => {
    const dev = device({ partitions: { misc: 65536 } });
    const { host } = connect(dev);
    await download(host, randomBytes(65536));
    expect((await cmd(host, 'flash:misc')).status).toBe('OKAY');
    expect((await cmd(host, 'erase:misc')).status).toBe('OKAY');
    expect(dev.readPartition('misc').equals(Buffer.alloc(65536))).toBe(true);
  });

  it('A/B slots create NAME_a/NAME_b files; the default table has the usual partitions', () => {
    const dev = device({ slots: ['a', 'b'] });
    for (const p of ['boot_a', 'boot_b', 'system_a', 'vendor_b', 'vbmeta_a', 'dtbo_b', 'super', 'userdata']) {
      expect(existsSync(dev.partitionPath(p)), p).toBe(true);
    }
    expect(existsSync(dev.partitionPath('boot'))).toBe(false);
    expect(statSync(dev.partitionPath('super')).size).toBe(dev.partitions.get('super'));
  });

  it('discard mode stores nothing but still validates sizes and logs the hash', async () => {
    const dev = device({ store: null, partitions: { boot: 4096 } });
    const { host } = connect(dev);
    const img = randomBytes(4000);
    await download(host, img);
    expect((await cmd(host, 'flash:boot')).status).toBe('OKAY');
    await download(host, sparse(4096, [{ fill: 7, blocks: 2 }]));
    expect((await cmd(host, 'flash:boot')).status).toBe('FAIL');
    expect(dev.log[0]).toBe(`download 4000 ${createHash('sha256').update(img).digest('hex')}`);
    expect(existsSync(path.join(dev.dir, 'store'))).toBe(false);
  });
});

describe('emulated fastboot device: reading back', () => {
  async function readData(t: Transport, text: string): Promise<Buffer> {
    const r = await cmd(t, text);
    expect(r.status, r.message).toBe('DATA');
    const size = parseInt(r.message, 16);
    const parts: Buffer[] = [];
    for (let got = 0; got < size; ) {
      const p = await t.read(size - got, { timeoutMs: 2000 });
      parts.push(p);
      got += p.length;
    }
    expect((await t.read(256, { timeoutMs: 2000 })).toString()).toBe('OKAY');
    return Buffer.concat(parts);
  }

  it('upload returns the last download; fetch returns a partition range', async () => {
    const dev = device({ partitions: { logo: 3 << 20 } });
    const { host } = connect(dev);
    const img = randomBytes(3 << 20);
    await download(host, img, 1 << 20);
    expect((await readData(host, 'upload')).equals(img)).toBe(true);
    expect((await cmd(host, 'flash:logo')).status).toBe('OKAY');
    expect((await readData(host, 'fetch:logo:0x00100000:0x00000100')).equals(img.subarray(1 << 20, (1 << 20) + 256))).toBe(true);
    expect((await readData(host, 'fetch:logo')).equals(img)).toBe(true);
    expect((await cmd(host, 'fetch:logo:0x00300000:0x00000001')).status).toBe('FAIL');
  });
});

describe('emulated fastboot device: reboot', () => {
  it('reboot answers OKAY, closes the link, and the device comes back on a new connection with its state', async () => {
    const dev = device({ slots: ['a', 'b'] });
    const first = connect(dev);
    expect((await cmd(first.host, 'set_active:b')).status).toBe('OKAY');
    expect((await cmd(first.host, 'reboot-bootloader')).status).toBe('OKAY');
    await first.done; // the device side ended the session
    await expect(first.host.read(256, { timeoutMs: 1000 })).rejects.toThrow(/closed/);
    const second = connect(dev);
    expect(await cmd(second.host, 'getvar:current-slot')).toMatchObject({ status: 'OKAY', message: 'b' });
    expect(dev.log).toEqual(['set_active:b', 'reboot-bootloader', 'getvar:current-slot']);
  });
});
