// The emulated device's fastbootd mode and dynamic partitions, over the
// in-memory transport: mode switches, which commands each mode refuses, logical
// partition operations checked against the super image read back with src/lp,
// update-super, snapshot-update.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EmulatedFastbootDevice, runFastbootDevice, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { bufferReader, formatMetadata, readSuperMetadata, type LpMetadata } from '../../src/lp/index.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import { rawCommand, tempDir } from '../helpers/emulator.js';
import { superEmptyAB } from '../lp/fixtures.js';

const MiB = 1024 * 1024;
const SUPER = 64 * MiB;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function device(opts: Partial<FastbootEmulatorOptions> = {}): EmulatedFastbootDevice {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  return new EmulatedFastbootDevice({
    slots: ['a', 'b'],
    dynamicPartitions: true,
    ...opts,
    partitions: { super: SUPER, ...opts.partitions },
    store: path.join(tmp.dir, 'store'),
  });
}

/** One connection; `done` resolves when the device closes it (reboot). */
function connect(dev: EmulatedFastbootDevice): { host: Transport; done: Promise<void> } {
  const pair = createMemoryTransportPair();
  const done = runFastbootDevice(pair.device, dev);
  cleanups.push(() => void pair.host.close());
  return { host: pair.host, done };
}

/** Send a command on a fresh connection (a new `fastboot` invocation). */
async function cmd(dev: EmulatedFastbootDevice, text: string): Promise<{ status: string; message: string; before: string[] }> {
  const { host } = connect(dev);
  return rawCommand(host, text);
}

async function download(host: Transport, data: Buffer): Promise<void> {
  const r = await rawCommand(host, `download:${data.length.toString(16).padStart(8, '0')}`);
  expect(r.status).toBe('DATA');
  for (let i = 0; i < data.length; i += 256 * 1024) await host.write(data.subarray(i, i + 256 * 1024));
  expect((await host.read(256, { timeoutMs: 2000 })).toString()).toBe('OKAY');
}

async function downloadAnd(dev: EmulatedFastbootDevice, data: Buffer, command: string): Promise<{ status: string; message: string }> {
  const { host } = connect(dev);
  await download(host, data);
  return rawCommand(host, command);
}

async function toFastbootd(dev: EmulatedFastbootDevice): Promise<void> {
  const { host, done } = connect(dev);
  expect(await rawCommand(host, 'reboot-fastboot')).toMatchObject({ status: 'OKAY' });
  await done; // the device dropped the link: it is "rebooting"
}

const superMeta = (dev: EmulatedFastbootDevice, slot = 0): LpMetadata => readSuperMetadata(bufferReader(dev.readPartition('super')), slot);
const extentsOf = (m: LpMetadata, name: string): [number, number][] => {
  const p = m.partitions.find((x) => x.name === name)!;
  return m.extents.slice(p.firstExtentIndex, p.firstExtentIndex + p.numExtents).map((e) => [e.targetData, e.numSectors]);
};

describe('modes', () => {
  it('reboot-fastboot comes back as fastbootd, reboot-bootloader as the bootloader', async () => {
    const dev = device();
    expect(await cmd(dev, 'getvar:is-userspace')).toMatchObject({ status: 'OKAY', message: 'no' });
    expect(await cmd(dev, 'getvar:super-partition-name')).toMatchObject({ status: 'FAIL' });
    await toFastbootd(dev);
    expect(await cmd(dev, 'getvar:is-userspace')).toMatchObject({ status: 'OKAY', message: 'yes' });
    expect(await cmd(dev, 'getvar:super-partition-name')).toMatchObject({ status: 'OKAY', message: 'super' });
    const { host, done } = connect(dev);
    expect(await rawCommand(host, 'reboot-bootloader')).toEqual({ status: 'OKAY', message: 'Rebooting bootloader', before: [] });
    await done;
    expect(await cmd(dev, 'getvar:is-userspace')).toMatchObject({ message: 'no' });
  });

  it('each mode refuses the other one\'s commands as the real one does', async () => {
    const dev = device();
    expect(await cmd(dev, 'create-logical-partition:system_a:4096')).toMatchObject({ status: 'FAIL', message: "unknown command 'create-logical-partition:system_a:4096'" });
    expect(await cmd(dev, 'update-super:super')).toMatchObject({ status: 'FAIL' });
    await toFastbootd(dev);
    for (const [c, name] of [['boot', 'boot'], ['continue', 'continue'], ['upload', 'upload'], ['flashing unlock', 'flashing unlock'], ['reboot-edl', 'reboot-edl']]) {
      expect(await cmd(dev, c!)).toMatchObject({ status: 'FAIL', message: `Unrecognized command ${name}` });
    }
    expect(await cmd(dev, 'oem device-info')).toMatchObject({ status: 'OKAY' });
    expect(await cmd(dev, 'getvar:nonsense')).toMatchObject({ status: 'FAIL', message: 'Unknown variable' });
  });

  it('a locked device in fastbootd refuses downloads and logical partition edits', async () => {
    const dev = device({ vars: { unlocked: 'no', 'is-userspace': 'yes' } });
    expect(await cmd(dev, 'download:00001000')).toMatchObject({ status: 'FAIL', message: 'Download is not allowed on locked devices' });
    expect(await cmd(dev, 'create-logical-partition:x:4096')).toMatchObject({ status: 'FAIL', message: 'Command not available on locked devices' });
  });
});

describe('dynamic partitions', () => {
  it('a dynamic-partitions device has no physical system, and super holds a factory LP layout', () => {
    const dev = device();
    expect(dev.partitions.has('system_a')).toBe(false);
    expect(existsSync(dev.partitionPath('system_a'))).toBe(false);
    for (const slot of [0, 1]) {
      const m = superMeta(dev, slot);
      expect(m.geometry).toEqual({ metadataMaxSize: 65536, metadataSlotCount: 2, logicalBlockSize: 4096 });
      expect(m.blockDevices[0]).toMatchObject({ partitionName: 'super', size: SUPER, firstLogicalSector: 2048, alignment: MiB });
      expect(m.groups.map((g) => g.name)).toEqual(['default']);
      expect(m.partitions).toEqual([]);
    }
  });

  it('create, resize and delete allocate extents as a phone does and update every metadata slot', async () => {
    const dev = device({ vars: { 'is-userspace': 'yes' } });
    expect(await cmd(dev, 'create-logical-partition:system_a:3000000')).toMatchObject({ status: 'OKAY', message: 'Partition created' });
    // 3000000 -> 3002368 bytes (4096 multiple) = 5864 sectors from the first logical sector
    expect(extentsOf(superMeta(dev), 'system_a')).toEqual([[2048, 5864]]);
    expect(extentsOf(superMeta(dev, 1), 'system_a')).toEqual([[2048, 5864]]);
    // _b goes to the second half on A/B: midpoint of 2048..131072 aligned up to 1 MiB = 67584
    expect(await cmd(dev, 'create-logical-partition:system_b:0x100000')).toMatchObject({ status: 'OKAY' });
    expect(extentsOf(superMeta(dev), 'system_b')).toEqual([[67584, 2048]]);
    expect(await cmd(dev, 'create-logical-partition:system_a:1')).toMatchObject({ status: 'FAIL', message: 'Partition already exists' });
    expect(await cmd(dev, 'create-logical-partition:big:0x8000000')).toMatchObject({ status: 'FAIL', message: 'Not enough space for partition' });
    expect(await cmd(dev, 'create-logical-partition:x:12abc')).toMatchObject({ status: 'FAIL', message: 'Invalid partition size' });
    expect(await cmd(dev, 'create-logical-partition:x')).toMatchObject({ status: 'FAIL', message: 'Invalid partition name and size' });
    expect(await cmd(dev, 'getvar:is-logical:system_a')).toMatchObject({ message: 'yes' });
    expect(await cmd(dev, 'getvar:is-logical:boot_a')).toMatchObject({ message: 'no' });
    expect(await cmd(dev, 'getvar:is-logical:nothing')).toMatchObject({ status: 'FAIL', message: 'Partition not found' });
    expect(await cmd(dev, 'getvar:partition-size:system_a')).toMatchObject({ message: '0x2DD000' });
    expect(await cmd(dev, 'getvar:has-slot:system')).toMatchObject({ message: 'yes' });
    // grow in place to the next 1 MiB boundary (sector 8192), then take the next free region
    expect(await cmd(dev, 'resize-logical-partition:system_a:4194304')).toMatchObject({ status: 'OKAY', message: 'Partition resized' });
    expect(extentsOf(superMeta(dev), 'system_a')).toEqual([[2048, 8192]]);
    expect(await cmd(dev, 'resize-logical-partition:nothing:1')).toMatchObject({ status: 'FAIL', message: 'Partition does not exist' });
    expect(await cmd(dev, 'delete-logical-partition:system_b')).toMatchObject({ status: 'OKAY', message: 'Partition deleted' });
    expect(superMeta(dev).partitions.map((p) => p.name)).toEqual(['system_a']);
    const all = await cmd(dev, 'getvar:all');
    expect(all.before).toContain('INFOis-logical:system_a:yes');
    expect(all.before).toContain('INFOpartition-size:system_a:0x400000');
    // the bootloader knows nothing of logical partitions
    const { host, done } = connect(dev);
    await rawCommand(host, 'reboot-bootloader');
    await done;
    expect(await cmd(dev, 'getvar:is-logical:system_a')).toMatchObject({ status: 'FAIL' });
    expect(await cmd(dev, 'getvar:partition-size:boot_a')).toMatchObject({ message: '0x8000000' });
  });

  it('flashing a logical partition writes through its extents into super (raw and sparse)', async () => {
    const dev = device({ vars: { 'is-userspace': 'yes' } });
    await cmd(dev, 'create-logical-partition:system_a:1048576');
    await cmd(dev, 'create-logical-partition:vendor_a:1048576');
    await cmd(dev, 'resize-logical-partition:system_a:2097152');
    expect(extentsOf(superMeta(dev), 'system_a')).toEqual([[2048, 2048], [6144, 2048]]);
    const img = randomBytes(2 * MiB);
    expect(await downloadAnd(dev, img, 'flash:system_a')).toMatchObject({ status: 'OKAY', message: 'Flashing succeeded' });
    const sup = dev.readPartition('super');
    expect(sup.subarray(2048 * 512, 4096 * 512).equals(img.subarray(0, MiB))).toBe(true);
    expect(sup.subarray(6144 * 512, 8192 * 512).equals(img.subarray(MiB))).toBe(true);
    expect(dev.readLogicalPartition('system_a').equals(img)).toBe(true);
    // sparse: RAW + FILL spanning the extent boundary at 1 MiB
    const raw = randomBytes(4096);
    const sparse = sparseImage(4096, 512, [{ raw }, { fill: 0x11223344, blocks: 300 }]);
    expect(await downloadAnd(dev, sparse, 'flash:system_a')).toMatchObject({ status: 'OKAY' });
    const after = dev.readLogicalPartition('system_a');
    expect(after.subarray(0, 4096).equals(raw)).toBe(true);
    const fill = Buffer.alloc(300 * 4096);
    for (let i = 0; i < fill.length; i += 4) fill.writeUInt32LE(0x11223344, i);
    expect(after.subarray(4096, 4096 + fill.length).equals(fill)).toBe(true);
    expect(after.subarray(4096 + fill.length).equals(img.subarray(4096 + fill.length))).toBe(true);
    expect(await downloadAnd(dev, randomBytes(2 * MiB + 4096), 'flash:system_a')).toMatchObject({ status: 'FAIL', message: 'Value too large for defined data type' });
    await cmd(dev, 'create-logical-partition:empty_a:0');
    expect(await downloadAnd(dev, randomBytes(4096), 'flash:empty_a')).toMatchObject({ status: 'FAIL', message: 'No such file or directory' });
    // fastbootd takes names as given: no slot guessing
    expect(await downloadAnd(dev, randomBytes(4096), 'flash:system')).toMatchObject({ status: 'FAIL', message: 'No such file or directory' });
    // a download is consumed by the flash
    const { host } = connect(dev);
    await download(host, randomBytes(4096));
    expect(await rawCommand(host, 'flash:vendor_a')).toMatchObject({ status: 'OKAY' });
    expect(await rawCommand(host, 'flash:vendor_a')).toMatchObject({ status: 'FAIL', message: 'Invalid argument' });
    expect(await cmd(dev, 'erase:system_a')).toMatchObject({ status: 'OKAY', message: 'Erasing succeeded' });
    expect(dev.readLogicalPartition('system_a').equals(Buffer.alloc(2 * MiB))).toBe(true);
    expect(dev.readPartition('super').subarray(4096 * 512, 4096 * 512 + 4096).equals(Buffer.alloc(4096))).toBe(false); // vendor_a untouched
  });
});

describe('update-super', () => {
  const layout = [
    { name: 'system_a', group: 1 },
    { name: 'system_b', group: 2 },
  ];

  it('with wipe (or no readable metadata) flashes the new table to every slot', async () => {
    const dev = device({ dynamicPartitions: false, vars: { 'is-userspace': 'yes' } });
    expect(() => superMeta(dev)).toThrow(); // a plain super: no metadata yet
    expect(await downloadAnd(dev, superEmptyAB(layout), 'update-super:super')).toMatchObject({ status: 'OKAY', message: 'Successfully flashed partition table' });
    for (const slot of [0, 1]) expect(superMeta(dev, slot).partitions.map((p) => p.name)).toEqual(['system_a', 'system_b']);
    expect(formatMetadata(superMeta(dev))).toContain('  Name: system_b\n  Group: main_b\n  Attributes: readonly\n');
  });

  it('without wipe keeps the other slot\'s partitions, and refuses what does not fit', async () => {
    const dev = device({ vars: { 'is-userspace': 'yes' } });
    await cmd(dev, 'create-logical-partition:system_b:1048576');
    await cmd(dev, 'create-logical-partition:system_a:1048576');
    const before = extentsOf(superMeta(dev), 'system_b');
    expect(await downloadAnd(dev, superEmptyAB(layout), 'update-super:super')).toMatchObject({ status: 'OKAY', message: 'Successfully updated partition table' });
    const m = superMeta(dev);
    expect(extentsOf(m, 'system_b')).toEqual(before); // kept, contents and all
    expect(extentsOf(m, 'system_a')).toEqual([]); // the current slot starts empty
    expect(m.groups.map((g) => g.name)).toEqual(['default', 'main_a', 'main_b']);
    // the new layout already gives system_b space: importing would overwrite it
    const clash = superEmptyAB([{ name: 'system_a', group: 1 }, { name: 'system_b', group: 2, sectors: 2048 }]);
    expect(await downloadAnd(dev, clash, 'update-super:super')).toMatchObject({ status: 'FAIL', message: 'Old partitions are not compatible with the new super layout; wipe needed' });
    expect(await downloadAnd(dev, clash, 'update-super:super:wipe')).toMatchObject({ status: 'OKAY', message: 'Successfully flashed partition table' });
    expect(extentsOf(superMeta(dev), 'system_b')).toEqual([[2048, 2048]]);
  });

  it('refuses data that is no LP image, a super of another size, and an unknown super name', async () => {
    const dev = device({ vars: { 'is-userspace': 'yes' } });
    expect(await downloadAnd(dev, randomBytes(8192), 'update-super:super')).toMatchObject({ status: 'FAIL', message: 'Data is not a valid logical partition metadata image' });
    const wrongSize = await downloadAnd(dev, superEmptyAB(layout, 2 * SUPER), 'update-super:super:wipe');
    expect(wrongSize.status).toBe('FAIL');
    expect(wrongSize.message).toMatch(/^Unable to flash new partition table: block device super size mismatch/);
    expect(await downloadAnd(dev, superEmptyAB(layout), 'update-super:super_x')).toMatchObject({ status: 'FAIL', message: 'Cannot find super_x, build may be missing broken or missing boot_devices' });
    expect(await cmd(dev, 'update-super:super')).toMatchObject({ status: 'FAIL', message: 'No data available' });
  });
});

describe('snapshot-update', () => {
  it('protects user data while merging, merges and cancels', async () => {
    const dev = device({ vars: { 'snapshot-update-status': 'merging' } });
    expect(await cmd(dev, 'getvar:snapshot-update-status')).toMatchObject({ message: 'merging' });
    expect(await cmd(dev, 'snapshot-update:merge')).toMatchObject({ status: 'FAIL' }); // the bootloader cannot merge
    await toFastbootd(dev);
    expect(await downloadAnd(dev, randomBytes(4096), 'flash:userdata')).toMatchObject({ status: 'FAIL', message: 'Cannot flash userdata while a snapshot update is in progress' });
    expect(await cmd(dev, 'erase:metadata')).toMatchObject({ status: 'FAIL', message: 'Cannot erase metadata while a snapshot update is in progress' });
    expect(await cmd(dev, 'set_active:b')).toMatchObject({ status: 'FAIL', message: 'Cannot change slots while a snapshot update is in progress' });
    expect(await cmd(dev, 'snapshot-update')).toEqual({ status: 'OKAY', message: '', before: ['INFOmerging'] });
    expect(await cmd(dev, 'snapshot-update:merge')).toMatchObject({ status: 'OKAY', message: 'Success' });
    expect(await cmd(dev, 'snapshot-update:merge')).toMatchObject({ status: 'FAIL', message: 'No snapshot merge is in progress' });
    expect(await cmd(dev, 'snapshot-update:bogus')).toMatchObject({ status: 'FAIL', message: 'Invalid parameter to snapshot-update' });
    dev.snapshotStatus = 'snapshotted';
    expect(await cmd(dev, 'snapshot-update:cancel')).toMatchObject({ status: 'OKAY' });
    expect(await cmd(dev, 'getvar:snapshot-update-status')).toMatchObject({ message: 'none' });
  });

  it('is not supported without slots', async () => {
    const dev = device({ slots: [], vars: { 'is-userspace': 'yes' } });
    expect(await cmd(dev, 'getvar:snapshot-update-status')).toMatchObject({ status: 'FAIL', message: 'not supported' });
    expect(await cmd(dev, 'snapshot-update:cancel')).toMatchObject({ status: 'FAIL', message: 'Not supported' });
  });
});

// --- a tiny sparse writer (libsparse layout) ---
type Chunk = { raw: Buffer } | { fill: number; blocks: number };
function sparseImage(blockSize: number, totalBlocks: number, chunks: Chunk[]): Buffer {
  const parts: Buffer[] = [];
  for (const c of chunks) {
    const h = Buffer.alloc(12);
    if ('raw' in c) {
      h.writeUInt16LE(0xcac1, 0);
      h.writeUInt32LE(c.raw.length / blockSize, 4);
      h.writeUInt32LE(12 + c.raw.length, 8);
      parts.push(h, c.raw);
    } else {
      h.writeUInt16LE(0xcac2, 0);
      h.writeUInt32LE(c.blocks, 4);
      h.writeUInt32LE(16, 8);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(c.fill, 0);
      parts.push(h, v);
    }
  }
  const used = chunks.reduce((n, c) => n + ('raw' in c ? c.raw.length / blockSize : c.blocks), 0);
  if (used < totalBlocks) {
    const h = Buffer.alloc(12);
    h.writeUInt16LE(0xcac3, 0);
    h.writeUInt32LE(totalBlocks - used, 4);
    h.writeUInt32LE(12, 8);
    parts.push(h);
  }
  const header = Buffer.alloc(28);
  header.writeUInt32LE(0xed26ff3a, 0);
  header.writeUInt16LE(1, 4);
  header.writeUInt16LE(0, 6);
  header.writeUInt16LE(28, 8);
  header.writeUInt16LE(12, 10);
  header.writeUInt32LE(blockSize, 12);
  header.writeUInt32LE(totalBlocks, 16);
  header.writeUInt32LE(chunks.length + (used < totalBlocks ? 1 : 0), 20);
  return Buffer.concat([header, ...parts]);
}

