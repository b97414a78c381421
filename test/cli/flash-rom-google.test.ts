// `miflash flash ROM` on a Google factory package built around the real
// maguro flash-all.sh (bootloader, reboot-bootloader, sleep 5, radio,
// reboot-bootloader, sleep 5, -w update image-*.zip), against `miflash
// emulate`: the device is followed through both reboots on the same address,
// the zip's images land in AOSP flashall order, -w erases, the plan reboots.
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanEventSchema, type PlanEvent } from '../../src/plan/events.js';
import { emulatorForRom, runMiflash } from '../helpers/fake-fastboot.js';
import { FIXTURES } from '../rom/helpers.js';
import { makeDeflateZip, sparseImage } from '../plan/runner-google-rom.js';
import { needs } from '../helpers/peers.js';

// -w builds ext4 / f2fs with the host's mke2fs and mkfs.f2fs (without them it erases and says so:
// test/plan/runner-reboot.test.ts runs the same flash-all both ways).

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-google-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dl = (b: Buffer) => `download ${b.length} ${sha(b)}`;

function head(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

interface Built {
  root: string;
  bootloader: Buffer;
  radio: Buffer;
  boot: Buffer;
  recovery: Buffer;
  system: { raw: Buffer; sparse: Buffer };
}
let rom: Built;

beforeAll(async () => {
  const root = path.join(work, 'takju-jdq39');
  mkdirSync(root, { recursive: true });
  copyFileSync(path.join(FIXTURES, 'google-maguro-galaxynexus-jdq39-flash-all.sh'), path.join(root, 'flash-all.sh'));
  const bootloader = randomBytes(16 * 1024);
  const radio = randomBytes(24 * 1024);
  writeFileSync(path.join(root, 'bootloader-maguro-primelc03.img'), bootloader);
  writeFileSync(path.join(root, 'radio-maguro-i9250xxlj1.img'), radio);
  const scratch = path.join(work, 'scratch');
  mkdirSync(scratch, { recursive: true });
  const system = await sparseImage(scratch, 'system', 64);
  const boot = randomBytes(20 * 1024);
  const recovery = randomBytes(12 * 1024);
  writeFileSync(
    path.join(root, 'image-takju-jdq39.zip'),
    makeDeflateZip([
      { name: 'android-info.txt', data: 'require board=tuna\nrequire version-bootloader=PRIMELC03\nrequire version-baseband=I9250XXLJ1\n' },
      { name: 'boot.img', data: boot },
      { name: 'recovery.img', data: recovery },
      { name: 'system.img', data: system.sparse },
    ]),
  );
  rom = { root, bootloader, radio, boot, recovery, system };
});

const tuna = () =>
  emulatorForRom(
    { product: 'tuna', partitions: [{ name: 'bootloader', size: 1 << 20 }, { name: 'radio', size: 1 << 20 }] },
    ['--var', 'version-bootloader=PRIMELC03', '--var', 'version-baseband=I9250XXLJ1'],
  );

describe('Google factory image (maguro flash-all.sh)', () => {
  it('--dry-run lists the fastboot operations (with -w) and writes nothing', async () => {
    const emu = await tuna();
    try {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual([
        'fastboot flash bootloader bootloader-maguro-primelc03.img',
        'fastboot reboot bootloader',
        'fastboot flash radio radio-maguro-i9250xxlj1.img',
        'fastboot reboot bootloader',
        'fastboot -w update image-takju-jdq39.zip',
      ]);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  });

  it('flashes bootloader and radio across two reboot-bootloader, then -w update; --json events validate', { ...needs('mke2fs', 'mkfs.f2fs'), timeout: 60_000 }, async () => {
    const { root, bootloader, radio, boot, recovery, system } = rom;
    const emu = await tuna();
    try {
      const t0 = Date.now();
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', root, '--yes'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(10_000); // both `sleep 5` really sleep
      // Generated filesystems carry fresh UUIDs: their downloads are compared by place only.
      expect(emu.writes().map((l, i, all) => (l.startsWith('download ') && all[i + 1]?.match(/^flash:(userdata|cache|metadata)$/) ? 'download' : l))).toEqual([
        dl(bootloader),
        'flash:bootloader',
        'reboot-bootloader',
        dl(radio),
        'flash:radio',
        'reboot-bootloader',
        dl(boot),
        'flash:boot',
        dl(recovery),
        'flash:recovery',
        dl(system.sparse),
        'flash:system',
        ...['erase:userdata', 'download', 'flash:userdata', 'erase:cache', 'download', 'flash:cache', 'erase:metadata', 'download', 'flash:metadata'],
        'reboot',
      ]);
      const events: PlanEvent[] = r.stdout.trim().split('\n').map((l) => PlanEventSchema.parse(JSON.parse(l)));
      const waits = events.filter((e) => e.event === 'step-end' && e.kind === 'wait-device');
      expect(waits.map((e) => (e as { status: string }).status)).toEqual(['ok', 'ok']);
      const warn = events.filter((e) => e.event === 'message' && e.level === 'warning').map((e) => (e as { text: string }).text);
      expect(warn.join('\n')).not.toMatch(/not formatted/);
      expect(events.at(-1)).toMatchObject({ event: 'done', status: 'ok' });
      // What the partitions hold now.
      expect(head(path.join(emu.store, 'bootloader.img'), bootloader.length)).toEqual(bootloader);
      expect(head(path.join(emu.store, 'radio.img'), radio.length)).toEqual(radio);
      expect(head(path.join(emu.store, 'boot.img'), boot.length)).toEqual(boot);
      expect(head(path.join(emu.store, 'system.img'), system.raw.length).equals(system.raw)).toBe(true);
      expect(head(path.join(emu.store, 'userdata.img'), 2048).readUInt32LE(1024)).toBe(0xf2f52010); // f2fs superblock
    } finally {
      await emu.stop();
    }
  });

  it('--reboot-timeout must be a positive number of seconds (2)', async () => {
    const r = await runMiflash(['-s', 'tcp:127.0.0.1:9', 'flash', work, '--reboot-timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--reboot-timeout 'soon': expected a number of seconds/);
  });
});
