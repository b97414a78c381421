// EDL device operations in process, against the emulated device: LUN sizes,
// GPTs written by a ROM flash (ptool-style gpt files + the vendor's patch0.xml),
// label / range resolution, the erase guard, reads streamed to files, dry runs.
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readToFile } from '../../src/edl/backup.js';
import { EdlInputError, FirehoseNakError } from '../../src/edl/errors.js';
import { flashEdl, openEdlSession, type EdlSession } from '../../src/edl/flash.js';
import { buildGpt } from '../../src/edl/gpt.js';
import { discoverLuns, findPartition, readLunGpt, type LunInfo } from '../../src/edl/luns.js';
import { loadSaharaImages } from '../../src/edl/programmer.js';
import { buildEdlPlan } from '../../src/edl/rom-plan.js';
import { eraseRefusals, resolveTarget } from '../../src/edl/target.js';
import { FileDisk, MemoryDisk } from '../../src/emulator/edl/disk.js';
import type { EdlEmulatorOptions } from '../../src/emulator/edl/device.js';
import { readSparseFile, rawToSparse, sparseToRaw } from '../../src/sparse/index.js';
import { ExitCode } from '../../src/errors.js';
import { FAST, RAPHAELIN_RAWPROGRAM, makeRaphaelinRom, startInProcessDevice, tempDir, type InProcessDevice } from './helpers.js';
import { parseEdlXml } from '../../src/edl/rawprogram-xml.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function temp(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

const SS = 4096;
/** LUN 0 of a 256 GB UFS phone. */
const N = 67_108_864;

/** A device whose programmer already runs (as after a previous miflash command), on existing disks. */
async function session(disks: MemoryDisk[], opts: EdlEmulatorOptions = {}): Promise<{ dev: InProcessDevice; s: EdlSession; luns: LunInfo[] }> {
  const dev = startInProcessDevice({ disks, startInFirehose: true, ...opts });
  const s = await openEdlSession(dev.host, new Map(), 'ufs', { timeouts: FAST, helloTimeoutMs: 50 });
  const luns = await discoverLuns(s.firehose, 'ufs', await s.firehose.probeSectorSize([4096, 512]));
  return { dev, s, luns };
}

/** Flash the synthetic raphaelin ROM (real GPT files) onto LUN 0 of `disks`. */
async function flashRaphaelin(disks: MemoryDisk[]) {
  const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
  const plan = await buildEdlPlan([rom.root], { requireFiles: true });
  const dev = startInProcessDevice({ disks });
  await flashEdl(dev.host, plan, await loadSaharaImages(plan.programmer!), { timeouts: FAST });
  await dev.done;
  return rom;
}

describe('a ROM flash leaves a valid GPT (ptool-style gpt files fixed up by the vendor patch0.xml)', () => {
  it('both copies valid on a 256 GiB LUN; partitions as in rawprogram0.xml; userdata grown to N-6', async () => {
    const disks = [new MemoryDisk(SS, N), new MemoryDisk(SS, 16384)];
    await flashRaphaelin(disks);
    const { s, luns } = await session(disks);
    expect(luns.map((l) => [l.lun, l.sectors])).toEqual([
      [0, N],
      [1, 16384],
    ]);
    const gpt = await readLunGpt(s.firehose, luns[0]!);
    expect(gpt.problems).toEqual([]);
    expect(gpt.status).toBe('ok');
    expect(gpt.primary.header).toMatchObject({ alternateLba: N - 1, lastUsableLba: N - 6, firstUsableLba: 6 });
    expect(gpt.backup.header).toMatchObject({ myLba: N - 1, entriesLba: N - 5 });
    const xml = parseEdlXml(readFileSync(RAPHAELIN_RAWPROGRAM, 'utf8'), 'x').entries.filter((e) => e.kind === 'program' && !/GPT$/.test(e.label));
    expect(gpt.partitions.map((p) => [p.name, p.firstLba])).toEqual(xml.map((e) => [e.label, Number(e.startSector)]));
    expect(gpt.partitions.at(-1)).toMatchObject({ name: 'userdata', firstLba: 507904, lastLba: N - 6 });
    // LUN 1 was never written: no table.
    expect((await readLunGpt(s.firehose, luns[1]!)).status).toBe('none');
  });

  it('the flash checks every range against the LUN sizes first: a layout past the end writes nothing', async () => {
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'), { rawprogram: (x) => x.replace('start_sector="507904"', 'start_sector="3145728"') });
    const plan = await buildEdlPlan([rom.root], { requireFiles: true });
    const dev = startInProcessDevice({ sectors: 520_000 });
    const err = await flashEdl(dev.host, plan, await loadSaharaImages(plan.programmer!), { timeouts: FAST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdlInputError);
    expect((err as EdlInputError).exitCode).toBe(ExitCode.BAD_INPUT);
    expect((err as Error).message).toMatch(/rawprogram0\.xml:\d+: <program label="userdata" filename="userdata.img">: sectors 3145728\.\.3145728 are beyond the end of LUN 0 \(520000 sectors\)/);
    expect(dev.device.commands.map((c) => c.tag)).not.toContain('program');
  });

  it('--skip-write: Sahara, configure, sector size and LUN sizes checked; no program, patch or power', async () => {
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    const plan = await buildEdlPlan([rom.root], { requireFiles: true });
    const dev = startInProcessDevice({ sectors: N });
    const report = await flashEdl(dev.host, plan, await loadSaharaImages(plan.programmer!), { timeouts: FAST, skipWrite: true });
    expect(report).toMatchObject({ dryRun: true, reset: false, sahara: 'uploaded', programs: 11, patches: 13 });
    expect(report.bytes).toBeGreaterThan(0);
    const tags = new Set(dev.device.commands.map((c) => c.tag));
    expect([...tags].sort()).toEqual(['configure', 'getstorageinfo', 'read']);
    expect(dev.disks[0]!.read(0, 8 * SS).equals(Buffer.alloc(8 * SS))).toBe(true);
  });
});

describe('labels and ranges', () => {
  /** Two LUNs that both have "misc". */
  function twoLuns(): MemoryDisk[] {
    const disks = [new MemoryDisk(SS, 4096), new MemoryDisk(SS, 4096)];
    const layouts = [
      [{ name: 'misc', firstLba: 6, sectors: 10 }, { name: 'persist', firstLba: 16, sectors: 10 }, { name: 'userdata', firstLba: 26, sectors: 0 }],
      [{ name: 'misc', firstLba: 6, sectors: 20 }, { name: 'boot_a', firstLba: 26, sectors: 10 }, { name: 'boot_b', firstLba: 36, sectors: 10 }],
    ];
    disks.forEach((d, i) => {
      const g = buildGpt({ sectorSize: SS, diskSectors: 4096, partitions: layouts[i]! });
      d.write(0, g.primary);
      d.write(4096 * SS - g.backup.length, g.backup);
    });
    return disks;
  }

  it('a label on several LUNs needs --lun; unknown labels name similar ones', async () => {
    const { s, luns } = await session(twoLuns());
    await expect(resolveTarget(s.firehose, luns, { kind: 'label', label: 'misc' })).rejects.toThrow(/partition "misc" exists on LUNs 0, 1: pass --lun N/);
    const { target } = await resolveTarget(s.firehose, luns, { kind: 'label', label: 'misc', lun: 1 });
    expect(target).toMatchObject({ lun: 1, start: 6, sectors: 20, label: 'misc' });
    const err = await resolveTarget(s.firehose, luns, { kind: 'label', label: 'boot' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('no partition "boot" on any LUN');
    expect((err as EdlInputError).hint).toMatch(/similar names: boot_a, boot_b/);
  });

  it('ranges: NUM_DISK_SECTORS expressions evaluated with the LUN size; past the end refused', async () => {
    const { s, luns } = await session(twoLuns());
    const { target } = await resolveTarget(s.firehose, luns, { kind: 'range', lun: 1, start: 'NUM_DISK_SECTORS-5.', sectors: 5 });
    expect(target).toMatchObject({ lun: 1, start: 4091, sectors: 5 });
    await expect(resolveTarget(s.firehose, luns, { kind: 'range', lun: 0, start: '4090', sectors: 7 })).rejects.toThrow(/sectors 4090\.\.4096 are beyond the end of LUN 0 \(4096 sectors\)/);
    await expect(resolveTarget(s.firehose, luns, { kind: 'range', lun: 7, start: '0', sectors: 1 })).rejects.toThrow(/--lun 7: the device has LUNs 0, 1/);
  });

  it('the erase guard: identity partitions, the GPT itself, and ranges on a LUN without a table need --force', async () => {
    const disks = [...twoLuns(), new MemoryDisk(SS, 4096)];
    const { s, luns } = await session(disks);
    const guard = async (spec: Parameters<typeof resolveTarget>[2]): Promise<string[]> => eraseRefusals((await resolveTarget(s.firehose, luns, spec, { withGpt: true })).target);
    expect(await guard({ kind: 'label', label: 'boot_a' })).toEqual([]);
    expect((await guard({ kind: 'label', label: 'persist' })).join()).toMatch(/"persist" holds identity \/ calibration data/);
    expect((await guard({ kind: 'range', lun: 0, start: '20', sectors: 2 })).join()).toMatch(/the range covers "persist"/);
    expect((await guard({ kind: 'range', lun: 0, start: '0', sectors: 6 })).join()).toMatch(/reaches the partition table itself \(usable sectors are 6\.\.4090\)/);
    expect((await guard({ kind: 'range', lun: 0, start: 'NUM_DISK_SECTORS-1', sectors: 1 })).join()).toMatch(/reaches the partition table/);
    expect(await guard({ kind: 'range', lun: 0, start: '100', sectors: 50 })).toEqual([]);
    expect((await guard({ kind: 'range', lun: 2, start: '100', sectors: 1 })).join()).toMatch(/LUN 2 has no valid GPT/);
  });

  it('a programmer without getstorageinfo: sizes unknown, the backup found where the primary points', async () => {
    const { s, luns } = await session(twoLuns(), { faults: { nakTag: 'getstorageinfo' } });
    expect(luns).toEqual([{ lun: 0, sectorSize: SS }]);
    const gpt = await readLunGpt(s.firehose, luns[0]!);
    expect(gpt.status).toBe('ok');
    expect(gpt.partitions.map((p) => p.name)).toEqual(['misc', 'persist', 'userdata']);
    expect(gpt.notes.join()).toMatch(/LUN 0 size unknown \(no getstorageinfo\)/);
    await expect(resolveTarget(s.firehose, luns, { kind: 'range', lun: 0, start: 'NUM_DISK_SECTORS-5', sectors: 1 })).rejects.toThrow(/size of LUN 0 is unknown/);
  });

  it('findPartition on broken tables says so', () => {
    const g = { lun: 0, sectorSize: SS, status: 'corrupt' as const, partitions: [], problems: [], notes: [], primary: {} as never, backup: {} as never };
    expect(() => findPartition([g], 'misc')).toThrow(expect.objectContaining({ hint: expect.stringMatching(/unreadable tables: LUN 0 \(GPT corrupt\)/) }));
  });
});

describe('edl read to a file', () => {
  async function flashed() {
    const disks = [new MemoryDisk(SS, N)];
    const rom = await flashRaphaelin(disks);
    return { rom, ...(await session(disks)) };
  }

  it('raw: the partition bytes, zero blocks as holes; sparse: what img2simg-identical rawToSparse makes of them', async () => {
    const { rom, s, luns } = await flashed();
    const dir = temp();
    const { target } = await resolveTarget(s.firehose, luns, { kind: 'label', label: 'metadata' });
    expect(target).toMatchObject({ lun: 0, start: 20480, sectors: 4096 });
    const progress: number[] = [];
    const raw = await readToFile(s.firehose, target, path.join(dir, 'metadata.img'), { onProgress: (b) => progress.push(b) });
    const data = readFileSync(path.join(dir, 'metadata.img'));
    const meta = rom.expected.get('metadata.img')!;
    expect(data.length).toBe(4096 * SS);
    expect(data.subarray(0, meta.length).equals(meta)).toBe(true);
    expect(data.subarray(meta.length).equals(Buffer.alloc(data.length - meta.length))).toBe(true);
    expect(raw).toMatchObject({ format: 'raw', bytes: 16 * 1024 * 1024, outputSize: 16 * 1024 * 1024 });
    // Of the 8 expanded metadata blocks 5 hold data (3 were DONT_CARE); the rest of the partition is zero.
    expect(raw.holes).toBe(data.length - 5 * SS);
    expect(statSync(path.join(dir, 'metadata.img')).blocks * 512).toBeLessThan(1024 * 1024);
    expect(progress.at(-1)).toBe(16 * 1024 * 1024);

    const sp = await readToFile(s.firehose, target, path.join(dir, 'metadata.simg'), { sparse: true });
    await rawToSparse(path.join(dir, 'metadata.img'), path.join(dir, 'reference.simg'));
    expect(readFileSync(path.join(dir, 'metadata.simg')).equals(readFileSync(path.join(dir, 'reference.simg')))).toBe(true);
    expect(sp).toMatchObject({ format: 'sparse', bytes: 16 * 1024 * 1024, outputSize: statSync(path.join(dir, 'metadata.simg')).size });
    expect((await readSparseFile(path.join(dir, 'metadata.simg'))).header.totalBlocks).toBe(4096);
    await sparseToRaw(path.join(dir, 'metadata.simg'), path.join(dir, 'back.img'));
    expect(readFileSync(path.join(dir, 'back.img')).equals(data)).toBe(true);
  });

  it('a read the device fails leaves neither a file nor a partial one; an existing backup is untouched', async () => {
    const disks = [new MemoryDisk(SS, 4096)];
    disks[0]!.write(10 * SS, Buffer.alloc(SS, 7));
    const { s, luns } = await session(disks, { faults: { badSector: 10 } });
    const dir = temp();
    const out = path.join(dir, 'backup.img');
    writeFileSync(out, 'previous backup');
    const { target } = await resolveTarget(s.firehose, luns, { kind: 'range', lun: 0, start: '8', sectors: 4 });
    const err = await readToFile(s.firehose, target, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirehoseNakError);
    expect((err as Error).message).toMatch(/Failed to read sector 10 \(injected bad sector\)/);
    expect(readFileSync(out, 'utf8')).toBe('previous backup');
    expect(readdirSync(dir)).toEqual(['backup.img']);
  });

  it('data split in odd pieces (payload 3000 bytes from target) still lands block-aligned', async () => {
    const disks = [new MemoryDisk(512, 4096)];
    const pattern = Buffer.alloc(512 * 20);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 0xff;
    pattern.fill(0, 4096, 8192); // one zero 4 KiB block in the middle
    disks[0]!.write(100 * 512, pattern);
    const dev = startInProcessDevice({ disks, startInFirehose: true, memory: 'emmc', maxPayloadFromTarget: 3000 });
    const s = await openEdlSession(dev.host, new Map(), 'emmc', { timeouts: FAST, helloTimeoutMs: 50 });
    const luns = await discoverLuns(s.firehose, 'emmc', await s.firehose.probeSectorSize([512]));
    const { target } = await resolveTarget(s.firehose, luns, { kind: 'range', lun: 0, start: '100', sectors: 20 });
    const dir = temp();
    const r = await readToFile(s.firehose, target, path.join(dir, 'x.img'));
    expect(readFileSync(path.join(dir, 'x.img')).equals(pattern)).toBe(true);
    expect(r.holes).toBe(4096);
  });

  it('refuses to write over a directory', async () => {
    const { s, luns } = await session([new MemoryDisk(SS, 64)]);
    const { target } = await resolveTarget(s.firehose, luns, { kind: 'range', lun: 0, start: '0', sectors: 1 });
    const dir = temp();
    await expect(readToFile(s.firehose, target, dir)).rejects.toThrow(/not a regular file/);
    expect(existsSync(path.join(path.dirname(dir), `.${path.basename(dir)}.miflash-partial`))).toBe(false);
  });
});

describe('emulated disks stay sparse', () => {
  it('FileDisk: zeroing a range deallocates it, keeps what surrounds it, and never allocates the LUN', () => {
    const file = path.join(temp(), 'lun0.img');
    const disk = new FileDisk(file, SS, N);
    cleanups.push(() => disk.close());
    const blocks = (): number => statSync(file).blocks * 512;
    expect(statSync(file).size).toBe(N * SS);
    expect(blocks()).toBeLessThan(1024 * 1024);
    const data = Buffer.alloc(64 * SS, 0x5a);
    disk.write(1000 * SS, data); // middle
    disk.write((N - 5) * SS, Buffer.alloc(5 * SS, 0xa5)); // backup GPT area
    const before = blocks();
    disk.zero(1010 * SS, 20 * SS); // a middle range (the tail is huge)
    expect(disk.read(1000 * SS, 64 * SS).equals(Buffer.concat([Buffer.alloc(10 * SS, 0x5a), Buffer.alloc(20 * SS), Buffer.alloc(34 * SS, 0x5a)]))).toBe(true);
    disk.zero(2000 * SS, (N - 5 - 2000) * SS); // up to the backup GPT (the userdata case): the tail survives
    expect(disk.read((N - 5) * SS, 5 * SS).equals(Buffer.alloc(5 * SS, 0xa5))).toBe(true);
    expect(disk.read(1000 * SS, 10 * SS).equals(Buffer.alloc(10 * SS, 0x5a))).toBe(true);
    expect(blocks()).toBeLessThanOrEqual(before);
    expect(blocks()).toBeLessThan(4 * 1024 * 1024);
  });
});
