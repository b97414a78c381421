// The real CLI (node bin/miflash.js): `edl plan` on the corpus XML, and
// `edl emulate` + `edl flash -s tcp:…` end to end (needs `npx tsc -p .` first).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RAPHAELIN_PATCH, RAPHAELIN_RAWPROGRAM, SMARTISAN_RAWPROGRAM, makeRaphaelinRom } from './helpers.js';
import { cliFixtures, commandsIn, readAt, run } from './cli-helpers.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const { temp, emulator } = cliFixtures(cleanups);

describe('miflash edl plan', () => {
  it('lists every program with a file of the raphaelin XML, in order, with LUN and start sector', () => {
    const r = run(['edl', 'plan', RAPHAELIN_RAWPROGRAM, RAPHAELIN_PATCH, '--json']);
    expect(r.status).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.programs.map((p: { label: string; file: string; lun: number; startSector: string }) => [p.label, p.file, p.lun, p.startSector])).toEqual([
      ['switch', 'dummy.img', 0, '6'],
      ['misc', 'misc.img', 0, '1024'],
      ['vm-data', 'dummy.img', 0, '2048'],
      ['logfs', 'logfs_ufs_8mb.bin', 0, '4096'],
      ['metadata', 'metadata.img', 0, '20480'],
      ['recovery', 'recovery.img', 0, '163840'],
      ['cache', 'cache.img', 0, '180224'],
      ['cust', 'cust.img', 0, '245760'],
      ['userdata', 'userdata.img', 0, '507904'],
      ['PrimaryGPT', 'gpt_main0.bin', 0, '0'],
      ['BackupGPT', 'gpt_backup0.bin', 0, 'NUM_DISK_SECTORS-5.'],
    ]);
    expect(plan.programs.every((p: { sectorSize: number }) => p.sectorSize === 4096)).toBe(true);
    expect(plan.programs.filter((p: { sparse: boolean }) => p.sparse).map((p: { label: string }) => p.label)).toEqual(['metadata', 'cache', 'cust', 'userdata']);
    expect(plan.programs[1]).toMatchObject({ sectors: 1024, missing: true });
    // Only the 13 DISK patches, in file order; the first and the last.
    expect(plan.patches).toHaveLength(13);
    expect(plan.patches[0]).toMatchObject({ lun: 0, startSector: '2', byteOffset: 3880, sizeInBytes: 8, value: 'NUM_DISK_SECTORS-6.' });
    expect(plan.patches[12]).toMatchObject({ startSector: 'NUM_DISK_SECTORS-1.', byteOffset: 16, value: 'CRC32(NUM_DISK_SECTORS-1.,92)' });
    expect(plan.skipped).toHaveLength(22);
  });

  it('reads the smartisan eMMC rawprogram_unsparse.xml (512-byte sectors)', () => {
    const r = run(['edl', 'plan', SMARTISAN_RAWPROGRAM, '--json']);
    expect(r.status).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.programs.map((p: { label: string; startSector: string; sectorSize: number }) => [p.label, p.startSector, p.sectorSize])).toEqual([
      ['sbl1', '52', 512],
      ['aboot', '393216', 512],
      ['recovery', '528384', 512],
    ]);
    expect(plan.memory).toBe('emmc');
  });

  it('malformed XML and expressions outside the grammar: exit 2 naming file and line', () => {
    const dir = temp();
    const bad = path.join(dir, 'rawprogram0.xml');
    writeFileSync(bad, '<?xml version="1.0" ?>\n<data>\n  <program SECTOR_SIZE_IN_BYTES="4096" filename="a.img" label="a" num_partition_sectors="1" physical_partition_number="0" start_sector="1"\n</data>\n');
    let r = run(['edl', 'plan', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/rawprogram0\.xml:\d+: malformed XML/);
    writeFileSync(bad, '<data>\n<program SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="a.img" label="a" num_partition_sectors="1" physical_partition_number="0" start_sector="process.exit(1)"/>\n</data>\n');
    r = run(['edl', 'plan', bad, '--json']);
    expect(r.status).toBe(2);
    const e = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(e).toMatchObject({ event: 'error', exitCode: 2 });
    expect(e.message).toMatch(/rawprogram0\.xml:2: <program label="a">: attribute start_sector="process.exit\(1\)"/);
  });
});

describe('miflash edl emulate + edl flash over TCP', () => {
  it('flashes the synthetic raphaelin ROM: bytes on lun0.img, patches applied, reset', async () => {
    const emu = await emulator([]);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    const r = run(['edl', 'flash', rom.root, '-s', emu.address, '--yes', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(done).toMatchObject({ event: 'done', sahara: 'uploaded', patches: 13, reset: true });
    const lun0 = path.join(emu.store, 'lun0.img');
    expect(readAt(lun0, 1024 * 4096, 3 * 4096).equals(rom.expected.get('misc.img')!)).toBe(true);
    expect(readAt(lun0, 163840 * 4096, 8292).equals(rom.expected.get('recovery.img')!)).toBe(true);
    const meta = rom.expected.get('metadata.img')!;
    expect(readAt(lun0, 20480 * 4096, meta.length).equals(meta)).toBe(true);
    const N = 67_108_864; // the default LUN 0: 256 GiB of 4096-byte sectors
    expect(readAt(lun0, 4096 + 32, 8).readBigUInt64LE(0)).toBe(BigInt(N - 1));
    const cmds = commandsIn(emu.log);
    expect(cmds[0]).toBe('configure');
    expect(cmds.at(-1)).toBe('power');
    expect(readFileSync(emu.log, 'utf8')).toMatch(/disconnect: power reset/);
  });

  it('auth-required device: exit 6, the authorised-account message, nothing sent after configure', async () => {
    const emu = await emulator(['--auth-required']);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    const r = run(['edl', 'flash', rom.root, '-s', emu.address, '--yes']);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/authori[sz]ed/i);
    expect(r.stderr).toMatch(/will not bypass/);
    await new Promise((res) => setTimeout(res, 100));
    expect(new Set(commandsIn(emu.log))).toEqual(new Set(['configure'])); // configure only (retried under load), never sig
  });

  it('faults: NAK on patch -> exit 4; stall on program -> exit 5 within --timeout', async () => {
    const nak = await emulator(['--nak-on', 'patch']);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    let r = run(['edl', 'flash', rom.root, '-s', nak.address, '--yes']);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/<patch>.*NAK.*injected failure on <patch>/);
    const stall = await emulator(['--stall-on', 'program']);
    const t0 = Date.now();
    r = run(['edl', 'flash', rom.root, '-s', stall.address, '--yes', '--timeout', '400']);
    expect(r.status).toBe(5);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(r.stderr).toMatch(/timed out after 400 ms/);
  });

  it('edl info: chip identity (Sahara command mode) and storage of every LUN, JSON', async () => {
    const emu = await emulator([]);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    const r = run(['edl', 'info', '-s', emu.address, '--rom', rom.root, '--json']);
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(info.event).toBe('info');
    expect(info.chip).toMatchObject({ serial: 0xc51f7828, oemId: 0x72, hwid: '000e60e100720000' });
    expect(info.luns.map((l: { lun: number; totalBlocks: number; blockSize: number }) => [l.lun, l.totalBlocks, l.blockSize])).toEqual([
      [0, 67108864, 4096],
      [1, 16384, 4096],
    ]);
    // configure may be repeated while the programmer starts (qdl: 100 ms attempts for up to 5 s); nothing else may be.
    expect(commandsIn(emu.log).filter((c, i, all) => !(c === 'configure' && all[i - 1] === 'configure'))).toEqual(['configure', 'getstorageinfo', 'getstorageinfo']);
    // No reset: the programmer still runs; the next session skips Sahara and flashes.
    const f = run(['edl', 'flash', rom.root, '-s', emu.address, '--yes', '--json']);
    expect(f.status).toBe(0);
    expect(JSON.parse(f.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'done', sahara: 'firehose-running' });
    expect(readAt(path.join(emu.store, 'lun0.img'), 1024 * 4096, 3 * 4096).equals(rom.expected.get('misc.img')!)).toBe(true);
  });

  it('asks for confirmation: no answer -> exit 130 and nothing sent; missing programmer -> exit 2 before connecting', async () => {
    const emu = await emulator([]);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    let r = run(['edl', 'flash', rom.root, '-s', emu.address], { input: '' });
    expect(r.status).toBe(130);
    expect(commandsIn(emu.log)).toEqual([]);
    expect(readFileSync(emu.log, 'utf8')).not.toMatch(/connect/);
    const bare = makeRaphaelinRom(path.join(temp(), 'bare'));
    spawnSync('rm', [bare.programmer]);
    expect(existsSync(bare.programmer)).toBe(false);
    r = run(['edl', 'flash', bare.root, '-s', emu.address, '--yes']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no Firehose programmer/);
    expect(readFileSync(emu.log, 'utf8')).not.toMatch(/connect/);
  });
});
