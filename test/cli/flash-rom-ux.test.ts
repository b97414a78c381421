// `miflash flash ROM` as a person at a terminal (or a batch log) sees it:
// flashRom runs in process with a fake terminal for stderr and a stream for the
// keyboard, against `miflash emulate`. Questions stay readable (no spinner or
// other device drawing over them), a cancelled question ends its line, every
// failure is said once with what to do next, archives show their extraction,
// and neither Ctrl-C nor a vanished reader leaves a crash or a silent exit.
// The Ctrl-C and closed-stdout cases spawn bin/miflash.js: build first.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flashRom, type FlashRomIo } from '../../src/cli/flash-rom.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { REPO_ROOT } from '../helpers/emulator.js';
import { emulatorForRom } from '../helpers/fake-fastboot.js';
import { fakeTty, stripAnsi, type FakeTty } from '../ui/fake-tty.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-flashrom-ux-'));
let rom: SyntheticRom;

beforeAll(async () => {
  rom = await buildSyntheticRom(path.join(work, 'rom'), { from: 'raphaelin', seed: 5 });
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function terminalIo(tty: FakeTty, stdin: PassThrough): FlashRomIo {
  return { stdout: new PassThrough().resume(), stderr: tty.stream, stdin, interactive: true, tty: true };
}

async function waitFor(tty: FakeTty, text: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!tty.raw().includes(text)) {
    if (Date.now() > until) throw new Error(`never saw ${JSON.stringify(text)} in:\n${stripAnsi(tty.raw())}`);
    await tick(20);
  }
}

describe('flash ROM on a terminal', () => {
  it('the user-data question stays on screen until answered; y flashes', async () => {
    const emu = await emulatorForRom(rom);
    try {
      const tty = fakeTty(120);
      const stdin = new PassThrough();
      const run = flashRom(rom.root, {}, { serial: [emu.address] }, terminalIo(tty, stdin));
      await waitFor(tty, 'Continue? [y/N] ');
      // Longer than ora's redraw interval and its 200 ms deferral after a partial line.
      await tick(600);
      const afterPrompt = tty.raw().slice(tty.raw().lastIndexOf('Continue? [y/N] '));
      expect(afterPrompt).not.toMatch(SPINNER);
      expect(afterPrompt).not.toContain('\x1b[2K');
      expect(tty.lastLine()).toMatch(/erases all user data .*Continue\? \[y\/N\] $/);
      expect(emu.writes()).toEqual([]);
      await tick(1000); // the person thinks a while
      const answered = performance.now();
      stdin.write('y\r');
      expect(await run).toBe(0);
      const afterAnswer = (performance.now() - answered) / 1000;
      expect(emu.writes().length).toBeGreaterThan(0);
      const screen = stripAnsi(tty.raw());
      // "sent in" is the flashing time, not the time the question waited.
      const sentIn = Number(/ sent in (\d+\.\d+)s/.exec(screen)?.[1]);
      expect(sentIn).toBeGreaterThan(0);
      expect(sentIn).toBeLessThanOrEqual(afterAnswer);
      // Image checks end as a finished line, not a vanished spinner.
      expect(screen).toMatch(/✔ Verifying images +OKAY \[ *\d+\.\d{3}s\]/);
      // Device sub-steps carry [step/count]; the plan's live percentage is the suffix alone.
      expect(screen).toMatch(/✔ \[\d+\/\d+\] Sending '[a-z_]+' \(\d+ KB\) +OKAY/);
      expect(screen).not.toMatch(/\[\d+\/\d+ \d+%\] (Sending|Writing)/);
      expect(screen).not.toMatch(/plan (?!\d)/);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('Ctrl-D at the question is a no that ends the prompt line; nothing is written', async () => {
    const emu = await emulatorForRom(rom);
    try {
      const tty = fakeTty(120);
      const stdin = new PassThrough();
      const run = flashRom(rom.root, {}, { serial: [emu.address] }, terminalIo(tty, stdin));
      await waitFor(tty, 'Continue? [y/N] ');
      stdin.end();
      expect(await run).toBe(130);
      expect(stripAnsi(tty.raw())).toMatch(/Continue\? \[y\/N\] \nmiflash: error: .*not confirmed; nothing has been written/);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('a refused write is reported once as FAILED, then the error (no second FAILED line for the plan step)', async () => {
    const emu = await emulatorForRom(rom, ['--fail-on', 'flash:dtbo', '--fail-message', 'Partition flashing is not allowed']);
    try {
      const err = new PassThrough();
      let text = '';
      err.on('data', (d: Buffer) => (text += d.toString()));
      const io: FlashRomIo = { stdout: new PassThrough().resume(), stderr: err, stdin: new PassThrough(), interactive: false, tty: false };
      expect(await flashRom(rom.root, { yes: true }, { serial: [emu.address] }, io)).toBe(4);
      const failed = text.split('\n').filter((l) => l.includes('FAILED ['));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatch(/^\[\d+\/\d+ \d+%\] Writing 'dtbo' +FAILED \[ *\d+\.\d{3}s\] \(.*Partition flashing is not allowed\)\)$/);
      expect(text).toMatch(/\nmiflash: error: .*flash dtbo .*Partition flashing is not allowed\)\n/);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('several devices: every line starts with its device, and the last line is the verdict', async () => {
    const good = await emulatorForRom(rom);
    const bad = await emulatorForRom(rom, ['--fail-on', 'flash:dtbo']);
    try {
      const err = new PassThrough();
      let text = '';
      err.on('data', (d: Buffer) => (text += d.toString()));
      const io: FlashRomIo = { stdout: new PassThrough().resume(), stderr: err, stdin: new PassThrough(), interactive: false, tty: false };
      expect(await flashRom(rom.root, { yes: true }, { serial: [good.address, bad.address] }, io)).toBe(4);
      const lines = text.trimEnd().split('\n');
      expect(lines.at(-1)).toBe(`miflash: 1 of 2 devices flashed; failed: ${bad.address} (exit 4)`);
      for (const l of lines.slice(0, -1)) expect(l, l).toMatch(/^\[tcp:127\.0\.0\.1:\d+\] |^miflash: error \[tcp:/);
      expect(text).toMatch(/^\[tcp:[\d.:]+\] Warning: /m);
    } finally {
      await Promise.all([good.stop(), bad.stop()]);
    }
  }, 60_000);

  it('a .tgz ROM shows its extraction before the plan, on a terminal and in a log', async () => {
    const tgz = path.join(work, 'raphaelin_images_SYNTH.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', path.dirname(rom.root), path.basename(rom.root)]);
    const emu = await emulatorForRom(rom);
    try {
      const tty = fakeTty(120);
      const code = await flashRom(tgz, { dryRun: true }, { serial: [emu.address] }, terminalIo(tty, new PassThrough()));
      expect(code, stripAnsi(tty.raw())).toBe(0);
      const screen = stripAnsi(tty.raw());
      expect(screen).toMatch(/✔ Extracting the ROM archive +OKAY \[ *\d+\.\d{3}s\]\n/);
      expect(screen.indexOf('Extracting the ROM archive')).toBeLessThan(screen.indexOf('Dry run:'));

      rmSync(tgz.replace(/\.tgz$/, '.miflash'), { recursive: true, force: true }); // extract again, not from the cache
      const err = new PassThrough();
      let log = '';
      err.on('data', (d: Buffer) => (log += d.toString()));
      const io: FlashRomIo = { stdout: new PassThrough().resume(), stderr: err, stdin: new PassThrough(), interactive: false, tty: false };
      expect(await flashRom(tgz, { dryRun: true }, { serial: [emu.address] }, io)).toBe(0);
      expect(log.split('\n')[0]).toMatch(/^Extracting the ROM archive +OKAY \[ *\d+\.\d{3}s\]$/);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('a dry run lists the operations once: on stdout, not again as SKIPPED lines', async () => {
    const emu = await emulatorForRom(rom);
    try {
      const out = new PassThrough();
      const err = new PassThrough();
      let stdout = '';
      let stderr = '';
      out.on('data', (d: Buffer) => (stdout += d.toString()));
      err.on('data', (d: Buffer) => (stderr += d.toString()));
      const io: FlashRomIo = { stdout: out, stderr: err, stdin: new PassThrough(), interactive: false, tty: false };
      expect(await flashRom(rom.root, { dryRun: true }, { serial: [emu.address] }, io)).toBe(0);
      expect(stdout).toMatch(/^fastboot flash boot images\/boot\.img$/m);
      expect(stderr).not.toMatch(/SKIPPED|would flash/);
      expect(stderr).toMatch(/Dry run finished: gates and image checks passed; nothing was written\nLog: \S+\.log\n$/);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('a link lost after writing began says the phone may be partly flashed and what to do', async () => {
    const emu = await emulatorForRom(rom, ['--drop-after', '2000']);
    try {
      const err = new PassThrough();
      let text = '';
      err.on('data', (d: Buffer) => (text += d.toString()));
      const io: FlashRomIo = { stdout: new PassThrough().resume(), stderr: err, stdin: new PassThrough(), interactive: false, tty: false };
      expect(await flashRom(rom.root, { yes: true }, { serial: [emu.address] }, io)).toBe(5);
      expect(text).toMatch(/\nmiflash: error: .*\nhint: the phone may be partly flashed: do not reboot it .*run the same command again with --resume \(the flashes already done are then skipped\)\nlog: \S+\.log\n$/);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('a second Ctrl-C exits 130 at once and says what state the device may be in', async () => {
    // The device stops answering at a write: the first Ctrl-C cannot finish a buffer, the second must end the run.
    const emu = await emulatorForRom(rom, ['--stall-on', 'flash:boot']);
    try {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), '-s', emu.address, '--timeout', '20000', 'flash', rom.root, '--yes'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
      const until = Date.now() + 20_000;
      while (!emu.log().some((l) => l === 'flash:boot') && Date.now() < until) await tick(50);
      child.kill('SIGINT');
      await tick(300);
      child.kill('SIGINT');
      expect(await closed).toBe(130);
      expect(stderr).toContain('stopping after the current buffer (Ctrl-C again to exit now)');
      expect(stderr).toMatch(/\nmiflash: aborted; if a transfer was cut short, reboot the device to the bootloader before retrying\n$/);
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('a closed stdout (`--json flash ROM | head -1`) does not cut the flash short', async () => {
    const emu = await emulatorForRom(rom);
    try {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), '-s', emu.address, '--json', 'flash', rom.root, '--yes'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.once('data', () => child.stdout.destroy()); // the reader goes away after the first line
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect(stderr).not.toContain('EPIPE');
      expect(code, stderr).toBe(0);
      expect(emu.log().at(-1)).toBe('reboot');
    } finally {
      await emu.stop();
    }
  }, 60_000);

  it('several devices on a terminal: a question is not buried by another device flashing meanwhile', async () => {
    const a = await emulatorForRom(rom);
    const b = await emulatorForRom(rom);
    try {
      const tty = fakeTty(120);
      const stdin = new PassThrough();
      const run = flashRom(rom.root, {}, { serial: [a.address, b.address] }, terminalIo(tty, stdin));
      const prompts = () => tty.raw().split('Continue? [y/N] ').length - 1;
      await waitFor(tty, 'Continue? [y/N] ');
      stdin.write('y\r');
      const until = Date.now() + 15_000;
      while (prompts() < 2 && Date.now() < until) await tick(20);
      expect(prompts()).toBe(2);
      await tick(800); // the first device flashes meanwhile (a tiny ROM: done by now)
      expect(tty.lastLine()).toMatch(/Continue\? \[y\/N\] $/);
      stdin.write('y\r');
      expect(await run).toBe(0);
      const screen = stripAnsi(tty.raw());
      const second = screen.lastIndexOf('Continue? [y/N] ');
      // Everything the first device did while the second question was open comes after the answer.
      expect(screen.slice(second)).toMatch(/^Continue\? \[y\/N\] y\r?\n/);
      expect(screen).toMatch(/miflash: 2 of 2 devices flashed\n$/);
      expect(a.writes().length).toBeGreaterThan(0);
      expect(b.writes().length).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);

  it('the lock question names the product and accepts only that name', async () => {
    const emu = await emulatorForRom(rom);
    try {
      const tty = fakeTty(120);
      const stdin = new PassThrough();
      const run = flashRom(rom.root, { mode: 'lock' }, { serial: [emu.address] }, terminalIo(tty, stdin));
      await waitFor(tty, 'Continue? [y/N] ');
      stdin.write('y\r');
      await waitFor(tty, `Type the product name (${rom.product}) to lock: `);
      await tick(300);
      expect(tty.lastLine()).toMatch(/LOCKING the bootloader.*to lock: $/);
      stdin.write(`${rom.product.toUpperCase()}\r`);
      expect(await run).toBe(130);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  }, 60_000);
});
