// The AOSP fastboot client (Debian, v29) against `miflash emulate
// --dynamic-partitions`: reboot into fastbootd, logical partition commands,
// flashing a logical partition, `update` of a zip with super_empty.img,
// wipe-super, boot, stage/get_staged. The store is then read back with src/lp.
// Needs a built dist/ (npm run build) for the CLI.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferReader, readSuperMetadata, type LpMetadata } from '../../src/lp/index.js';
import { runAospFastboot, spawnCliEmulator, tempDir, type CliEmulator } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';
import { superEmptyAB } from '../lp/fixtures.js';
import { makeZip } from '../rom/helpers.js';

const MiB = 1024 * 1024;
const tmp = tempDir('miflash-aosp-fastbootd-');
const store = path.join(tmp.dir, 'store');
const logFile = path.join(tmp.dir, 'emulator.log');
let emu: CliEmulator;

const superImage = (): Buffer => readFileSync(path.join(store, 'super.img'));
const meta = (slot = 0): LpMetadata => readSuperMetadata(bufferReader(superImage()), slot);
const extentsOf = (m: LpMetadata, name: string): [number, number][] => {
  const p = m.partitions.find((x) => x.name === name);
  if (!p) throw new Error(`${name} not in metadata: ${m.partitions.map((x) => x.name).join(', ')}`);
  return m.extents.slice(p.firstExtentIndex, p.firstExtentIndex + p.numExtents).map((e) => [e.targetData, e.numSectors]);
};
/** A logical partition's bytes, read from super through its extents. */
function logicalBytes(m: LpMetadata, name: string): Buffer {
  const sup = superImage();
  return Buffer.concat(extentsOf(m, name).map(([start, n]) => sup.subarray(start * 512, (start + n) * 512)));
}
const logSince = (mark: number): string[] => readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(mark);
const logLength = (): number => (existsSync(logFile) ? readFileSync(logFile, 'utf8').trimEnd().split('\n').length : 0);
const fb = (args: string[]): ReturnType<typeof runAospFastboot> => runAospFastboot(emu.port, args, 60_000);

afterAll(async () => {
  await emu?.stop();
  tmp.cleanup();
});

describe('AOSP fastboot v29 against the emulator in fastbootd', needs('fastboot'), () => {
  beforeAll(async () => {
    emu = await spawnCliEmulator(['--store', store, '--slots', 'a,b', '--dynamic-partitions', '--partition', 'super=64M', '--partition', 'boot_a=2M', '--max-download-size', '2M', '--log', logFile]);
  });

  it('reboot fastboot: the client sees is-userspace yes; reboot bootloader goes back', async () => {
    const r = await fb(['reboot', 'fastboot']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('Failed to boot into userspace fastboot');
    expect((await fb(['getvar', 'is-userspace'])).stderr).toMatch(/^is-userspace: yes$/m);
    expect((await fb(['reboot', 'bootloader'])).code).toBe(0);
    expect((await fb(['getvar', 'is-userspace'])).stderr).toMatch(/^is-userspace: no$/m);
  });

  it('create, resize, delete-logical-partition land in the LP metadata of super', async () => {
    expect((await fb(['reboot', 'fastboot'])).code).toBe(0);
    const c = await fb(['create-logical-partition', 'product_a', '1048576']);
    expect(c.code, c.stderr).toBe(0);
    expect(extentsOf(meta(), 'product_a')).toEqual([[2048, 2048]]);
    expect(extentsOf(meta(1), 'product_a')).toEqual([[2048, 2048]]);
    expect((await fb(['resize-logical-partition', 'product_a', '3145728'])).code).toBe(0);
    expect(extentsOf(meta(), 'product_a')).toEqual([[2048, 6144]]);
    expect((await fb(['getvar', 'partition-size:product_a'])).stderr).toMatch(/^partition-size:product_a: 0x300000$/m);
    expect((await fb(['delete-logical-partition', 'product_a'])).code).toBe(0);
    expect(meta().partitions).toEqual([]);
    const bad = await fb(['resize-logical-partition', 'nothing', '4096']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("remote: 'Partition does not exist'");
  });

  it('flash of a logical partition: the client resizes it, resparses past max-download-size, and the bytes land in its extents', async () => {
    expect((await fb(['create-logical-partition', 'system_a', '0'])).code).toBe(0);
    const img = randomBytes(5 * MiB);
    const file = path.join(tmp.dir, 'system.img');
    writeFileSync(file, img);
    const mark = logLength();
    const r = await fb(['flash', 'system', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Sending sparse 'system_a' 1\/\d+/);
    expect(logSince(mark)).toContain(`resize-logical-partition:system_a:${5 * MiB}`);
    const m = meta();
    expect(extentsOf(m, 'system_a')).toEqual([[2048, 10240]]);
    expect(logicalBytes(m, 'system_a').equals(img)).toBe(true);
    expect((await fb(['delete-logical-partition', 'system_a'])).code).toBe(0);
  });

  it('update ZIP with super_empty.img: boot-critical images in the bootloader, update-super, logical images in fastbootd', async () => {
    expect((await fb(['reboot', 'bootloader'])).code).toBe(0);
    const boot = randomBytes(MiB);
    const system = randomBytes(3 * MiB);
    const vendor = randomBytes(MiB);
    const layout = [
      { name: 'system_a', group: 1 },
      { name: 'system_b', group: 2 },
      { name: 'vendor_a', group: 1 },
      { name: 'vendor_b', group: 2 },
    ];
    const zip = path.join(tmp.dir, 'update.zip');
    writeFileSync(
      zip,
      makeZip([
        { name: 'android-info.txt', data: 'require product=miflash-emu\n' },
        { name: 'boot.img', data: boot },
        { name: 'system.img', data: system },
        { name: 'vendor.img', data: vendor },
        { name: 'super_empty.img', data: superEmptyAB(layout) },
      ]),
    );
    const mark = logLength();
    const r = await fb(['update', zip]);
    expect(r.code, r.stderr).toBe(0);
    const log = logSince(mark);
    const at = (line: string): number => log.indexOf(line);
    expect(at('flash:boot_a')).toBeGreaterThanOrEqual(0);
    expect(at('flash:boot_a')).toBeLessThan(at('reboot-fastboot'));
    expect(at('reboot-fastboot')).toBeLessThan(at('update-super:super'));
    expect(at('update-super:super')).toBeLessThan(at('flash:system_a'));
    expect(log.at(-1)).toBe('reboot');
    // super now holds the layout from super_empty.img, with system_a and vendor_a allocated and written
    for (const slot of [0, 1]) expect(meta(slot).partitions.map((p) => p.name)).toEqual(['system_a', 'system_b', 'vendor_a', 'vendor_b']);
    const m = meta();
    expect(extentsOf(m, 'system_a')).toEqual([[2048, 6144]]);
    expect(extentsOf(m, 'vendor_a')).toEqual([[8192, 2048]]);
    expect(extentsOf(m, 'system_b')).toEqual([]);
    expect(logicalBytes(m, 'system_a').equals(system)).toBe(true);
    expect(logicalBytes(m, 'vendor_a').equals(vendor)).toBe(true);
    expect(readFileSync(path.join(store, 'boot_a.img')).subarray(0, MiB).equals(boot)).toBe(true);
    // `update` ends with a reboot: the device comes back in the bootloader
    expect((await fb(['getvar', 'is-userspace'])).stderr).toMatch(/^is-userspace: no$/m);
  });

  it('wipe-super flashes a whole super image built from super_empty.img', async () => {
    const file = path.join(tmp.dir, 'super_empty.img');
    writeFileSync(file, superEmptyAB([{ name: 'odm_a', group: 1 }]));
    const r = await fb(['wipe-super', file]);
    expect(r.code, r.stderr).toBe(0);
    for (const slot of [0, 1]) expect(meta(slot).partitions.map((p) => p.name)).toEqual(['odm_a']);
  });

  it('boot downloads the image and leaves; stage then get_staged returns the staged bytes', async () => {
    const kernel = path.join(tmp.dir, 'kernel');
    writeFileSync(kernel, randomBytes(64 * 1024));
    const mark = logLength();
    const r = await fb(['boot', kernel]);
    expect(r.code, r.stderr).toBe(0);
    expect(logSince(mark).slice(-2)[1]).toBe('boot');
    const staged = randomBytes(100_000);
    const inFile = path.join(tmp.dir, 'stage.bin');
    const outFile = path.join(tmp.dir, 'staged.out');
    writeFileSync(inFile, staged);
    expect((await fb(['stage', inFile])).code).toBe(0);
    const g = await fb(['get_staged', outFile]);
    expect(g.code, g.stderr).toBe(0);
    expect(readFileSync(outFile).equals(staged)).toBe(true);
  });

  it('fastbootd refuses bootloader-only commands the way a phone does', async () => {
    expect((await fb(['reboot', 'fastboot'])).code).toBe(0);
    const r = await fb(['flashing', 'unlock']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("remote: 'Unrecognized command flashing unlock'");
    expect((await fb(['reboot', 'bootloader'])).code).toBe(0);
  });
});
