// AOSP client commands and flags that change what the host sends: flash:raw,
// signature, flash --disable-verity / --disable-verification (vbmeta flags),
// v35's AVB footer copy, and the host-side `flashing` check. Where Debian's
// client (v29) has the behaviour, both clients talk to their own fresh
// `miflash emulate --log` device and the logs must match (same commands,
// byte-identical downloads); where v35 differs from v29 the test says so and
// checks the bytes v35 would send against the emulator.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFastbootEmulator, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { emptyImage, MetadataBuilder } from '../../src/lp/index.js';
import { REPO_ROOT, runAospFastboot, spawnCliEmulator, tempDir, type CliEmulator, noise, runMiflash } from '../helpers/emulator.js';
import { needs, peerPath } from '../helpers/peers.js';
import { execFileSync } from 'node:child_process';

const tmp = tempDir('miflash-host-parity-');
afterAll(() => tmp.cleanup());

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An AvbFooter (64 bytes): magic, version 1.0, original_image_size, vbmeta_offset, vbmeta_size, reserved. */
function avbFooter(originalSize: number, vbmetaOffset: number, vbmetaSize: number): Buffer {
  const f = Buffer.alloc(64);
  f.write('AVBf', 0, 'latin1');
  f.writeUInt32BE(1, 4);
  f.writeUInt32BE(0, 8);
  f.writeBigUInt64BE(BigInt(originalSize), 12);
  f.writeBigUInt64BE(BigInt(vbmetaOffset), 20);
  f.writeBigUInt64BE(BigInt(vbmetaSize), 28);
  return f;
}

/** A vbmeta struct: AVB0 magic, flags word (offset 120) zero, the rest noise. */
function vbmetaStruct(size: number, seed: number): Buffer {
  const v = noise(size, seed);
  v.write('AVB0', 0, 'latin1');
  v.writeUInt32BE(0, 120);
  return v;
}

const KiB = 1024;
const file = (name: string) => path.join(tmp.dir, name);
const kernel = file('kernel');
const ramdisk = file('ramdisk');
const second = file('second');
const vbmeta = file('vbmeta.img');
const sig = file('sig.bin');
const bootAvb = file('boot-avb.img'); // kernel-ish data, vbmeta struct at 80 KiB, AVB footer at the end
const bootPlain = file('boot-plain.img');
const BOOT_VBMETA_AT = 80 * KiB;
const BOOT_AVB_SIZE = 100 * KiB;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/cli/commands/device-ram.js'))) throw new Error('build first: npx tsc -p .');
  writeFileSync(kernel, noise(70_000, 1));
  writeFileSync(ramdisk, noise(9_000, 2));
  writeFileSync(second, noise(3_000, 3));
  writeFileSync(vbmeta, vbmetaStruct(4 * KiB, 4));
  writeFileSync(sig, noise(256, 5));
  const boot = noise(BOOT_AVB_SIZE, 6);
  vbmetaStruct(1024, 7).copy(boot, BOOT_VBMETA_AT);
  avbFooter(BOOT_VBMETA_AT, BOOT_VBMETA_AT, 1024).copy(boot, BOOT_AVB_SIZE - 64);
  writeFileSync(bootAvb, boot);
  writeFileSync(bootPlain, noise(50_000, 8));
});

let n = 0;
async function device(extra: string[] = []): Promise<{ emu: CliEmulator; log: () => string[] }> {
  const log = file(`log-${++n}`);
  writeFileSync(log, '');
  const emu = await spawnCliEmulator(['--store', file(`store-${n}`), '--serial', 'HOST1', '--slots', 'a,b', '--log', log, ...extra]);
  return { emu, log: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

/** `args` run by the AOSP client and by miflash, each on its own fresh device. */
async function both(args: string[], extra: string[] = []) {
  const a = await device(extra);
  const b = await device(extra);
  try {
    const ra = await runAospFastboot(a.emu.port, args);
    const rb = await runMiflash(['-s', b.emu.address, ...args]);
    return { aosp: a.log(), ours: b.log(), aospCode: ra.code, oursCode: rb.code, aospErr: ra.stderr, oursErr: rb.stderr };
  } finally {
    await a.emu.stop();
    await b.emu.stop();
  }
}

/** miflash against an in-process emulator (for device shapes the emulate CLI has no flag for); returns its log and store. */
async function ours(args: string[], opts: Partial<FastbootEmulatorOptions> = {}) {
  const store = file(`mem-store-${++n}`);
  const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store, serial: 'HOST2', slots: ['a', 'b'], ...opts });
  try {
    const r = await runMiflash(['-s', emu.address, ...args]);
    return { ...r, log: [...emu.log], partition: (name: string) => readFileSync(path.join(store, `${name}.img`)) };
  } finally {
    await emu.close();
  }
}

const downloads = (log: string[]) => log.filter((l) => l.startsWith('download '));

describe('same conversation as the AOSP client (v29)', needs('fastboot'), () => {
  it('flash:raw PARTITION KERNEL RAMDISK SECOND: the boot image `boot` builds, flashed to the current slot (no download-size getvar, never split)', async () => {
    const r = await both(['flash:raw', 'boot', kernel, ramdisk, second]);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours.map((l) => l.split(' ')[0])).toEqual(['getvar:has-slot:boot', 'getvar:current-slot', 'download', 'flash:boot_a']);
    expect(r.oursErr).toContain('creating boot image - ');
  });

  it('flash:raw with --slot all and boot image options (--cmdline, --base, --page-size, --os-version, --os-patch-level, --header-version 1)', async () => {
    const args = ['--slot', 'all', 'flash:raw', 'boot', kernel, ramdisk, '--cmdline', 'console=ttyMSM0 quiet', '--base', '0x80000000', '--page-size', '4096', '--os-version', '13.0.1', '--os-patch-level', '2024-05-05', '--header-version', '1'];
    const r = await both(args);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours.filter((l) => l.startsWith('flash:'))).toEqual(['flash:boot_a', 'flash:boot_b']);
  });

  it('flash:raw of a ready boot image sends it as it is', async () => {
    const img = file('ready-boot.img');
    writeFileSync(img, Buffer.concat([Buffer.from('ANDROID!'), noise(3000, 9)]));
    const r = await both(['flash:raw', 'boot', img]);
    expect(r.ours).toEqual(r.aosp);
    expect(downloads(r.ours)).toEqual([`download 3008 ${sha(readFileSync(img))}`]);
  });

  it('signature FILE: download of the 256 bytes, then signature', async () => {
    const r = await both(['signature', sig]);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours).toEqual([`download 256 ${sha(readFileSync(sig))}`, 'signature']);
  });

  it('--disable-verity flash vbmeta: byte 123 (flags bit 0) set in the download, nothing else changed', async () => {
    const r = await both(['--disable-verity', 'flash', 'vbmeta', vbmeta]);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    const want = Buffer.from(readFileSync(vbmeta));
    want[123] = 0x01;
    expect(downloads(r.ours)).toEqual([`download ${want.length} ${sha(want)}`]);
    expect(r.oursErr).toContain('Rewriting vbmeta struct at offset: 0');
  });

  it('--slot all --disable-verity --disable-verification flash vbmeta: both flags (0x03) on both slots', async () => {
    const r = await both(['--slot', 'all', '--disable-verity', '--disable-verification', 'flash', 'vbmeta', vbmeta]);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    const want = Buffer.from(readFileSync(vbmeta));
    want[123] = 0x03;
    expect(downloads(r.ours)).toEqual([`download ${want.length} ${sha(want)}`, `download ${want.length} ${sha(want)}`]);
    expect(r.ours.filter((l) => l.startsWith('flash:'))).toEqual(['flash:vbmeta_a', 'flash:vbmeta_b']);
  });

  it('--disable-verity flash boot on a device with vbmeta partitions: asks partition-type:vbmeta, vbmeta_a as AOSP does, and leaves boot alone', async () => {
    const r = await both(['--disable-verity', 'flash', 'boot', bootPlain]);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours).toContain('getvar:partition-type:vbmeta_a');
    expect(downloads(r.ours)).toEqual([`download 50000 ${sha(readFileSync(bootPlain))}`]);
  });

  it('flashing with a subcommand AOSP does not know is refused on the host; nothing reaches the device', async () => {
    const r = await both(['flashing', 'foo']);
    expect(r.aospCode).not.toBe(0);
    expect(r.aospErr).toContain("unknown 'flashing' command foo");
    expect(r.oursCode).toBe(2);
    expect(r.oursErr).toContain("unknown 'flashing' command foo");
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours).toEqual([]);
  });

  it('signature of a file that is not 256 bytes is refused before anything is sent', async () => {
    const r = await both(['signature', kernel]);
    expect(r.aospCode).not.toBe(0);
    expect(r.aospErr).toContain('signature must be 256 bytes (got 70000)');
    expect(r.oursCode).toBe(2);
    expect(r.oursErr).toContain('signature must be 256 bytes (got 70000)');
    expect(r.ours).toEqual([]);
    expect(r.aosp).toEqual([]);
  });
});

describe('v35 host-side image rewrites (fastboot.cpp flash_buf), against the emulator', () => {
  it('v35 copy_avb_footer: a raw image with an AVB footer smaller than its partition goes out padded to the partition size, footer at the end', async () => {
    const PART = 256 * KiB;
    const r = await ours(['flash', 'boot', bootAvb], { partitions: { boot_a: PART } });
    expect(r.code).toBe(0);
    const img = readFileSync(bootAvb);
    const want = Buffer.concat([img, Buffer.alloc(PART - 64 - img.length), img.subarray(img.length - 64)]);
    expect(want.length).toBe(PART);
    expect(r.log).toEqual([
      'getvar:has-slot:boot',
      'getvar:current-slot',
      'getvar:max-download-size',
      'getvar:is-logical:boot_a',
      'getvar:partition-size:boot_a',
      `download ${PART} ${sha(want)}`,
      'flash:boot_a',
    ]);
    expect(r.partition('boot_a').equals(want)).toBe(true);
  });

  it('v35 differs from v29 here: Debian\'s client (v29) sends the image unpadded', needs('fastboot'), async () => {
    const a = await device(['--partition', 'boot_a=256K']);
    try {
      await runAospFastboot(a.emu.port, ['flash', 'boot', bootAvb]);
      expect(downloads(a.log())).toEqual([`download ${BOOT_AVB_SIZE} ${sha(readFileSync(bootAvb))}`]);
      expect(a.log()).not.toContain('getvar:partition-size:boot_a');
    } finally {
      await a.emu.stop();
    }
  });

  it('footer copy where the partition is just large enough that the new footer overlaps the old one', async () => {
    const PART = BOOT_AVB_SIZE + 16;
    const r = await ours(['flash', 'boot', bootAvb], { partitions: { boot_a: PART } });
    expect(r.code).toBe(0);
    const img = readFileSync(bootAvb);
    const want = Buffer.concat([img.subarray(0, PART - 64), img.subarray(img.length - 64)]);
    expect(downloads(r.log)).toEqual([`download ${PART} ${sha(want)}`]);
  });

  it('no footer copy: image without an AVB footer (partition-size not even asked), partition of the same size, partition smaller (warning)', async () => {
    const plain = await ours(['flash', 'boot', bootPlain], { partitions: { boot_a: 256 * KiB } });
    expect(plain.log).not.toContain('getvar:partition-size:boot_a');
    expect(downloads(plain.log)).toEqual([`download 50000 ${sha(readFileSync(bootPlain))}`]);

    const same = await ours(['flash', 'boot', bootAvb], { partitions: { boot_a: BOOT_AVB_SIZE } });
    expect(same.log).toContain('getvar:partition-size:boot_a');
    expect(downloads(same.log)).toEqual([`download ${BOOT_AVB_SIZE} ${sha(readFileSync(bootAvb))}`]);

    // The emulator refuses the flash (image larger than the partition); what matters is what was sent, and the warning.
    const small = await ours(['flash', 'boot', bootAvb], { partitions: { boot_a: 64 * KiB } });
    expect(small.stderr).toContain(`skip copying boot_a image avb footer (boot_a partition size: ${64 * KiB}, boot_a image size: ${BOOT_AVB_SIZE})`);
    expect(downloads(small.log)).toEqual([`download ${BOOT_AVB_SIZE} ${sha(readFileSync(bootAvb))}`]);
  });

  it('a split image is sent without footer copy (v35 sends the pieces it made before the copy)', async () => {
    const r = await ours(['-S', '64K', 'flash', 'boot', bootAvb], { partitions: { boot_a: 256 * KiB } });
    expect(r.code).toBe(0);
    expect(r.log).not.toContain('getvar:partition-size:boot_a');
    expect(downloads(r.log).length).toBeGreaterThan(1);
  });

  it('--disable-verity flash boot on a device without vbmeta partition: the vbmeta behind the boot footer is patched (and the footer copied)', async () => {
    const PART = 128 * KiB;
    const r = await ours(['flash', '--disable-verity', 'boot', bootAvb], { partitions: { boot_a: PART }, dropPartitions: ['vbmeta_a', 'vbmeta_b'] });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Rewriting vbmeta struct at offset: ${BOOT_VBMETA_AT}`);
    const img = readFileSync(bootAvb);
    const want = Buffer.concat([img, Buffer.alloc(PART - 64 - img.length), img.subarray(img.length - 64)]);
    want[BOOT_VBMETA_AT + 123] = 0x01;
    expect(r.log).toEqual([
      'getvar:has-slot:boot',
      'getvar:current-slot',
      'getvar:max-download-size',
      'getvar:is-logical:boot_a',
      'getvar:partition-size:boot_a',
      'getvar:partition-type:vbmeta',
      'getvar:partition-type:vbmeta_a',
      'getvar:partition-type:vbmeta_b',
      `download ${PART} ${sha(want)}`,
      'flash:boot_a',
    ]);
  });

  it('--disable-verity flash boot without vbmeta partition and without AVB footer: refused before the download', async () => {
    const r = await ours(['flash', '--disable-verity', 'boot', bootPlain], { dropPartitions: ['vbmeta_a', 'vbmeta_b'] });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no AVB footer');
    expect(downloads(r.log)).toEqual([]);
  });

  it('v35 is_vbmeta_partition matches names ending in vbmeta (guest_vbmeta); v29 matched vbmeta, vbmeta_a, vbmeta_b only', async () => {
    const r = await ours(['flash', '--disable-verification', 'guest_vbmeta', vbmeta], { partitions: { guest_vbmeta: 64 * KiB } });
    expect(r.code).toBe(0);
    const want = Buffer.from(readFileSync(vbmeta));
    want[123] = 0x02;
    expect(downloads(r.log)).toEqual([`download ${want.length} ${sha(want)}`]);
    // A vbmeta partition's image is never checked for the boot case, so no partition-type getvars.
    expect(r.log.filter((l) => l.startsWith('getvar:partition-type'))).toEqual([]);
  });

  it('--disable-verity on a vbmeta partition with an image that is not vbmeta (no AVB0) or is sparse: refused before anything is sent', async () => {
    const notVbmeta = await ours(['flash', '--disable-verity', 'vbmeta', kernel]);
    expect(notVbmeta.code).toBe(2);
    expect(notVbmeta.stderr).toContain('no vbmeta struct (AVB0) at offset 0');
    expect(notVbmeta.log).toEqual([]);
  });

  it('an image too small for a vbmeta struct (< 256 bytes) is flashed unchanged, as v35 does, with a warning', async () => {
    const tiny = file('tiny-vbmeta.img');
    writeFileSync(tiny, Buffer.concat([Buffer.from('AVB0'), noise(100, 10)]));
    const r = await ours(['flash', '--disable-verity', 'vbmeta', tiny]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('smaller than a vbmeta struct');
    expect(downloads(r.log)).toEqual([`download 104 ${sha(readFileSync(tiny))}`]);
  });

  it('--disable-verity with a ROM (one argument) is refused: a ROM script says where it applies', async () => {
    const r = await runMiflash(['flash', '--disable-verity', tmp.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--disable-verity: only for flashing one image');
  });

  it('options before the command, as the AOSP client takes them: a command\'s own options move after it; an unknown one is still an error', async () => {
    const r = await ours(['--slot', 'b', '--disable-verity', 'flash', 'vbmeta', vbmeta]);
    expect(r.code).toBe(0);
    expect(r.log.filter((l) => l.startsWith('flash:'))).toEqual(['flash:vbmeta_b']);
    const bad = await ours(['--no-such-option', 'flash', 'vbmeta', vbmeta]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--no-such-option'");
    expect(bad.log).toEqual([]);
  });
});

describe('-w, reboot and flash PARTITION as the AOSP client takes them', () => {
  it('-w --fs-options casefold: the filesystems are built with the feature (v35 WipeTask passes fs_options to the format)', needs('mke2fs', 'mkfs.f2fs', 'fsck.f2fs'), async () => {
    const features = async (extra: string[]) => {
      const r = await ours(['-w', '--yes', ...extra], { partitions: { userdata: 64 * 1024 * KiB, metadata: 16 * 1024 * KiB, cache: 16 * 1024 * KiB } });
      expect(r.code, r.stderr).toBe(0);
      const img = file(`userdata-${++n}.img`);
      writeFileSync(img, r.partition('userdata'));
      let out = '';
      try {
        out = execFileSync(peerPath('fsck.f2fs'), [img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        out = String((err as { stdout?: string }).stdout ?? '');
      }
      return { log: r.log, superblock: out.split('\n').find((l) => l.includes('superblock features')) ?? '' };
    };
    const plain = await features([]);
    const casefold = await features(['--fs-options', 'casefold']);
    expect(plain.superblock).not.toContain('casefold');
    expect(casefold.superblock).toContain('casefold');
    expect(casefold.log.filter((l) => !l.startsWith('download'))).toEqual(plain.log.filter((l) => !l.startsWith('download')));
  });

  it('update -w --fs-options casefold: the filesystems built after the images have the feature (v35 WipeTask uses fs_options for update too)', needs('mke2fs', 'mkfs.f2fs', 'fsck.f2fs'), async () => {
    const { makeDeflateZip } = await import('../plan/runner-google-rom.js');
    const zip = file('update-fs-options.zip');
    writeFileSync(zip, makeDeflateZip([{ name: 'android-info.txt', data: '' }, { name: 'boot.img', data: noise(8 * KiB, 21) }, { name: 'system.img', data: noise(16 * KiB, 22) }]));
    const features = async (extra: string[]) => {
      const r = await ours(['update', '-w', '--yes', '--skip-reboot', ...extra, zip], { partitions: { userdata: 64 * 1024 * KiB, metadata: 16 * 1024 * KiB, cache: 16 * 1024 * KiB } });
      expect(r.code, r.stderr).toBe(0);
      const img = file(`update-userdata-${++n}.img`);
      writeFileSync(img, r.partition('userdata'));
      let out = '';
      try {
        out = execFileSync(peerPath('fsck.f2fs'), [img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        out = String((err as { stdout?: string }).stdout ?? '');
      }
      return { log: r.log, superblock: out.split('\n').find((l) => l.includes('superblock features')) ?? '' };
    };
    const plain = await features([]);
    const casefold = await features(['--fs-options', 'casefold']);
    expect(plain.superblock).not.toBe('');
    expect(plain.superblock).not.toContain('casefold');
    expect(casefold.superblock).toContain('casefold');
    expect(casefold.log.filter((l) => !l.startsWith('download'))).toEqual(plain.log.filter((l) => !l.startsWith('download')));
    expect(casefold.log).toContain('flash:system_a');
    expect(casefold.log).toContain('flash:userdata');
  });

  it('-w --force cancels a snapshot update first (v35 CancelSnapshotIfNeeded); without --force nothing is cancelled', needs('mke2fs', 'mkfs.f2fs'), async () => {
    const opts = { partitions: { userdata: 64 * 1024 * KiB, metadata: 16 * 1024 * KiB, cache: 16 * 1024 * KiB }, vars: { 'snapshot-update-status': 'snapshotted' } };
    const forced = await ours(['-w', '--yes', '--force'], opts);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.log.slice(0, 3)).toEqual(['getvar:snapshot-update-status', 'snapshot-update:cancel', 'getvar:partition-type:userdata']);
    const plain = await ours(['-w', '--yes'], opts);
    expect(plain.log).not.toContain('snapshot-update:cancel');
    const none = await ours(['-w', '--yes', '--force'], { ...opts, vars: {} });
    expect(none.log.slice(0, 2)).toEqual(['getvar:snapshot-update-status', 'getvar:partition-type:userdata']);
  });

  it('--skip-reboot reboot sends nothing; --skip-reboot reboot bootloader still reboots (v35 RebootTask)', needs('fastboot'), async () => {
    const plain = await both(['--skip-reboot', 'reboot']);
    expect(plain.oursCode).toBe(0);
    expect(plain.ours).toEqual(plain.aosp);
    expect(plain.ours).toEqual([]);
    const target = await both(['--skip-reboot', 'reboot', 'bootloader']);
    expect(target.ours).toEqual(target.aosp);
    expect(target.ours).toEqual(['reboot-bootloader']);
  });

  it('flash PARTITION without a file: the image from $ANDROID_PRODUCT_OUT (find_item: dts → dt.img)', needs('fastboot'), async () => {
    const out = file('product-out');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'boot.img'), noise(20_000, 11));
    writeFileSync(path.join(out, 'dt.img'), noise(5_000, 12));
    const saved = process.env.ANDROID_PRODUCT_OUT;
    process.env.ANDROID_PRODUCT_OUT = out;
    try {
      for (const p of ['boot', 'dts']) {
        const r = await both(['flash', p], ['--partition', 'dts=1M']);
        expect(r.oursCode, r.oursErr).toBe(0);
        expect(r.ours).toEqual(r.aosp);
        expect(downloads(r.ours)).toHaveLength(1);
      }
    } finally {
      if (saved === undefined) delete process.env.ANDROID_PRODUCT_OUT;
      else process.env.ANDROID_PRODUCT_OUT = saved;
    }
    const unset = await runMiflash(['-s', 'tcp:127.0.0.1:1', 'flash', 'vbmeta_system']);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('no image given and ANDROID_PRODUCT_OUT is not set');
  });

  it('-v prints the conversation on stderr (AOSP -v prints its own notes instead); --unbuffered is accepted as AOSP takes it', needs('fastboot'), async () => {
    const v = await ours(['-v', 'stage', sig]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toContain('> getvar:max-download-size\n< OKAY0x');
    expect(v.stderr).toContain('> download:00000100\n< DATA00000100\n> (256 bytes of data)\n< OKAY\n');
    const u = await both(['--unbuffered', 'getvar', 'product']);
    expect(u.oursCode).toBe(0);
    expect(u.ours).toEqual(u.aosp);
  });

  it('--set-active[=SLOT] as the AOSP client: resolved first (slot-count / current-slot), sent after the command, before a reboot; alone it only switches', needs('fastboot'), async () => {
    for (const args of [
      ['--set-active=b', 'flash', 'boot', sig],
      ['--set-active'],
      ['--set-active=b'],
      ['--set-active=a', 'reboot', 'bootloader'],
      ['--slot', 'b', '--set-active', 'flash', 'boot', sig],
    ]) {
      const r = await both(args);
      expect(r.oursCode, `${args.join(' ')}: ${r.oursErr}`).toBe(0);
      expect(r.ours, args.join(' ')).toEqual(r.aosp);
      expect(r.ours.filter((l) => l.startsWith('set_active:'))).toHaveLength(1);
    }
    const noValue = await both(['--set-active', 'b']); // getopt: an optional value needs "=", so b is a command
    expect(noValue.aospCode).not.toBe(0);
    expect(noValue.oursCode).not.toBe(0);
    expect(noValue.ours).toEqual([]);
  });

  it('-w --set-active=b: the slot is switched before the wipe (v35 runs set_active before its WipeTasks; v29 wiped first)', needs('mke2fs', 'mkfs.f2fs'), async () => {
    const r = await ours(['-w', '--yes', '--set-active=b'], { partitions: { userdata: 64 * 1024 * KiB, metadata: 16 * 1024 * KiB, cache: 16 * 1024 * KiB } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.log.indexOf('set_active:b')).toBeGreaterThan(-1);
    expect(r.log.indexOf('set_active:b')).toBeLessThan(r.log.indexOf('erase:userdata'));
  });

  it('flash of a partition $ANDROID_PRODUCT_OUT/super_empty.img lists, from the bootloader: refused after is-userspace, as AOSP (FlashTask); --force flashes it', needs('fastboot'), async () => {
    const out = file('product-out-dynamic');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    const b = MetadataBuilder.create([{ partitionName: 'super', size: 64 * 1024 * KiB, alignment: 1024 * KiB, alignmentOffset: 0, logicalBlockSize: 4096 }], 'super', 65536, 2);
    for (const p of ['system_a', 'system_b']) b.addPartition(p);
    writeFileSync(path.join(out, 'super_empty.img'), emptyImage(b.export()));
    const saved = process.env.ANDROID_PRODUCT_OUT;
    process.env.ANDROID_PRODUCT_OUT = out;
    try {
      const refused = await both(['flash', 'system', sig]);
      expect(refused.aospCode).not.toBe(0);
      expect(refused.aospErr).toContain('should be flashed via fastbootd');
      expect(refused.oursCode).toBe(2);
      expect(refused.oursErr).toContain('should be flashed via fastbootd');
      expect(refused.ours).toEqual(refused.aosp);
      expect(refused.ours.at(-1)).toBe('getvar:is-userspace');
      const forced = await both(['--force', 'flash', 'system', sig]);
      expect(forced.oursCode, forced.oursErr).toBe(0);
      expect(forced.ours).toEqual(forced.aosp);
      expect(forced.ours).toContain('flash:system_a');
      // v35 copy_avb_footer skips a partition super_empty.img lists: an image with a footer goes out unpadded.
      const footer = await both(['--force', 'flash', 'system', bootAvb], ['--partition', 'system_a=1M']);
      expect(footer.oursCode, footer.oursErr).toBe(0);
      expect(footer.ours).toEqual(footer.aosp);
      expect(downloads(footer.ours)).toEqual([`download ${BOOT_AVB_SIZE} ${sha(readFileSync(bootAvb))}`]);
      const other = await both(['flash', 'boot', sig]);
      expect(other.ours).toEqual(other.aosp);
      expect(other.ours).not.toContain('getvar:is-userspace');
    } finally {
      if (saved === undefined) delete process.env.ANDROID_PRODUCT_OUT;
      else process.env.ANDROID_PRODUCT_OUT = saved;
    }
  });

  it('reboot-recovery and reboot-fastboot, the AOSP command words', needs('fastboot'), async () => {
    const rec = await both(['reboot-recovery']);
    expect(rec.oursCode).toBe(0);
    expect(rec.ours).toEqual(rec.aosp);
    expect(rec.ours).toEqual(['reboot-recovery']);
    // As `reboot fastboot` (fastboot-parity.test.ts): v35 asks is-userspace first and miflash checks the serial number.
    const fb = await both(['reboot-fastboot']);
    expect(fb.oursCode, fb.oursErr).toBe(0);
    expect(fb.aosp).toEqual(['reboot-fastboot', 'getvar:is-userspace']);
    expect(fb.ours).toEqual(['getvar:is-userspace', 'getvar:serialno', 'reboot-fastboot', 'getvar:serialno', 'getvar:is-userspace']);
  });
});

// `miflash flash PARTITION FILE` follows v35 (the tests above); a ROM script's flash steps follow v29: the
// vendor script run by Debian's client is what the shell oracle compares plans against.
describe('ROM scripts follow the v29 client the shell oracle runs (issue 8: send what the AOSP client sends)', () => {
  it('--disable-verity --disable-verification in flash_all.sh: vbmeta_a patched, vbmeta_system_a sent unchanged — the same downloads as the script under dash with Debian\'s client', { ...needs('fastboot', 'dash'), timeout: 90_000 }, async () => {
    const { mkdirSync } = await import('node:fs');
    const rom = file('rom-disable-verity');
    mkdirSync(path.join(rom, 'images'), { recursive: true });
    const vb = vbmetaStruct(4 * KiB, 31);
    const vbs = vbmetaStruct(4 * KiB, 32);
    writeFileSync(path.join(rom, 'images/vbmeta.img'), vb);
    writeFileSync(path.join(rom, 'images/vbmeta_system.img'), vbs);
    writeFileSync(
      path.join(rom, 'flash_all.sh'),
      [
        '#!/bin/sh',
        'fastboot $* --disable-verity --disable-verification flash vbmeta_a `dirname $0`/images/vbmeta.img',
        'fastboot $* --disable-verity --disable-verification flash vbmeta_system_a `dirname $0`/images/vbmeta_system.img',
        // v35 would patch this one too (its is_vbmeta_partition: the name ends in vbmeta); v29 does not.
        'fastboot $* --disable-verity flash guest_vbmeta `dirname $0`/images/vbmeta_system.img',
        'fastboot $* reboot',
        '',
      ].join('\n'),
    );
    const a = await device(['--partition', 'guest_vbmeta=64K']);
    const b = await device(['--partition', 'guest_vbmeta=64K']);
    try {
      const env = { ...process.env, PATH: `${path.dirname(peerPath('fastboot'))}:${process.env.PATH ?? ''}` };
      const sh = spawn(peerPath('dash'), [path.join(rom, 'flash_all.sh'), '-s', `tcp:127.0.0.1:${a.emu.port}`], { stdio: 'ignore', env });
      expect(await new Promise((resolve) => sh.once('close', resolve))).toBe(0);
      const r = await runMiflash(['-s', b.emu.address, 'flash', rom, '--yes'], 60_000);
      expect(r.code, r.stderr).toBe(0);
      const writes = (log: string[]) => log.filter((l) => !l.startsWith('getvar:'));
      expect(writes(b.log())).toEqual(writes(a.log()));
      const patched = Buffer.from(vb);
      patched[123] = 0x03;
      expect(writes(b.log())).toEqual([`download ${4 * KiB} ${sha(patched)}`, 'flash:vbmeta_a', `download ${4 * KiB} ${sha(vbs)}`, 'flash:vbmeta_system_a', `download ${4 * KiB} ${sha(vbs)}`, 'flash:guest_vbmeta', 'reboot']);
    } finally {
      await a.emu.stop();
      await b.emu.stop();
    }
  });
});
