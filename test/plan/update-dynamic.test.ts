// `update` with a zip for dynamic partitions (super_empty.img), against a
// scripted phone that reboots from its bootloader into fastbootd: the
// conversation must follow the AOSP v35 client's order — boot-critical images
// in the bootloader, reboot-fastboot, update-super with super_empty.img, every
// logical partition resized to 0, then the OS images into logical partitions
// (each resized to its image size first).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceLink } from '../../src/fastboot/link.js';
import { emptyImage, LP_PARTITION_ATTR_SLOT_SUFFIXED, MetadataBuilder } from '../../src/lp/index.js';
import { checkUpdateZip, runUpdate } from '../../src/plan/update-zip.js';
import { ScriptedPhone } from '../helpers/scripted-fastbootd.js';
import { makeDeflateZip, type ZipItem } from './runner-google-rom.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-dynamic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dl = (b: Buffer) => `download ${b.length} ${sha(b)}`;

function superEmpty(names: string[], attributes = 0): Buffer {
  const b = MetadataBuilder.create([{ partitionName: 'super', size: 64 * MiB, alignment: MiB, alignmentOffset: 0, logicalBlockSize: 4096 }], 'super', 65536, 2);
  for (const n of names) b.addPartition(n, 'default', attributes);
  return emptyImage(b.export());
}

function zip(name: string, items: ZipItem[]): string {
  const p = path.join(dir, name);
  writeFileSync(p, makeDeflateZip(items));
  return p;
}

const images = {
  'boot.img': randomBytes(8192),
  'vbmeta.img': randomBytes(4096),
  'system.img': randomBytes(20_000),
  'vendor.img': randomBytes(12_000),
  'system_other.img': randomBytes(6000),
};
const items = (extra: ZipItem[] = []): ZipItem[] => [
  { name: 'android-info.txt', data: 'require board=emu\n' },
  ...Object.entries(images).map(([name, data]) => ({ name, data })),
  ...extra,
];

async function run(phone: ScriptedPhone, zipPath: string, o: Parameters<typeof runUpdate>[3] = {}) {
  const first = await phone.connect();
  const link = new DeviceLink(first, { deviceId: 'phone', reopen: () => phone.connect(), reconnectIntervalMs: 20 });
  await runUpdate(link, zipPath, path.basename(zipPath), o);
  return link;
}

const writes = (log: string[]) => log.filter((l) => !l.startsWith('getvar:'));

describe('update with super_empty.img (A/B, bootloader -> fastbootd)', () => {
  const empty = superEmpty(['system_a', 'system_b', 'vendor_a', 'vendor_b']);
  const zipPath = zip('dyn.zip', items([{ name: 'super_empty.img', data: empty }]));

  it('phase 1 reads the dynamic partitions and needs no device', async () => {
    const z = await checkUpdateZip(zipPath, 'dyn.zip');
    expect(z.dynamic?.map((p) => p.name)).toEqual(['system_a', 'system_b', 'vendor_a', 'vendor_b']);
    expect(z.images.map((i) => i.image)).toEqual(['boot.img', 'system.img', 'system_other.img', 'vbmeta.img', 'vendor.img']);
  });

  it('boot images in the bootloader, then fastbootd: update-super, resizes to 0, logical flashes in table order', async () => {
    const phone = new ScriptedPhone({ slots: ['a', 'b'], logical: ['system_a', 'system_b', 'vendor_a', 'vendor_b'] });
    const link = await run(phone, zipPath);
    expect(phone.userspace).toBe(true);
    expect(writes(phone.log)).toEqual([
      'set_active:a',
      dl(images['boot.img']),
      'flash:boot_a',
      dl(images['vbmeta.img']),
      'flash:vbmeta_a',
      'reboot-fastboot',
      dl(empty),
      'update-super:super',
      'resize-logical-partition:system_a:0',
      'resize-logical-partition:system_a:0',
      'resize-logical-partition:vendor_a:0',
      `resize-logical-partition:system_a:${images['system.img'].length}`,
      dl(images['system.img']),
      'flash:system_a',
      `resize-logical-partition:system_b:${images['system_other.img'].length}`,
      dl(images['system_other.img']),
      'flash:system_b',
      `resize-logical-partition:vendor_a:${images['vendor.img'].length}`,
      dl(images['vendor.img']),
      'flash:vendor_a',
    ]);
    // The device is checked after the reboot: same serial, and really fastbootd.
    const at = phone.log.indexOf('reboot-fastboot');
    expect(phone.log.slice(at + 1, at + 3)).toEqual(['getvar:serialno', 'getvar:is-userspace']);
    await link.client.close();
  });

  it('-w adds :wipe to update-super; --skip-secondary leaves system_other out; --slot b flashes slot b', async () => {
    const phone = new ScriptedPhone({ slots: ['a', 'b'], logical: ['system_a', 'system_b', 'vendor_a', 'vendor_b'] });
    await run(phone, zipPath, { wipe: true, skipSecondary: true, slot: 'b' });
    const w = writes(phone.log);
    expect(w[0]).toBe('set_active:b');
    expect(w).toContain('update-super:super:wipe');
    expect(w).toContain('flash:boot_b');
    expect(w).toContain('flash:system_b');
    expect(w.some((l) => l === dl(images['system_other.img']))).toBe(false);
  });

  it('already in fastbootd: no reboot', async () => {
    const phone = new ScriptedPhone({ slots: ['a', 'b'], logical: ['system_a', 'system_b', 'vendor_a', 'vendor_b'] });
    phone.userspace = true;
    await run(phone, zipPath);
    expect(phone.log).not.toContain('reboot-fastboot');
    expect(phone.log).toContain('update-super:super');
  });

  it('a fastboot-info.txt flashing a dynamic partition from the bootloader is refused unless --force (AOSP FlashTask)', async () => {
    const z = zip('info.zip', items([{ name: 'super_empty.img', data: empty }, { name: 'fastboot-info.txt', data: 'version 1\nflash boot\nflash system\n' }]));
    const phone = new ScriptedPhone({ slots: ['a', 'b'], logical: ['system_a'] });
    await expect(run(phone, z)).rejects.toThrow(/system_a is a dynamic partition and must be flashed from fastbootd/);
    expect(writes(phone.log).filter((l) => l.startsWith('flash:'))).toEqual(['flash:boot_a']);
    const forced = new ScriptedPhone({ slots: ['a', 'b'], logical: ['system_a'] });
    await run(forced, z, { force: true });
    expect(writes(forced.log)).toContain('flash:system_a');
    // fastboot-info.txt's own order: no update-super line, so none is sent
    expect(forced.log.some((l) => l.startsWith('update-super'))).toBe(false);
  });

  it('slot-suffixed (retrofit) metadata: system matches system_a and system_b', async () => {
    const retro = superEmpty(['system', 'vendor'], LP_PARTITION_ATTR_SLOT_SUFFIXED);
    const z = zip('retro.zip', items([{ name: 'super_empty.img', data: retro }]));
    const phone = new ScriptedPhone({ slots: ['a', 'b'], logical: ['system_a', 'system_b', 'vendor_a', 'vendor_b'] });
    await run(phone, z);
    expect(writes(phone.log).filter((l) => l.startsWith('resize-logical-partition:') && l.endsWith(':0'))).toEqual([
      'resize-logical-partition:system_a:0',
      'resize-logical-partition:system_a:0',
      'resize-logical-partition:vendor_a:0',
    ]);
  });
});
