// Boot images built for `boot KERNEL [RAMDISK [SECOND]]`: field by field
// against Debian's mkbootimg (AOSP's Python tool) where it is installed, the
// AOSP client's own quirks (id left zero, dtb_addr template in v0/v1 padding),
// and the refusals.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { needs, peerPath } from '../helpers/peers.js';
import { DEFAULT_BOOT_LAYOUT, loadBootableImage, mkbootimg, setBootCmdline, withOsPatchLevel, withOsVersion } from '../../src/fastboot/bootimg.js';
import { noise } from '../helpers/emulator.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-bootimg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, data: Buffer) => {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
};

const kernel = noise(10_000, 1);
const ramdisk = noise(3_000, 2);
const second = noise(1_500, 3);
const dtb = noise(700, 4);

/**
 * Where the AOSP client and mkbootimg differ by design: AOSP leaves the SHA id
 * (576..608) zero, leaves its dtb_addr template in the v0/v1 page padding, and
 * relocates the load address of an absent ramdisk / second stage (mkbootimg
 * writes 0). The AOSP client's own bytes are checked in test/cli/ram.test.ts.
 */
function comparable(img: Buffer, version: number, parts: string): Buffer {
  const c = Buffer.from(img);
  c.fill(0, 576, 608);
  if (version < 2) c.fill(0, 1652, 1660);
  if (!parts.includes('r')) c.fill(0, 20, 24);
  if (!parts.includes('s')) c.fill(0, 28, 32);
  return c;
}

describe('boot images against Debian mkbootimg', needs('mkbootimg'), () => {
  const cases: Array<{ v: number; parts: 'k' | 'kr' | 'krs' | 'krsd'; extra: string[]; layout?: Partial<typeof DEFAULT_BOOT_LAYOUT> }> = [
    { v: 0, parts: 'k', extra: [] },
    { v: 0, parts: 'krs', extra: ['--cmdline', 'console=ttyMSM0 androidboot.hardware=qcom', '--os_version', '11.0.3', '--os_patch_level', '2024-05-05'] },
    { v: 1, parts: 'kr', extra: ['--base', '0x80000000', '--pagesize', '4096'], layout: { base: 0x80000000, pageSize: 4096 } },
    { v: 2, parts: 'krsd', extra: ['--dtb_offset', '0x01f00000'], layout: { dtbOffset: 0x01f00000 } },
  ];
  for (const c of cases) {
    it(`header v${c.v} with ${c.parts} ${c.extra.join(' ')}`, () => {
      const out = path.join(dir, `ref-${c.v}-${c.parts}.img`);
      const args = ['--kernel', file('k', kernel), '--header_version', String(c.v), '--output', out, ...c.extra];
      if (c.parts.includes('r')) args.push('--ramdisk', file('r', ramdisk));
      if (c.parts.includes('s')) args.push('--second', file('s', second));
      if (c.parts.includes('d')) args.push('--dtb', file('d', dtb));
      execFileSync(peerPath('mkbootimg'), args);
      const ref = readFileSync(out);
      let osVersion = 0;
      const osv = c.extra.indexOf('--os_version');
      if (osv >= 0) osVersion = withOsVersion(osVersion, c.extra[osv + 1]!);
      const pl = c.extra.indexOf('--os_patch_level');
      if (pl >= 0) osVersion = withOsPatchLevel(osVersion, c.extra[pl + 1]!);
      const cmdline = c.extra.indexOf('--cmdline');
      const ours = mkbootimg(
        {
          kernel,
          ...(c.parts.includes('r') ? { ramdisk } : {}),
          ...(c.parts.includes('s') ? { second } : {}),
          ...(c.parts.includes('d') ? { dtb } : {}),
        },
        { ...DEFAULT_BOOT_LAYOUT, ...c.layout, headerVersion: c.v, osVersion, ...(cmdline >= 0 ? { cmdline: c.extra[cmdline + 1]! } : {}) },
      );
      expect(ours.length).toBe(ref.length);
      expect(comparable(ours, c.v, c.parts).equals(comparable(ref, c.v, c.parts))).toBe(true);
    });
  }
});

describe('boot image rules (AOSP LoadBootableImage)', () => {
  it('v3 and v4 headers: 4096-byte pages, AOSP header sizes 1580 / 1584, no load addresses', () => {
    for (const v of [3, 4]) {
      const img = mkbootimg({ kernel, ramdisk }, { ...DEFAULT_BOOT_LAYOUT, headerVersion: v, osVersion: withOsVersion(0, '12') });
      expect(img.length).toBe(4096 + 12288 + 4096);
      expect(img.subarray(0, 8).toString('latin1')).toBe('ANDROID!');
      expect([img.readUInt32LE(8), img.readUInt32LE(12), img.readUInt32LE(16) >>> 25, img.readUInt32LE(20), img.readUInt32LE(40)]).toEqual([
        kernel.length,
        ramdisk.length,
        12,
        v === 3 ? 1580 : 1584,
        v,
      ]);
      expect(img.subarray(4096, 4096 + kernel.length).equals(kernel)).toBe(true);
      expect(img.subarray(4096 + 12288, 4096 + 12288 + ramdisk.length).equals(ramdisk)).toBe(true);
    }
  });

  it('a boot.img is sent as is, with --cmdline written over its command line', async () => {
    const img = mkbootimg({ kernel, ramdisk }, { ...DEFAULT_BOOT_LAYOUT, cmdline: 'old' });
    const p = file('boot.img', img);
    const same = await loadBootableImage(p, undefined, undefined, DEFAULT_BOOT_LAYOUT);
    expect(same).toMatchObject({ created: false });
    expect(same.data.equals(img)).toBe(true);
    const patched = await loadBootableImage(p, undefined, undefined, { ...DEFAULT_BOOT_LAYOUT, cmdline: 'quiet' });
    expect(patched.data.subarray(64, 70).toString('latin1')).toBe('quiet\0');
    expect(patched.data.subarray(patched.data.length - 100).equals(img.subarray(img.length - 100))).toBe(true);
  });

  it('refuses a boot.img with a ramdisk, a short kernel, --dtb outside v2, and a page too small for the header', async () => {
    const p = file('boot2.img', mkbootimg({ kernel }, DEFAULT_BOOT_LAYOUT));
    await expect(loadBootableImage(p, file('r2', ramdisk), undefined, DEFAULT_BOOT_LAYOUT)).rejects.toThrow(/boot.img \*and\* ramdisk/);
    await expect(loadBootableImage(file('tiny', Buffer.alloc(100)), undefined, undefined, DEFAULT_BOOT_LAYOUT)).rejects.toThrow(/too short/);
    await expect(loadBootableImage(file('k3', kernel), undefined, undefined, { ...DEFAULT_BOOT_LAYOUT, dtb: file('d3', dtb) })).rejects.toThrow(/--dtb/);
    expect(() => mkbootimg({ kernel }, { ...DEFAULT_BOOT_LAYOUT, pageSize: 1024 })).toThrow(BadInputError);
    expect(() => mkbootimg({ kernel, second }, { ...DEFAULT_BOOT_LAYOUT, headerVersion: 3 })).toThrow(/not supported in a v3/);
  });

  it('a command line that does not fit is refused, one that fits is NUL-terminated', () => {
    const img = mkbootimg({ kernel }, DEFAULT_BOOT_LAYOUT);
    expect(() => setBootCmdline(img, 'x'.repeat(512))).toThrow(/too large/);
    setBootCmdline(img, 'y'.repeat(511));
    expect(img[64 + 511]).toBe(0);
  });

  it('os version and patch level pack like AOSP (7 bits each, year-2000 and month)', () => {
    expect(withOsVersion(0, '11.2.3')).toBe((11 << 25) | (2 << 18) | (3 << 11));
    expect(withOsPatchLevel(withOsVersion(0, '11'), '2021-12-01')).toBe(((11 << 25) | (21 << 4) | 12) >>> 0);
    expect(() => withOsVersion(0, '128')).toThrow(BadInputError);
    expect(() => withOsPatchLevel(0, '1999-01-01')).toThrow(/year/);
  });
});
