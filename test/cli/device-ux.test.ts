// Common mistakes at the terminal get a message that says what happened and
// what to do; `--help` shows examples that fit 80 columns; a real pty (via
// util-linux `script`) gets colour unless NO_COLOR is set, and `devices` with
// nothing attached explains itself there while keeping stdout empty.
// Spawns `node bin/miflash.js`: build first (npx tsc -p .).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCliEmulator } from '../helpers/emulator.js';
import { runMiflash } from '../helpers/fake-fastboot.js';
import { REPO_ROOT } from '../helpers/emulator.js';
import { needs, peerPath } from '../helpers/peers.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-device-ux-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const MIFLASH = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(REPO_ROOT, 'bin/miflash.js'))}`;

/** Environment of a person's terminal: no CI marker, no forced or disabled colour. */
function terminalEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { CI: _ci, FORCE_COLOR: _f, NO_COLOR: _n, ANDROID_SERIAL: _a, FASTBOOT_DEVICE: _d, ...base } = process.env;
  return { ...base, TERM: 'xterm-256color', ...extra };
}

/** Runs a shell command line on a pseudo-terminal; returns everything the terminal showed. */
async function onPty(commandLine: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; screen: string }> {
  const { spawn } = await import('node:child_process');
  // A pty made by `script` without a terminal of its own has no size: give it one, as a real terminal has.
  const child = spawn(peerPath('script'), ['-qec', `stty cols 100 rows 40; ${commandLine}`, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  child.stderr.on('data', (d: Buffer) => (screen += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

describe('mistakes', () => {
  it('a missing image names the file, says "no such file" and shows the usage', async () => {
    const r = await runMiflash(['-s', 'tcp:127.0.0.1:1', 'flash', 'boot', 'no-such-boot.img']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('miflash: error: cannot read image no-such-boot.img: no such file');
    expect(r.stderr).toMatch(/^hint: usage: miflash flash PARTITION IMAGE \(the path is relative to .+\)$/m);
    expect(r.stderr).not.toContain('ENOENT');
  });

  it('`flash IMAGE` without a partition is explained, with the command to type', async () => {
    const img = path.join(work, 'boot.img');
    writeFileSync(img, Buffer.alloc(4096, 1));
    const r = await runMiflash(['-s', 'tcp:127.0.0.1:1', 'flash', img]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${img} is an image, not a ROM`);
    expect(r.stderr).toContain(`hint: to flash one image name its partition first: miflash flash boot ${img}`);
  });
});

describe('a ROM path that is not quite right', () => {
  it('a typo, the images/ folder, or the folder an archive was saved in: each hint names what to type', async () => {
    const typo = await runMiflash(['flash', path.join(work, 'no-such-rom')]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/no-such-rom: no such file or folder\nhint: check the path \(relative to .+\): the ROM folder holds flash_all\.sh and images\//);

    const rom = path.join(work, 'rom-x');
    mkdirSync(path.join(rom, 'images'), { recursive: true });
    writeFileSync(path.join(rom, 'flash_all.sh'), 'fastboot $* flash boot %~dp0images/boot.img\n');
    const images = await runMiflash(['flash', path.join(rom, 'images')]);
    expect(images.code).toBe(2);
    expect(images.stderr).toContain(`hint: did you mean: miflash flash ${rom}`);

    const downloads = path.join(work, 'downloads');
    mkdirSync(downloads);
    writeFileSync(path.join(downloads, 'x_images_V1_a_b.tgz'), '');
    writeFileSync(path.join(downloads, 'notes.txt'), '');
    const folder = await runMiflash(['flash', downloads]);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain(`hint: did you mean: miflash flash ${path.join(downloads, 'x_images_V1_a_b.tgz')}`);
  });
});

describe('options of the other form of flash are refused, not ignored', () => {
  it('flash PARTITION IMAGE --dry-run exits 2 and writes nothing; flash ROM --slot exits 2', async () => {
    const img = path.join(work, 'boot-dry.img');
    writeFileSync(img, Buffer.alloc(8192, 7));
    const log = path.join(work, 'dry.log');
    const emu = await spawnCliEmulator(['--store', path.join(work, 'store-dry'), '--partition', 'boot=64K', '--log', log]);
    try {
      const dry = await runMiflash(['-s', emu.address, 'flash', 'boot', img, '--dry-run']);
      expect(dry.code).toBe(2);
      expect(dry.stderr).toContain('--dry-run: only for flashing a ROM');
      const mode = await runMiflash(['-s', emu.address, 'flash', 'boot', img, '--mode', 'keep-data']);
      expect(mode.code).toBe(2);
      expect(mode.stderr).toContain('--mode: only for flashing a ROM');
      expect(existsSync(log) ? readFileSync(log, 'utf8') : '').not.toMatch(/download|flash:/);
      const slot = await runMiflash(['-s', emu.address, 'flash', work, '--slot', 'b']);
      expect(slot.code).toBe(2);
      expect(slot.stderr).toContain('--slot: only for flashing one image');
      // The default --mode is not "given": flashing one image still works.
      const ok = await runMiflash(['-s', emu.address, 'flash', 'boot', img]);
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await emu.stop();
    }
  });

  it('getvar all prints what the AOSP client prints, once: "(bootloader) NAME:VALUE" lines and "all: " on stderr', async () => {
    const emu = await spawnCliEmulator(['--store', path.join(work, 'store-getvar'), '--serial', 'UX123']);
    try {
      const r = await runMiflash(['-s', emu.address, 'getvar', 'all']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr.match(/^\(bootloader\) serialno:UX123$/gm)).toHaveLength(1);
      expect(r.stderr.endsWith('all: \n')).toBe(true);
      const json = await runMiflash(['-s', emu.address, '--json', 'getvar', 'all']);
      const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
      expect(new Set(events.map((e) => e.event))).toEqual(new Set(['var']));
    } finally {
      await emu.stop();
    }
  });
});

describe('help', () => {
  it('flash --help ends with examples that fit an 80-column terminal', async () => {
    const r = await runMiflash(['flash', '--help']);
    expect(r.code).toBe(0);
    const examples = r.stdout.slice(r.stdout.indexOf('Examples:'));
    expect(examples).toMatch(/miflash flash \.\/rom --dry-run/);
    expect(examples).toMatch(/miflash --json flash \.\/rom --yes/);
    expect(examples).toMatch(/miflash flash boot boot\.img/);
    for (const line of examples.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  it('emulate --help says it serves UDP too', async () => {
    const r = await runMiflash(['emulate', '--help']);
    expect(r.stdout).toMatch(/emulated fastboot device on TCP or UDP/);
  });
});

describe('on a pseudo-terminal', needs('script'), () => {
  it('devices with nothing on USB explains why, on the terminal only', async () => {
    const tty = await onPty(`${MIFLASH} devices`, terminalEnv());
    expect(tty.code).toBe(0);
    const listed = /\tfastboot\t/.test(tty.screen);
    // A machine with a phone attached lists it and prints no note; one without gets the note.
    expect(tty.screen.includes('no fastboot devices found on USB')).toBe(!listed);
    if (!listed) expect(tty.screen).toContain('-s tcp:HOST');
    const piped = await runMiflash(['devices'], { env: terminalEnv() });
    expect(piped.stderr).not.toContain('no fastboot devices found');
  });

  it('status symbols are coloured on a terminal and plain with NO_COLOR', async () => {
    const emu = await spawnCliEmulator(['--store', path.join(work, 'store'), '--partition', 'misc=64K']);
    try {
      const coloured = await onPty(`${MIFLASH} -s ${emu.address} erase misc`, terminalEnv());
      expect(coloured.code).toBe(0);
      expect(coloured.screen).toMatch(/\x1b\[3\dm✔/);
      const plain = await onPty(`${MIFLASH} -s ${emu.address} erase misc`, terminalEnv({ NO_COLOR: '1' }));
      expect(plain.code).toBe(0);
      expect(plain.screen).toMatch(/✔ Erasing 'misc' +OKAY/);
      expect(plain.screen).not.toMatch(/\x1b\[3\dm/);
    } finally {
      await emu.stop();
    }
  });
});
