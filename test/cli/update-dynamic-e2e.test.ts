// `miflash update ZIP` with super_empty.img and `miflash wipe-super` against
// `miflash emulate --dynamic-partitions` (bootloader + fastbootd, super with
// real LP metadata), next to the AOSP client (Debian, v29) on an identical
// device: the same writes apart from the resize-to-0 step (v29 resizes every
// OS image with that image's slot, v35 — which miflash follows — every dynamic
// partition with the --slot), and the same partition table and bytes in super
// afterwards, read back with src/lp.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferReader, emptyImage, MetadataBuilder, readSuperMetadata, type LpMetadata } from '../../src/lp/index.js';
import { REPO_ROOT, runAospFastboot, spawnCliEmulator, tempDir, type CliEmulator } from '../helpers/emulator.js';
import { makeDeflateZip } from '../plan/runner-google-rom.js';
import { needs } from '../helpers/peers.js';

const MiB = 1024 * 1024;
const tmp = tempDir('miflash-dyn-e2e-');
afterAll(() => tmp.cleanup());

function miflash(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  const { ANDROID_SERIAL: _a, FASTBOOT_DEVICE: _f, ...env } = process.env;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stderr })));
  });
}

let n = 0;
async function device(extra: string[] = []): Promise<{ emu: CliEmulator; dir: string; log: () => string[]; meta: (slot: number) => LpMetadata; superBytes: () => Buffer }> {
  const dir = path.join(tmp.dir, `dev-${++n}`);
  const log = path.join(tmp.dir, `log-${n}`);
  writeFileSync(log, '');
  const emu = await spawnCliEmulator(['--store', dir, '--slots', 'a,b', '--dynamic-partitions', '--partition', 'super=64M', '--partition', 'boot_a=2M', '--partition', 'boot_b=2M', '--product', 'emu', '--log', log, ...extra]);
  const superBytes = () => readFileSync(path.join(dir, 'super.img'));
  return { emu, dir, log: () => readFileSync(log, 'utf8').split('\n').filter(Boolean), superBytes, meta: (slot) => readSuperMetadata(bufferReader(superBytes()), slot) };
}

function superEmpty(): Buffer {
  const b = MetadataBuilder.create([{ partitionName: 'super', size: 64 * MiB, alignment: MiB, alignmentOffset: 0, logicalBlockSize: 4096 }], 'super', 65536, 2);
  for (const p of ['system_a', 'system_b', 'vendor_a', 'vendor_b']) b.addPartition(p);
  return emptyImage(b.export());
}

const images = { 'boot.img': randomBytes(MiB), 'vbmeta.img': randomBytes(4096), 'system.img': randomBytes(3 * MiB), 'vendor.img': randomBytes(MiB), 'system_other.img': randomBytes(MiB / 2) };
let zip: string;
beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/cli/commands/device-update.js'))) throw new Error('build first: npx tsc -p .');
  zip = path.join(tmp.dir, 'image-emu.zip');
  writeFileSync(
    zip,
    makeDeflateZip([
      { name: 'android-info.txt', data: 'require board=emu\n' },
      ...Object.entries(images).map(([name, data]) => ({ name, data })),
      { name: 'super_empty.img', data: superEmpty() },
    ]),
  );
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const writes = (log: string[]) => log.filter((l) => !l.startsWith('getvar:'));
const notResize0 = (log: string[]) => writes(log).filter((l) => !/^resize-logical-partition:.*:0$/.test(l));
const extents = (m: LpMetadata) => m.partitions.map((p) => [p.name, m.extents.slice(p.firstExtentIndex, p.firstExtentIndex + p.numExtents).map((e) => [e.targetData, e.numSectors])]);

describe('update with super_empty.img: same result as the AOSP client', needs('fastboot'), () => {
  it('boot images in the bootloader, update-super in fastbootd, logical images in their extents; reboot', async () => {
    const a = await device();
    const b = await device();
    try {
      const ra = await runAospFastboot(a.emu.port, ['update', zip], 60_000);
      expect(ra.code, ra.stderr).toBe(0);
      const rb = await miflash(['-s', b.emu.address, 'update', zip]);
      expect(rb.code, rb.stderr).toBe(0);
      expect(notResize0(b.log())).toEqual(notResize0(a.log()));
      const ours = writes(b.log());
      expect(ours.filter((l) => !l.startsWith('download'))).toEqual([
        'set_active:a',
        'flash:boot_a',
        'flash:vbmeta_a',
        'reboot-fastboot',
        'update-super:super',
        'resize-logical-partition:system_a:0',
        'resize-logical-partition:system_a:0',
        'resize-logical-partition:vendor_a:0',
        `resize-logical-partition:system_a:${3 * MiB}`,
        'flash:system_a',
        `resize-logical-partition:system_b:${MiB / 2}`,
        'flash:system_b',
        `resize-logical-partition:vendor_a:${MiB}`,
        'flash:vendor_a',
        'reboot',
      ]);
      for (const slot of [0, 1]) expect(extents(b.meta(slot))).toEqual(extents(a.meta(slot)));
      const m = b.meta(0);
      const bytes = (name: string) => {
        const p = m.partitions.find((x) => x.name === name)!;
        const sup = b.superBytes();
        return Buffer.concat(m.extents.slice(p.firstExtentIndex, p.firstExtentIndex + p.numExtents).map((e) => sup.subarray(e.targetData * 512, (e.targetData + e.numSectors) * 512)));
      };
      expect(bytes('system_a').equals(images['system.img'])).toBe(true);
      expect(bytes('system_b').equals(images['system_other.img'])).toBe(true);
      expect(bytes('vendor_a').equals(images['vendor.img'])).toBe(true);
    } finally {
      await a.emu.stop();
      await b.emu.stop();
    }
  }, 120_000);

  it('wipe-super: the same partition table in super as the AOSP client writes', async () => {
    const file = path.join(tmp.dir, 'super_empty.img');
    writeFileSync(file, superEmpty());
    const a = await device();
    const b = await device();
    try {
      const ra = await runAospFastboot(a.emu.port, ['wipe-super', file], 60_000);
      expect(ra.code, ra.stderr).toBe(0);
      const rb = await miflash(['-s', b.emu.address, 'wipe-super', file]);
      expect(rb.code, rb.stderr).toBe(0);
      for (const slot of [0, 1]) expect(b.meta(slot)).toEqual(a.meta(slot));
      expect(writes(b.log()).filter((l) => !l.startsWith('download'))).toEqual(writes(a.log()).filter((l) => !l.startsWith('download')));
    } finally {
      await a.emu.stop();
      await b.emu.stop();
    }
  }, 120_000);

  it('reboot fastboot and logical partition commands in fastbootd, then reboot bootloader: the same conversation as the AOSP client but for v35\'s is-userspace check first', async () => {
    const a = await device();
    const b = await device();
    try {
      const seq = [['reboot', 'fastboot'], ['create-logical-partition', 'product_a', '1048576'], ['resize-logical-partition', 'product_a', '2097152'], ['delete-logical-partition', 'product_a'], ['reboot', 'bootloader']];
      for (const args of seq) {
        const ra = await runAospFastboot(a.emu.port, args, 60_000);
        expect(ra.code, `${args.join(' ')}: ${ra.stderr}`).toBe(0);
        const rb = await miflash(['-s', b.emu.address, ...args]);
        expect(rb.code, `${args.join(' ')}: ${rb.stderr}`).toBe(0);
      }
      expect(writes(b.log())).toEqual(writes(a.log()));
      expect(b.log().slice(0, 3)).toEqual(['getvar:is-userspace', 'getvar:serialno', 'reboot-fastboot']);
      for (const slot of [0, 1]) expect(b.meta(slot)).toEqual(a.meta(slot));
    } finally {
      await a.emu.stop();
      await b.emu.stop();
    }
  }, 120_000);

  it('stage then get_staged in two runs: the device keeps the staged data across connections', async () => {
    const d = await device();
    try {
      const data = randomBytes(300_000);
      const file = path.join(tmp.dir, 'stage.bin');
      writeFileSync(file, data);
      expect((await miflash(['-s', d.emu.address, 'stage', file])).code).toBe(0);
      const out = path.join(tmp.dir, 'staged.bin');
      expect((await miflash(['-s', d.emu.address, 'get_staged', out])).code).toBe(0);
      expect(readFileSync(out).equals(data)).toBe(true);
    } finally {
      await d.emu.stop();
    }
  }, 60_000);
});

describe('update --exclude-dynamic-partitions (v35): only the partitions outside super, from the bootloader', () => {
  it('set_active, boot and vbmeta flashed in the bootloader, then the reboot: no fastbootd, no update-super, no resize, super untouched', async () => {
    const d = await device();
    try {
      const before = d.superBytes();
      const r = await miflash(['-s', d.emu.address, 'update', '--exclude-dynamic-partitions', zip]);
      expect(r.code, r.stderr).toBe(0);
      expect(writes(d.log())).toEqual(['set_active:a', `download ${MiB} ${sha256(images['boot.img'])}`, 'flash:boot_a', `download 4096 ${sha256(images['vbmeta.img'])}`, 'flash:vbmeta_a', 'reboot']);
      expect(d.superBytes().equals(before)).toBe(true);
      expect(readFileSync(path.join(d.dir, 'boot_a.img')).subarray(0, MiB).equals(images['boot.img'])).toBe(true);
    } finally {
      await d.emu.stop();
    }
  }, 60_000);

  it('--slot all is refused before anything is sent', async () => {
    const d = await device();
    try {
      const r = await miflash(['-s', d.emu.address, 'update', '--exclude-dynamic-partitions', '--slot', 'all', zip]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/--exclude-dynamic-partitions cannot be combined with --slot all/);
      expect(writes(d.log())).toEqual([]);
    } finally {
      await d.emu.stop();
    }
  }, 60_000);
});

/** An image of `size` noise bytes ending in an AvbFooter (magic, version 1.0, original size, vbmeta offset/size). */
function withAvbFooter(size: number): Buffer {
  const b = randomBytes(size);
  const f = Buffer.alloc(64);
  f.write('AVBf', 0, 'latin1');
  f.writeUInt32BE(1, 4);
  f.writeBigUInt64BE(BigInt(size / 2), 12);
  f.writeBigUInt64BE(BigInt(size / 2), 20);
  f.writeBigUInt64BE(BigInt(1024), 28);
  f.copy(b, size - 64);
  return b;
}

describe('update: v35 copy_avb_footer (FlashTask → flash_buf), not for the partitions super_empty.img lists', () => {
  it('boot.img with an AVB footer goes out padded to the 2 MiB partition, footer at the end; system.img (logical, in super) goes out unpadded', async () => {
    const boot = withAvbFooter(MiB);
    const system = withAvbFooter(MiB);
    const z = path.join(tmp.dir, 'image-avb.zip');
    writeFileSync(z, makeDeflateZip([{ name: 'android-info.txt', data: 'require board=emu\n' }, { name: 'boot.img', data: boot }, { name: 'system.img', data: system }, { name: 'super_empty.img', data: superEmpty() }]));
    const d = await device();
    try {
      const r = await miflash(['-s', d.emu.address, 'update', '--skip-secondary', z]);
      expect(r.code, r.stderr).toBe(0);
      const padded = Buffer.concat([boot, Buffer.alloc(MiB - 64), boot.subarray(MiB - 64)]);
      const log = d.log();
      expect(log.filter((l) => l.startsWith('download '))).toEqual([`download ${2 * MiB} ${sha256(padded)}`, `download ${superEmpty().length} ${sha256(superEmpty())}`, `download ${MiB} ${sha256(system)}`]);
      // partition-size is asked for boot_a only (the image with a footer on a partition outside super).
      expect(log.filter((l) => l.startsWith('getvar:partition-size'))).toEqual(['getvar:partition-size:boot_a']);
      expect(readFileSync(path.join(d.dir, 'boot_a.img')).equals(padded)).toBe(true);
    } finally {
      await d.emu.stop();
    }
  }, 60_000);

  it('a partition super_empty.img lists, flashed from the bootloader (fastboot-info.txt, --force): no footer copy, partition-size not asked', async () => {
    const system = withAvbFooter(MiB);
    const z = path.join(tmp.dir, 'image-avb-info.zip');
    writeFileSync(z, makeDeflateZip([{ name: 'android-info.txt', data: 'require board=emu\n' }, { name: 'fastboot-info.txt', data: 'version 1\nflash system\n' }, { name: 'boot.img', data: randomBytes(4096) }, { name: 'system.img', data: system }, { name: 'super_empty.img', data: superEmpty() }]));
    const d = await device(['--partition', 'system_a=2M']);
    try {
      const r = await miflash(['-s', d.emu.address, 'update', '--force', '--skip-reboot', z]);
      expect(r.code, r.stderr).toBe(0);
      const log = d.log();
      expect(log.filter((l) => l.startsWith('download '))).toEqual([`download ${MiB} ${sha256(system)}`]);
      expect(log).toContain('flash:system_a');
      expect(log.filter((l) => l.startsWith('getvar:partition-size'))).toEqual([]);
    } finally {
      await d.emu.stop();
    }
  }, 60_000);
});
