// `connect` / `disconnect` (AOSP v35; Debian's v29 client has neither): the
// network devices remembered in $HOME/.fastboot/devices (AOSP's file and
// format: sorted addresses, one per line), listed by `devices`, and used when
// no -s is given and no USB device is attached. Each test gets its own HOME.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { REPO_ROOT, tempDir } from '../helpers/emulator.js';

const tmp = tempDir('miflash-connect-');
afterAll(() => tmp.cleanup());
let n = 0;

function miflash(home: string, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { ANDROID_SERIAL: _a, FASTBOOT_DEVICE: _f, ...env } = process.env;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, HOME: home } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

function home(): { dir: string; file: string } {
  const dir = path.join(tmp.dir, `home-${++n}`);
  mkdirSync(dir, { recursive: true });
  return { dir, file: path.join(dir, '.fastboot', 'devices') };
}

async function emulator(serial: string) {
  return startFastbootEmulator('tcp:127.0.0.1:0', { store: null, serial, product: `prod-${serial}` });
}

describe('connect / disconnect', () => {
  it('connect checks the device answers, then stores the address in AOSP\'s file; devices lists it; a command without -s uses it', async () => {
    const h = home();
    const emu = await emulator('NET1');
    try {
      const c = await miflash(h.dir, ['connect', emu.address]);
      expect(c.code, c.stderr).toBe(0);
      expect(readFileSync(h.file, 'utf8')).toBe(`${emu.address}\n`);
      const d = await miflash(h.dir, ['devices']);
      expect(d.stdout).toContain(`${emu.address}\tfastboot\n`);
      const before = emu.log.length;
      const g = await miflash(h.dir, ['getvar', 'product']);
      expect(g.code, g.stderr).toBe(0);
      expect(g.stdout).toBe('product: prod-NET1\n');
      expect(emu.log.slice(before)).toEqual(['getvar:product']);
    } finally {
      await emu.close();
    }
    // The device is gone: listed as offline, and a command has no device.
    expect((await miflash(h.dir, ['devices'])).stdout).toMatch(/\toffline\n$/);
    const none = await miflash(h.dir, ['getvar', 'product']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('no fastboot device found');
  });

  it('several stored devices: sorted as a set, duplicates kept once; the last that answers is used (AOSP NetworkDeviceConnected)', async () => {
    const h = home();
    const a = await emulator('NETA');
    const b = await emulator('NETB');
    try {
      for (const addr of [b.address, a.address, b.address]) expect((await miflash(h.dir, ['connect', addr])).code).toBe(0);
      const sorted = [a.address, b.address].sort();
      expect(readFileSync(h.file, 'utf8')).toBe(sorted.map((x) => `${x}\n`).join(''));
      const last = sorted[1] === a.address ? 'NETA' : 'NETB';
      expect((await miflash(h.dir, ['getvar', 'serialno'])).stdout).toBe(`serialno: ${last}\n`);
      expect((await miflash(h.dir, ['disconnect', sorted[1]!])).code).toBe(0);
      expect(readFileSync(h.file, 'utf8')).toBe(`${sorted[0]}\n`);
      expect((await miflash(h.dir, ['disconnect'])).code).toBe(0);
      expect(existsSync(h.file)).toBe(false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refused: an address without tcp:/udp:, and a device that does not answer (nothing stored)', async () => {
    const h = home();
    const bare = await miflash(h.dir, ['connect', '127.0.0.1:5554']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("protocol prefix ('tcp:' or 'udp:') is missed: 127.0.0.1:5554");
    const dead = await miflash(h.dir, ['connect', 'tcp:127.0.0.1:1']);
    expect(dead.code).not.toBe(0);
    expect(existsSync(h.file)).toBe(false);
  });
});

describe('ROM flashes, update and flashall use the stored devices too, and print the conversation with -v', () => {
  it('update ZIP with no -s and no USB device: the `connect`ed device is flashed; -v prints each command and reply', async () => {
    const { makeDeflateZip } = await import('../plan/runner-google-rom.js');
    const { randomBytes } = await import('node:crypto');
    const { writeFileSync } = await import('node:fs');
    const zip = path.join(tmp.dir, `update-${++n}.zip`);
    writeFileSync(zip, makeDeflateZip([{ name: 'android-info.txt', data: '' }, { name: 'boot.img', data: randomBytes(4096) }, { name: 'system.img', data: randomBytes(8192) }]));
    const h = home();
    const emu = await emulator('NETU');
    try {
      expect((await miflash(h.dir, ['connect', emu.address])).code).toBe(0);
      const before = emu.log.length;
      const r = await miflash(h.dir, ['-v', 'update', '--skip-reboot', zip]);
      expect(r.code, r.stderr).toBe(0);
      const writes = emu.log.slice(before).filter((l) => !l.startsWith('getvar:'));
      expect(writes.filter((l) => !l.startsWith('download'))).toEqual(['flash:boot', 'flash:system']);
      expect(r.stderr).toContain('> flash:boot\n< OKAY');
      expect(r.stderr).toContain('> download:00001000\n< DATA00001000\n> (4096 bytes of data)\n< OKAY');
      // Without -v the conversation is not printed.
      const quiet = await miflash(h.dir, ['update', '--skip-reboot', zip]);
      expect(quiet.code, quiet.stderr).toBe(0);
      expect(quiet.stderr).not.toContain('> flash:boot');
    } finally {
      await emu.close();
    }
    // Nothing stored answers: the usual "no device" error.
    const none = await miflash(h.dir, ['update', '--skip-reboot', zip]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('no fastboot device found');
  });

  it('flash ROM with no -s and no USB device: the `connect`ed device runs the script; -v prints the conversation', async () => {
    const { writeFileSync } = await import('node:fs');
    const rom = path.join(tmp.dir, `rom-${++n}`);
    mkdirSync(path.join(rom, 'images'), { recursive: true });
    writeFileSync(path.join(rom, 'images', 'boot.img'), Buffer.alloc(4096, 7));
    writeFileSync(path.join(rom, 'flash_all.sh'), '#!/bin/sh\nfastboot $* flash boot `dirname $0`/images/boot.img\n');
    const h = home();
    const emu = await emulator('NETR');
    try {
      expect((await miflash(h.dir, ['connect', emu.address])).code).toBe(0);
      const before = emu.log.length;
      const r = await miflash(h.dir, ['-v', 'flash', rom, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(emu.log.slice(before).filter((l) => !l.startsWith('getvar:') && !l.startsWith('download'))).toEqual(['flash:boot']);
      expect(r.stderr).toContain('> flash:boot\n< OKAY');
    } finally {
      await emu.close();
    }
  });
});
