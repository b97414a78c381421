// The real CLI against `miflash edl emulate`: storage, gpt, read, erase, reset,
// flash --skip-write; default LUN sizes of a real phone with files that stay
// sparse (issue 9); auth-locked devices stop every command with exit 6.
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rawToSparse } from '../../src/sparse/index.js';
import { bytes, makeElf, makeRaphaelinRom } from './helpers.js';
import { cliFixtures, commandsIn, readAt, run, runAsync } from './cli-helpers.js';
import { closeSync, openSync, writeSync } from 'node:fs';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const { temp, emulator } = cliFixtures(cleanups);

const SS = 4096;
const GiB = 1024 ** 3;
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);

function writeAt(file: string, offset: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

function programmer(): string {
  const p = path.join(temp(), 'prog_ufs_firehose_test.elf');
  writeFileSync(p, makeElf());
  return p;
}

/** Bytes the files of DIR really occupy on disk. */
function allocated(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).blocks * 512, 0);
}

describe('default LUN sizes (issue 9)', () => {
  it('a real UFS layout with userdata past sector 3 000 000 flashes with the defaults; the LUN files stay sparse', async () => {
    const emu = await emulator(['--luns', '6']);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'), { rawprogram: (x) => x.replace('start_sector="507904"', 'start_sector="3145728"') });
    const f = run(['edl', 'flash', rom.root, '-s', emu.address, '--yes', '--json']);
    expect(f.stderr).toBe('');
    expect(f.status).toBe(0);
    expect(lastJson(f.stdout)).toMatchObject({ event: 'done', dryRun: false, reset: true });
    const lun0 = path.join(emu.store, 'lun0.img');
    expect(statSync(lun0).size).toBe(256 * GiB);
    expect(statSync(path.join(emu.store, 'lun4.img')).size).toBe(16 * GiB);
    const userdata = rom.expected.get('userdata.img')!;
    expect(readAt(lun0, 3145728 * SS, SS).equals(userdata.subarray(0, SS))).toBe(true);
    expect(allocated(emu.store)).toBeLessThan(32 * 1024 * 1024);

    // The GPT the flash wrote (ptool-style files + the vendor patches) is valid for the 256 GiB LUN.
    const g = run(['edl', 'gpt', '-s', emu.address, '--rom', rom.root, '--lun', '0', '--json']);
    expect(g.status).toBe(0);
    const lun = lastJson(g.stdout).luns[0];
    expect(lun).toMatchObject({ lun: 0, sectors: 67108864, sectorSize: SS, status: 'ok', problems: [] });
    expect(lun.partitions.at(-1)).toMatchObject({ name: 'userdata', firstLba: 3145728, lastLba: 67108864 - 6 });
    const t = run(['edl', 'gpt', '-s', emu.address]);
    expect(t.stdout).toMatch(/^LUN 0: 67108864 sectors x 4096 bytes \(256\.0 GiB\), GPT ok \(primary and backup valid, identical\), 31 partitions$/m);
    expect(t.stdout).toMatch(/^\s+31\s+userdata\s+3145728\s+67108858\s+63963131\s+244\.0 GiB\s/m);
    expect(t.stdout).toMatch(/^LUN 1: 16384 sectors x 4096 bytes \(64\.0 MiB\), no GPT$/m);

    const s = run(['edl', 'storage', '-s', emu.address, '--json']);
    expect(s.status).toBe(0);
    expect(lastJson(s.stdout).luns.map((l: { lun: number; totalBlocks: number; bytes: number }) => [l.lun, l.totalBlocks, l.bytes])).toEqual([
      [0, 67108864, 256 * GiB],
      [1, 16384, 64 * 1024 * 1024],
      [2, 16384, 64 * 1024 * 1024],
      [3, 16384, 64 * 1024 * 1024],
      [4, 4194304, 16 * GiB],
      [5, 262144, GiB],
    ]);
    expect(run(['edl', 'storage', '-s', emu.address]).stdout.split('\n')[1]).toMatch(/^\s+0\s+67108864\s+4096\s+256\.0 GiB\s+UFS\s+MIFLASH-EMU$/);
  });

  it('--lun-sectors still sets sizes (one for all, or per LUN); a layout past the end is refused before any write', async () => {
    const emu = await emulator(['--lun-sectors', '520000,4096']);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'), { rawprogram: (x) => x.replace('start_sector="507904"', 'start_sector="3145728"') });
    const r = run(['edl', 'flash', rom.root, '-s', emu.address, '--yes']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/<program label="userdata" filename="userdata.img">: sectors 3145728\.\.3145728 are beyond the end of LUN 0 \(520000 sectors\)/);
    expect(commandsIn(emu.log)).not.toContain('program');
    expect(statSync(path.join(emu.store, 'lun1.img')).size).toBe(4096 * SS);
  });
});

describe('edl read / erase / reset on the emulated device (--gpt layout)', () => {
  it('read by label and by range, raw with holes or --sparse; bad arguments exit 2 before connecting', async () => {
    const emu = await emulator(['--gpt']);
    const prog = programmer();
    const lun0 = path.join(emu.store, 'lun0.img');
    const data = bytes(3 * SS, 42);
    writeAt(lun0, 520 * SS, data); // inside misc (sectors 512..767)
    const dir = temp();
    const out = path.join(dir, 'misc.img');
    let r = run(['edl', 'read', 'misc', out, '-s', emu.address, '--programmer', prog, '--json']);
    expect(r.status).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ event: 'read', label: 'misc', lun: 0, start: 512, sectors: 256, format: 'raw', bytes: 256 * SS, holes: 253 * SS });
    const got = readFileSync(out);
    expect(got.equals(Buffer.concat([Buffer.alloc(8 * SS), data, Buffer.alloc(245 * SS)]))).toBe(true);
    expect(statSync(out).blocks * 512).toBeLessThanOrEqual(4 * SS);

    r = run(['edl', 'read', 'misc', path.join(dir, 'misc.simg'), '--sparse', '-s', emu.address]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/read 1\.0 MiB into .*misc\.simg \([\d.]+ KiB, Android sparse image, 3 chunks\)/);
    await rawToSparse(out, path.join(dir, 'ref.simg'));
    expect(readFileSync(path.join(dir, 'misc.simg')).equals(readFileSync(path.join(dir, 'ref.simg')))).toBe(true);

    r = run(['edl', 'read', '--lun', '0', '--start', 'NUM_DISK_SECTORS-5', '--sectors', '5', path.join(dir, 'backup-gpt.bin'), '-s', emu.address]);
    expect(r.status).toBe(0);
    expect(readFileSync(path.join(dir, 'backup-gpt.bin')).equals(readAt(lun0, (67108864 - 5) * SS, 5 * SS))).toBe(true);
    expect(readFileSync(path.join(dir, 'backup-gpt.bin')).subarray(4 * SS, 4 * SS + 8).toString()).toBe('EFI PART');

    r = run(['edl', 'read', 'xbl', path.join(dir, 'xbl.img'), '-s', emu.address]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no partition "xbl" on any LUN\nhint: similar names: xbl_a, xbl_config_a/);
    const before = readFileSync(emu.log, 'utf8');
    for (const args of [['read', 'misc'], ['read', '--lun', '0', '--start', '1', 'x.img'], ['read', 'misc', 'x.img', '--start', '1', '--sectors', '1'], ['erase']]) {
      r = run(['edl', ...args, '-s', emu.address]);
      expect(r.status, args.join(' ')).toBe(2);
    }
    expect(readFileSync(emu.log, 'utf8')).toBe(before);
  });

  it('erase asks first, --skip-write erases nothing, identity partitions and the GPT need --force', async () => {
    const emu = await emulator(['--gpt']);
    const prog = programmer();
    const lun0 = path.join(emu.store, 'lun0.img');
    writeAt(lun0, 600 * SS, Buffer.alloc(SS, 0x77)); // misc
    writeAt(lun0, 2000 * SS, Buffer.alloc(SS, 0x66)); // persist (1536..9727)
    const erases = (): number => commandsIn(emu.log).filter((c) => c === 'erase').length;

    let r = run(['edl', 'erase', 'misc', '-s', emu.address, '--programmer', prog], { input: '' });
    expect(r.status).toBe(130);
    expect(r.stderr).toMatch(/Erase "misc" \(LUN 0, sectors 512\.\.767, 256 x 4096 bytes\) \(1\.0 MiB\)\? This cannot be undone/);
    r = run(['edl', 'erase', 'misc', '-s', emu.address, '--skip-write', '--json']);
    expect(r.status).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ event: 'erase', label: 'misc', dryRun: true });
    expect(erases()).toBe(0);
    expect(readAt(lun0, 600 * SS, SS).equals(Buffer.alloc(SS, 0x77))).toBe(true);

    r = run(['edl', 'erase', 'misc', '-s', emu.address], { input: 'y\n' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/erased "misc"/);
    expect(erases()).toBe(1);
    expect(readAt(lun0, 600 * SS, SS).equals(Buffer.alloc(SS))).toBe(true);

    r = run(['edl', 'erase', 'persist', '-s', emu.address, '--yes']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/refusing to erase "persist".*identity \/ calibration data/);
    r = run(['edl', 'erase', '--lun', '0', '--start', '0', '--sectors', '8', '-s', emu.address, '--yes']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/reaches the partition table itself/);
    expect(erases()).toBe(1);
    expect(readAt(lun0, 2000 * SS, SS).equals(Buffer.alloc(SS, 0x66))).toBe(true);

    r = run(['edl', 'erase', 'persist', '-s', emu.address, '--yes', '--force']);
    expect(r.status).toBe(0);
    expect(readAt(lun0, 2000 * SS, SS).equals(Buffer.alloc(SS))).toBe(true);
    // userdata (to the backup GPT): erased without touching the backup table, and the LUN stays sparse.
    r = run(['edl', 'erase', 'userdata', '-s', emu.address, '--yes']);
    expect(r.status).toBe(0);
    const g = lastJson(run(['edl', 'gpt', '-s', emu.address, '--lun', '0', '--json']).stdout).luns[0];
    expect(g.status).toBe('ok');
    expect(allocated(emu.store)).toBeLessThan(8 * 1024 * 1024);
  });

  it('reset: reset, off and edl send <power>; edl brings the device back in Sahara', async () => {
    const emu = await emulator(['--gpt']);
    const prog = programmer();
    let r = run(['edl', 'reset', 'edl', '-s', emu.address, '--programmer', prog, '--json']);
    expect(r.status).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ event: 'reset', mode: 'edl', value: 'reset_to_edl' });
    r = run(['edl', 'reset', 'off', '-s', emu.address, '--programmer', prog]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/Sahara: uploading/);
    expect(r.stderr).toMatch(/device powered off/);
    r = run(['edl', 'reset', '-s', emu.address, '--programmer', prog]);
    expect(r.status).toBe(0);
    const log = readFileSync(emu.log, 'utf8');
    expect(log.match(/^disconnect: power \S+$/gm)).toEqual(['disconnect: power reset_to_edl', 'disconnect: power off', 'disconnect: power reset']);
    // Power needs no storage: configure with SkipStorageInit=1.
    expect(log).toMatch(/command configure .*"SkipStorageInit":"1"/);
    expect(run(['edl', 'reset', 'sideways', '-s', emu.address]).status).toBe(2);
  });
});

describe('faults and refusals on the new commands', () => {
  it('auth-locked programmer: every command exits 6 with the authorised-account message and sends only configure', async () => {
    const emu = await emulator(['--auth-required']);
    const prog = programmer();
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    const dir = temp();
    const commands = [
      ['storage'],
      ['gpt'],
      ['read', 'misc', path.join(dir, 'misc.img')],
      ['read', '--lun', '0', '--start', '0', '--sectors', '1', path.join(dir, 'x.img')],
      ['erase', 'misc', '--yes'],
      ['erase', 'misc', '--skip-write'],
      ['reset'],
      ['info'],
    ];
    // Each invocation is its own connection (enumeration) of the device; they may overlap.
    const results = await Promise.all([...commands.map((c) => runAsync(['edl', ...c, '-s', emu.address, '--programmer', prog])), runAsync(['edl', 'flash', rom.root, '--skip-write', '-s', emu.address])]);
    results.forEach((r, i) => {
      expect(r.status, (commands[i] ?? ['flash --skip-write']).join(' ')).toBe(6);
      expect(r.stderr).toMatch(/authorised by Xiaomi \(authorised Mi account \/ service centre\)\. miflash does not and will not bypass that check/);
    });
    // Nothing but configure (retried when an answer is slow under load): no sig, no other command.
    const sent = commandsIn(emu.log);
    expect(new Set(sent)).toEqual(new Set(['configure']));
    expect(sent.length).toBeGreaterThanOrEqual(commands.length + 1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a bad sector fails the read (exit 4, no file); a stalled erase times out (exit 5); no getstorageinfo (exit 4)', async () => {
    const bad = await emulator(['--gpt', '--bad-sector', '600']);
    const prog = programmer();
    const dir = temp();
    let r = run(['edl', 'read', 'misc', path.join(dir, 'misc.img'), '-s', bad.address, '--programmer', prog]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/Failed to read sector 600 \(injected bad sector\)/);
    expect(readdirSync(dir)).toEqual([]);
    r = run(['edl', 'read', 'keystore', path.join(dir, 'keystore.img'), '-s', bad.address]);
    expect(r.status).toBe(0);

    const stall = await emulator(['--gpt', '--stall-on', 'erase']);
    const t0 = Date.now();
    r = run(['edl', 'erase', 'misc', '--yes', '-s', stall.address, '--programmer', prog, '--timeout', '400']);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/<erase> misc .*timed out after 400 ms/);
    expect(Date.now() - t0).toBeLessThan(10_000);

    const noinfo = await emulator(['--gpt', '--nak-on', 'getstorageinfo']);
    r = run(['edl', 'storage', '-s', noinfo.address, '--programmer', prog]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/<getstorageinfo> LUN 0 was refused \(NAK\); device said: "ERROR: injected failure on <getstorageinfo>"/);
    r = run(['edl', 'gpt', '-s', noinfo.address]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^LUN 0: size unknown, 4096-byte sectors, GPT ok/m);
    expect(r.stdout).toMatch(/note: LUN 0 size unknown/);
  });

  it('edl flash --skip-write: everything up to the writes, nothing written, no reset', async () => {
    const emu = await emulator([]);
    const rom = makeRaphaelinRom(path.join(temp(), 'rom'));
    const r = run(['edl', 'flash', rom.root, '--skip-write', '-s', emu.address, '--json']);
    expect(r.status).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ event: 'done', dryRun: true, reset: false, sahara: 'uploaded', patches: 13 });
    const cmds = new Set(commandsIn(emu.log));
    expect([...cmds].sort()).toEqual(['configure', 'getstorageinfo', 'read']);
    expect(readFileSync(emu.log, 'utf8')).not.toMatch(/disconnect/);
    expect(existsSync(path.join(emu.store, 'lun0.img'))).toBe(true);
    expect(readAt(path.join(emu.store, 'lun0.img'), 0, 8 * SS).equals(Buffer.alloc(8 * SS))).toBe(true);
    // --dry-run is the same switch; no confirmation is asked.
    expect(run(['edl', 'flash', rom.root, '--dry-run', '-s', emu.address], { input: '' }).status).toBe(0);
  });
});
