// `flash vendor_boot:RAMDISK FILE [--dtb DTB]` (AOSP v35 only; Debian's v29
// client has no such command): the device's vendor_boot is fetched from
// fastbootd, repacked on the host and flashed back whole. Header v3 images are
// made by the reference `mkbootimg`, so the expected result is mkbootimg's
// image built with the new ramdisk (and DTB), zero-padded to the partition,
// with the partition's AVB footer kept at its end. Header v4 (ramdisk
// fragments) has no reference tool here: those images are built by the test
// from bootimg.h's layout and the result is checked field by field.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFastbootEmulator, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { replaceVendorRamdisk } from '../../src/fastboot/vendor-boot.js';
import { tempDir, noise, runMiflash } from '../helpers/emulator.js';
import { needs, peerPath } from '../helpers/peers.js';

const tmp = tempDir('miflash-vendor-boot-');
afterAll(() => tmp.cleanup());
const file = (name: string) => path.join(tmp.dir, name);
const KiB = 1024;
const PART = 64 * KiB;
const PAGE = 4096;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let n = 0;
/** miflash against a fastbootd whose vendor_boot_a holds `initial` (padded to PART). */
async function run(args: string[], initial: Buffer, opts: Partial<FastbootEmulatorOptions> = {}) {
  const store = file(`store-${++n}`);
  mkdirSync(store, { recursive: true });
  writeFileSync(path.join(store, 'vendor_boot_a.img'), Buffer.concat([initial, Buffer.alloc(PART - initial.length)]));
  const emu = await startFastbootEmulator('tcp:127.0.0.1:0', {
    store,
    serial: 'VB1',
    slots: ['a', 'b'],
    partitions: { vendor_boot_a: PART, vendor_boot_b: PART },
    ...opts,
    vars: { 'is-userspace': 'yes', 'max-fetch-size': '0x4000', ...opts.vars },
  });
  try {
    const r = await runMiflash(['-s', emu.address, ...args]);
    return { ...r, log: [...emu.log], after: emu.device.readPartition('vendor_boot_a') };
  } finally {
    await emu.close();
  }
}

const rd1 = file('rd1');
const rd2 = file('rd2');
const dtb1 = file('dtb1');
const dtb2 = file('dtb2');
function mkbootimgV3(ramdisk: string, dtb: string): Buffer {
  const out = file(`vb-${++n}.img`);
  execFileSync(peerPath('mkbootimg'), ['--header_version', '3', '--pagesize', String(PAGE), '--vendor_boot', out, '--vendor_ramdisk', ramdisk, '--dtb', dtb, '--vendor_cmdline', 'androidboot.x=1', '--board', 'emu']);
  return readFileSync(out);
}
/** The partition as AOSP leaves it: the image, zeros, and `footer` (if any) in the last 64 bytes. */
function padded(img: Buffer, footer?: Buffer): Buffer {
  const out = Buffer.concat([img, Buffer.alloc(PART - img.length)]);
  if (footer) footer.copy(out, PART - 64);
  return out;
}
const avbFooter = (): Buffer => {
  const f = Buffer.alloc(64);
  f.write('AVBf', 0, 'latin1');
  f.writeUInt32BE(1, 4);
  f.writeBigUInt64BE(12345n, 12);
  return f;
};

beforeAll(() => {
  writeFileSync(rd1, noise(5000, 1));
  writeFileSync(rd2, noise(9000, 2));
  writeFileSync(dtb1, noise(1000, 3));
  writeFileSync(dtb2, noise(6000, 4));
});

describe('flash vendor_boot:default (header v3, mkbootimg as the reference)', needs('mkbootimg'), () => {
  it('the ramdisk replaced: the partition becomes mkbootimg\'s image with the new ramdisk; v35\'s conversation', async () => {
    const footer = avbFooter();
    const r = await run(['flash', 'vendor_boot:default', rd2], padded(mkbootimgV3(rd1, dtb1), footer));
    expect(r.code, r.stderr).toBe(0);
    const want = padded(mkbootimgV3(rd2, dtb1), footer);
    expect(r.after.equals(want)).toBe(true);
    expect(r.log).toEqual([
      'getvar:has-slot:vendor_boot',
      'getvar:current-slot',
      'getvar:max-download-size',
      'getvar:is-logical:vendor_boot_a:default',
      'getvar:max-fetch-size',
      'getvar:partition-size:vendor_boot_a',
      'fetch:vendor_boot_a:0x00000000:0x00004000',
      'fetch:vendor_boot_a:0x00004000:0x00004000',
      'fetch:vendor_boot_a:0x00008000:0x00004000',
      'fetch:vendor_boot_a:0x0000c000:0x00004000',
      'getvar:is-logical:vendor_boot_a',
      'getvar:partition-size:vendor_boot_a',
      `download ${PART} ${sha(want)}`,
      'flash:vendor_boot_a',
    ]);
  });

  it('--dtb replaces the DTB too (here larger: the sections after it move by a page)', async () => {
    const r = await run(['flash', 'vendor_boot:default', rd2, '--dtb', dtb2], padded(mkbootimgV3(rd1, dtb1)));
    expect(r.code, r.stderr).toBe(0);
    expect(r.after.equals(padded(mkbootimgV3(rd2, dtb2)))).toBe(true);
  });

  it('a named fragment needs header v4: refused, nothing downloaded', async () => {
    const r = await run(['flash', 'vendor_boot:dlkm', rd2], padded(mkbootimgV3(rd1, dtb1)));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('require vendor boot header V4 but is V3');
    expect(r.log.some((l) => l.startsWith('download'))).toBe(false);
  });
});

/** A v4 vendor_boot as bootimg.h lays it out, with named ramdisk fragments. */
function v4Image(fragments: { name: string; data: Buffer; type?: number }[], dtb: Buffer, bootconfig: Buffer): Buffer {
  const up = (v: number) => Math.ceil(v / PAGE) * PAGE;
  const hdr = Buffer.alloc(up(2128));
  hdr.write('VNDRBOOT', 0, 'latin1');
  hdr.writeUInt32LE(4, 8);
  hdr.writeUInt32LE(PAGE, 12);
  const ramdisks = Buffer.concat(fragments.map((f) => f.data));
  hdr.writeUInt32LE(ramdisks.length, 24);
  hdr.write('androidboot.y=2', 28, 'latin1');
  hdr.writeUInt32LE(2128, 2096);
  hdr.writeUInt32LE(dtb.length, 2100);
  hdr.writeUInt32LE(fragments.length * 108, 2112);
  hdr.writeUInt32LE(fragments.length, 2116);
  hdr.writeUInt32LE(108, 2120);
  hdr.writeUInt32LE(bootconfig.length, 2124);
  const table = Buffer.alloc(up(fragments.length * 108));
  let off = 0;
  fragments.forEach((f, i) => {
    table.writeUInt32LE(f.data.length, i * 108);
    table.writeUInt32LE(off, i * 108 + 4);
    table.writeUInt32LE(f.type ?? 1, i * 108 + 8);
    table.write(f.name, i * 108 + 12, 'latin1');
    table.writeUInt32LE(0xabc0 + i, i * 108 + 44);
    off += f.data.length;
  });
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc(up(b.length) - b.length)]);
  return Buffer.concat([hdr, pad(ramdisks), pad(dtb), table, pad(bootconfig)]);
}

describe('flash vendor_boot:NAME (header v4 ramdisk fragments)', () => {
  const a = noise(3000, 5);
  const b = noise(2000, 6);
  const c = noise(1500, 7);
  const dtb = noise(700, 8);
  const bootconfig = Buffer.from('androidboot.z=3\n');

  it('the named fragment replaced; later fragments and the table follow; DTB, table padding and bootconfig move with the ramdisk section', async () => {
    const old = padded(v4Image([{ name: 'first', data: a }, { name: 'dlkm', data: b }, { name: 'last', data: c }], dtb, bootconfig), avbFooter());
    const newB = noise(6000, 9);
    writeFileSync(file('newb'), newB);
    const r = await run(['flash', 'vendor_boot:dlkm', file('newb')], old);
    expect(r.code, r.stderr).toBe(0);
    const want = padded(v4Image([{ name: 'first', data: a }, { name: 'dlkm', data: newB }, { name: 'last', data: c }], dtb, bootconfig), avbFooter());
    expect(r.after.equals(want)).toBe(true);
    expect(r.log.filter((l) => l.startsWith('flash:'))).toEqual(['flash:vendor_boot_a']);
  });

  it('vendor_boot:default on v4: one unnamed entry of type NONE holding the new ramdisk, table size 108', () => {
    const old = padded(v4Image([{ name: 'first', data: a }, { name: 'dlkm', data: b }], dtb, bootconfig));
    const rd = noise(4000, 10);
    const out = replaceVendorRamdisk(old, 'default', rd);
    expect(out.length).toBe(old.length);
    expect(out.readUInt32LE(24)).toBe(4000);
    expect([out.readUInt32LE(2112), out.readUInt32LE(2116), out.readUInt32LE(2120)]).toEqual([108, 1, 108]);
    expect(out.subarray(PAGE, PAGE + 4000).equals(rd)).toBe(true);
    const table = 2 * PAGE + PAGE; // header, ramdisk (one page), dtb (one page)
    expect([out.readUInt32LE(table), out.readUInt32LE(table + 4), out.readUInt32LE(table + 8)]).toEqual([4000, 0, 0]);
    expect(out.subarray(table + 12, table + 108).every((x) => x === 0)).toBe(true);
    expect(out.subarray(table + PAGE, table + PAGE + bootconfig.length).equals(bootconfig)).toBe(true);
  });

  it('an unknown or duplicated fragment name is refused before anything is written', async () => {
    const dup = padded(v4Image([{ name: 'x', data: a }, { name: 'x', data: b }], dtb, bootconfig));
    expect(() => replaceVendorRamdisk(dup, 'x', c)).toThrow(/multiple vendor ramdisk 'x' found/);
    const r = await run(['flash', 'vendor_boot:nope', rd1], dup);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("vendor ramdisk 'nope' not found");
    expect(r.log.some((l) => l.startsWith('download'))).toBe(false);
  });

  it('in the bootloader (no fetch) it stops before any download, pointing at fastbootd', async () => {
    const r = await run(['flash', 'vendor_boot:default', rd1], padded(v4Image([{ name: 'x', data: a }], dtb, bootconfig)), { vars: { 'is-userspace': 'no', 'max-fetch-size': '' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('max-fetch-size');
    expect(r.log.some((l) => l.startsWith('download') || l.startsWith('flash'))).toBe(false);
  });
});
