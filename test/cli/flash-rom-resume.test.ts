// `miflash flash ROM --resume` and the per-device log against the emulated
// phone: a run stopped at step k (injected FAIL, dropped connection, killed
// process) leaves a journal; --resume re-checks the gates, skips exactly the
// completed flashes journal.ts allows, and the device ends byte-identical to a
// clean run. A changed image, another serial, another ROM: nothing wrongly
// skipped. Every run leaves a log file with the commands and replies.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanEventSchema, type PlanEvent, type PlanEventOf } from '../../src/plan/events.js';
import { JournalSchema } from '../../src/plan/journal.js';
import { stepLabel } from '../../src/plan/runner.js';
import { planForRom } from '../../src/rom/plan-for-rom.js';
import { openRom } from '../../src/rom/rom.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { REPO_ROOT } from '../helpers/emulator.js';
import { emulatorForRom, replaceRomFile, runMiflash, type ProcResult, type RomEmulator } from '../helpers/fake-fastboot.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-resume-'));
let pristine: SyntheticRom;
let copies = 0;
/** Set by test/setup.ts for this file; inherited by the miflash processes. */
const cache = () => process.env.MIFLASH_CACHE_DIR!;
const journalFile = (serial: string) => path.join(cache(), 'journals', `${serial}.json`);

beforeAll(async () => {
  pristine = await buildSyntheticRom(path.join(work, 'pristine'), { from: 'raphaelin', seed: 5 });
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

function romCopy(): SyntheticRom {
  const root = path.join(work, `copy-${++copies}`);
  cpSync(pristine.root, root, { recursive: true });
  return { ...pristine, root };
}

/** An emulated phone on partition files in `store` (kept between emulators: the same phone, reconnected). */
async function withPhone<T>(store: string, serial: string, extra: string[], fn: (emu: RomEmulator) => Promise<T>): Promise<T> {
  const emu = await emulatorForRom(pristine, ['--store', store, '--serial', serial, ...extra]);
  try {
    return await fn(emu);
  } finally {
    await emu.stop();
  }
}

function events(r: ProcResult): PlanEvent[] {
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => PlanEventSchema.parse(JSON.parse(l)));
}
const only = <N extends PlanEvent['event']>(ev: PlanEvent[], name: N) => ev.filter((e): e is PlanEventOf<N> => e.event === name);

/** Every partition the ROM's scripts write (the emulator's other, large default partitions are untouched), by name. */
function contents(store: string): Record<string, string> {
  const names = new Set(pristine.partitions.map((p) => `${p.name}.img`));
  return Object.fromEntries(
    readdirSync(store)
      .filter((f) => names.has(f))
      .sort()
      .map((f) => [f, createHash('sha256').update(readFileSync(path.join(store, f))).digest('hex')]),
  );
}

const newStore = (name: string) => path.join(work, `${name}-${++copies}`);

/** The device after a clean, uninterrupted run of `rom`. */
async function cleanRun(rom: SyntheticRom): Promise<Record<string, string>> {
  const store = newStore('clean');
  await withPhone(store, 'CLEAN', [], async (emu) => {
    const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
    expect(r.code, r.stderr).toBe(0);
  });
  return contents(store);
}

/** The steps of the ROM's flash_all.sh plan, with the labels events carry. */
async function planSteps(rom: SyntheticRom): Promise<Array<{ step: number; kind: string; label: string }>> {
  const plan = await planForRom(await openRom(rom.root), { mode: 'clean' });
  return plan.steps.map((s, step) => ({ step, kind: s.kind, label: stepLabel(s) }));
}

let cleanPristine: Record<string, string>;
let steps: Array<{ step: number; kind: string; label: string }>;
beforeAll(async () => {
  cleanPristine = await cleanRun(pristine);
  steps = await planSteps(pristine);
}, 60_000);

const stepOf = (label: string) => steps.find((s) => s.label.startsWith(label))!.step;
const flashesBetween = (from: number, to: number) => steps.filter((s) => s.kind === 'flash' && s.step >= from && s.step < to).map((s) => s.step);
/** The CRC lists are bootloader state: journal.ts sends them again. */
const isCrcList = (i: number) => /^flash (sparse)?crclist /.test(steps[i]!.label);
const skippable = (from: number, to: number) => flashesBetween(from, to).filter((i) => !isCrcList(i));
/** Completed steps every resume of flash_all.sh sends again: the erase of boot and the two CRC lists. */
const sentAgain = () => [stepOf('erase boot'), stepOf('flash crclist '), stepOf('flash sparsecrclist ')];

describe('--resume after a failed step', () => {
  it('skips exactly the flashes done before the failure, sends the erase again, and leaves the device identical to a clean run', async () => {
    const store = newStore('fail');
    const modem = stepOf('flash modem');
    // 1. The run that fails at `flash modem`.
    let failedLog: string;
    await withPhone(store, 'RES1', ['--fail-on', 'flash:modem'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(4);
      const err = only(events(r), 'error').at(-1)!;
      expect(err.step).toBe(modem);
      failedLog = err.logFile!;
      expect(failedLog).toMatch(/logs[\\/]RES1-.*\.log$/);
    });
    const journal = JournalSchema.parse(JSON.parse(readFileSync(journalFile('RES1'), 'utf8')));
    expect(journal.serial).toBe('RES1');
    expect(journal.steps.map((e) => e.step)).toEqual([stepOf('erase boot'), ...flashesBetween(0, modem)]);
    expect(journal.steps.every((e) => e.kind !== 'flash' || /^[0-9a-f]{32}$/.test(e.md5 ?? ''))).toBe(true);
    const log = readFileSync(failedLog!, 'utf8');
    expect(log).toMatch(/> erase:boot\n.*< OKAY/);
    expect(log).toMatch(/> download:[0-9a-f]{8}\n.*< DATA[0-9a-f]{8}\n.*> \(\d+ bytes of data\)/);
    expect(log).toMatch(/> flash:modem\n.*< FAILinjected failure/);
    expect(log).toMatch(/step \d+ ok: flash xbl images\/xbl\.elf in \d+\.\d{3} s/);
    expect(log).toMatch(/step \d+ failed: flash modem/);

    // 2. The same phone again, with --resume.
    await withPhone(store, 'RES1', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      const ev = events(r);
      const skipped = skippable(0, modem);
      expect(skipped.length).toBeGreaterThan(15);
      const resume = only(ev, 'resume')[0]!;
      expect(resume).toMatchObject({ serial: 'RES1', skipped, again: sentAgain(), resumeAt: modem });
      expect(resume.ignored).toBeUndefined();
      const resumedEnds = only(ev, 'step-end').filter((e) => e.resumed);
      expect(resumedEnds.map((e) => e.step)).toEqual(skipped);
      expect(resumedEnds.every((e) => e.status === 'skipped' && /image unchanged \(MD5 [0-9a-f]{32}\)/.test(e.message ?? ''))).toBe(true);
      const done = only(ev, 'done')[0]!;
      expect(done.stepsResumed).toBe(skipped.length);
      expect(existsSync(done.logFile!)).toBe(true);
      expect(done.logFile).not.toBe(failedLog);
      // The gates were asked again; the erase was sent again; no skipped partition was written.
      const log = emu.log();
      expect(log).toContain('getvar:anti');
      expect(log).toContain('getvar:product');
      const writes = emu.writes().filter((w) => !w.startsWith('download'));
      expect(writes[0]).toBe('erase:boot');
      const skippedParts = skipped.map((i) => steps[i]!.label.split(' ')[1]!);
      for (const p of skippedParts) expect(writes).not.toContain(`flash:${p}`);
      expect(writes).toContain('flash:modem');
      expect(writes.filter((w) => w.startsWith('flash:')).length).toBe(44 - skipped.length);
      expect(writes.at(-1)).toBe('reboot');
    });
    expect(contents(store)).toEqual(cleanPristine);
    // A completed run removes its journal.
    expect(existsSync(journalFile('RES1'))).toBe(false);
  }, 90_000);

  it('human output names the skipped steps and why, and ends with the log path', async () => {
    const store = newStore('human');
    await withPhone(store, 'RES2', ['--fail-on', 'flash:tz'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/\nlog: \S+RES2-\S+\.log\n/);
    });
    await withPhone(store, 'RES2', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /--resume: 6 flashes done in the interrupted run of \S+ are skipped \(steps 9–14\); 3 steps it completed run again \(6: erase is never skipped; 7: crclist is bootloader state, not a partition's contents: never skipped; 8: sparsecrclist [^)]*\); from step 15 \(flash tz images\/tz\.mbn\) everything runs: the interrupted run did not complete it\n/,
      );
      expect(r.stderr).toMatch(/\[9\/52\] flash xbl images\/xbl\.elf +SKIPPED .*\(resumed: done at \S+ in the interrupted run, image unchanged/);
      expect(r.stderr).toMatch(/Finished: \d+ operations \(6 skipped: done before, --resume\)/);
      const logLine = /\nLog: (\S+\.log)\n/.exec(r.stderr);
      expect(logLine).not.toBeNull();
      expect(readFileSync(logLine![1]!, 'utf8')).toMatch(/step 9 skipped \(resumed\): flash xbl/);
    });
    expect(contents(store)).toEqual(cleanPristine);
  }, 90_000);

  it('--resume --dry-run says what would be skipped, writes nothing and leaves the journal as it was', async () => {
    const store = newStore('dry');
    const modem = stepOf('flash modem');
    await withPhone(store, 'RES12', ['--fail-on', 'flash:modem'], async (emu) => {
      expect((await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes'])).code).toBe(4);
    });
    const before = readFileSync(journalFile('RES12'), 'utf8');
    await withPhone(store, 'RES12', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--resume', '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      const ev = events(r);
      expect(only(ev, 'resume')[0]).toMatchObject({ skipped: skippable(0, modem), resumeAt: modem });
      const wouldSkip = only(ev, 'step-end').filter((e) => /^dry run: would skip \(resumed: /.test(e.message ?? ''));
      expect(wouldSkip.map((e) => e.step)).toEqual(skippable(0, modem));
      expect(emu.writes()).toEqual([]);
    });
    expect(readFileSync(journalFile('RES12'), 'utf8')).toBe(before);
  }, 90_000);

  it('without --resume the journal is written but not used: every flash is sent', async () => {
    const store = newStore('noresume');
    await withPhone(store, 'RES3', ['--fail-on', 'flash:modem'], async (emu) => {
      expect((await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes'])).code).toBe(4);
    });
    expect(existsSync(journalFile('RES3'))).toBe(true);
    await withPhone(store, 'RES3', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(only(events(r), 'resume')).toEqual([]);
      expect(only(events(r), 'step-end').some((e) => e.resumed)).toBe(false);
      expect(emu.writes().filter((w) => w.startsWith('flash:')).length).toBe(44);
    });
    expect(existsSync(journalFile('RES3'))).toBe(false);
  }, 90_000);
});

describe('--resume refuses to skip what it cannot vouch for', () => {
  it('an image changed between the runs is flashed again (both partitions it feeds); the rest is skipped; the device matches a clean run of the new ROM', async () => {
    const rom = romCopy();
    const store = newStore('changed');
    await withPhone(store, 'RES4', ['--fail-on', 'flash:modem'], async (emu) => {
      expect((await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes'])).code).toBe(4);
    });
    const tz = Buffer.alloc(readFileSync(path.join(rom.root, 'images/tz.mbn')).length, 0x5a);
    replaceRomFile(rom.root, 'images/tz.mbn', tz);
    await withPhone(store, 'RES4', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', rom.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      const resume = only(events(r), 'resume')[0]!;
      const tzSteps = [stepOf('flash tz '), stepOf('flash tzbak ')];
      expect(resume.again).toEqual([...sentAgain(), ...tzSteps]);
      expect(resume.skipped).toEqual(skippable(0, stepOf('flash modem')).filter((i) => !tzSteps.includes(i)));
      const writes = emu.writes();
      expect(writes).toContain('flash:tz');
      expect(writes).toContain('flash:tzbak');
      expect(writes).not.toContain('flash:xbl');
    });
    expect(contents(store)).toEqual(await cleanRun(rom));
  }, 90_000);

  it('another device serial: its journal is its own, nothing is skipped; a journal file of another serial is refused', async () => {
    const store = newStore('serial');
    await withPhone(store, 'RES5', ['--fail-on', 'flash:modem'], async (emu) => {
      expect((await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes'])).code).toBe(4);
    });
    // The same partitions, but the phone answers another serial number.
    await withPhone(store, 'RES6', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes', '--resume', '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(only(events(r), 'resume')[0]).toMatchObject({ serial: 'RES6', skipped: [], ignored: 'no journal' });
    });
    // RES5's journal put where RES6's would be (copied by hand): its serial inside decides.
    writeFileSync(journalFile('RES6'), readFileSync(journalFile('RES5')));
    await withPhone(store, 'RES6', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      expect(only(events(r), 'resume')[0]).toMatchObject({ skipped: [], ignored: 'it is for device RES5, not RES6' });
      expect(emu.writes().filter((w) => w.startsWith('flash:')).length).toBe(44);
    });
    expect(existsSync(journalFile('RES5'))).toBe(true);
  }, 90_000);

  it('two phones of one run answering the same serial number: only the first keeps a journal, the other is told', async () => {
    const [a, b] = [newStore('dupa'), newStore('dupb')];
    await withPhone(a, 'DUP1', ['--fail-on', 'flash:modem'], async (ea) =>
      withPhone(b, 'DUP1', ['--fail-on', 'flash:tz'], async (eb) => {
        const r = await runMiflash(['-s', ea.address, '-s', eb.address, 'flash', pristine.root, '--yes', '--resume']);
        expect(r.code, r.stderr).toBe(4);
        expect(r.stderr.match(/another device in this run also answers serial number DUP1: no resume journal for tcp:\S+, and --resume skips nothing on it/g)).toHaveLength(1);
      }),
    );
    // The journal is one phone's alone: it stops either at tz or at modem, with every step before it.
    const journal = JournalSchema.parse(JSON.parse(readFileSync(journalFile('DUP1'), 'utf8')));
    const upTo = journal.steps.at(-1)!.step + 1;
    expect([stepOf('flash tz '), stepOf('flash modem')]).toContain(upTo);
    expect(journal.steps.map((e) => e.step)).toEqual([stepOf('erase boot'), ...flashesBetween(0, upTo)]);
  }, 90_000);

  it('another ROM (another script): the journal is ignored with a message', async () => {
    const store = newStore('otherrom');
    await withPhone(store, 'RES7', ['--fail-on', 'flash:modem'], async (emu) => {
      expect((await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes'])).code).toBe(4);
    });
    await withPhone(store, 'RES7', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes', '--resume', '--mode', 'keep-data']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/--resume: not using the journal \S+RES7\.json: it was written for another ROM or plan/);
      expect(emu.writes()).toContain('flash:xbl');
    });
  }, 90_000);

  it('the gates are checked again: a device that fails one now gets nothing written, and the journal stays', async () => {
    const store = newStore('gates');
    await withPhone(store, 'RES8', ['--fail-on', 'flash:modem'], async (emu) => {
      expect((await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes'])).code).toBe(4);
    });
    const before = readFileSync(journalFile('RES8'), 'utf8');
    await withPhone(store, 'RES8', ['--var', 'anti=9'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/antirollback/);
      expect(emu.writes()).toEqual([]);
      // A refused run has its log too, named after the serial, with the question that refused it.
      const logFile = /\nlog: (\S+)\n/.exec(r.stderr)![1]!;
      expect(path.basename(logFile)).toMatch(/^RES8-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.log$/);
      expect(readFileSync(logFile, 'utf8')).toMatch(/> getvar:anti\n.*< OKAY9\n[^]*error gate\.\S+ \(exit 3\)/);
    });
    expect(readFileSync(journalFile('RES8'), 'utf8')).toBe(before);
  }, 90_000);
});

describe('--resume after a lost link or a killed process', () => {
  it('a connection dropped in the middle of a download: resume finishes, device identical to a clean run', async () => {
    const store = newStore('drop');
    const vendor = stepOf('flash vendor');
    await withPhone(store, 'RES9', ['--drop-after', '9000'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(5);
    });
    await withPhone(store, 'RES9', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      expect(only(events(r), 'resume')[0]).toMatchObject({ skipped: skippable(0, vendor), resumeAt: vendor });
      expect(emu.writes()).toContain('flash:vendor');
    });
    expect(contents(store)).toEqual(cleanPristine);
  }, 90_000);

  it('Ctrl-C twice while a step waits on the device (exit 130 at once) leaves a valid journal that resumes', async () => {
    const store = newStore('sigint');
    const modem = stepOf('flash modem');
    await withPhone(store, 'RES11', ['--stall-on', 'flash:modem'], async (emu) => {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), '-s', emu.address, '--timeout', '600000', 'flash', pristine.root, '--yes'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const until = async (ok: () => boolean) => {
        const deadline = Date.now() + 60_000;
        while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      };
      await until(() => emu.log().includes('flash:modem'));
      child.kill('SIGINT');
      await until(() => stderr.includes('Ctrl-C again'));
      child.kill('SIGINT');
      expect(await exited, stderr).toBe(130);
    });
    const journal = JournalSchema.parse(JSON.parse(readFileSync(journalFile('RES11'), 'utf8')));
    expect(journal.steps.map((e) => e.step)).toEqual([stepOf('erase boot'), ...flashesBetween(0, modem)]);
    await withPhone(store, 'RES11', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      expect(only(events(r), 'resume')[0]).toMatchObject({ skipped: skippable(0, modem), resumeAt: modem });
    });
    expect(contents(store)).toEqual(cleanPristine);
  }, 90_000);

  it('a process killed (SIGKILL) while a step waits on the device leaves a valid journal that resumes', async () => {
    const store = newStore('kill');
    const modem = stepOf('flash modem');
    await withPhone(store, 'RES10', ['--stall-on', 'flash:modem'], async (emu) => {
      // Killed the moment flash:modem reaches the device (which never answers it): no chance to tidy up.
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), '-s', emu.address, '--timeout', '600000', 'flash', pristine.root, '--yes'], { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      const deadline = Date.now() + 60_000;
      while (!emu.log().includes('flash:modem') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      expect(emu.log()).toContain('flash:modem');
    });
    const journal = JournalSchema.parse(JSON.parse(readFileSync(journalFile('RES10'), 'utf8')));
    expect(journal.steps.map((e) => e.step)).toEqual([stepOf('erase boot'), ...flashesBetween(0, modem)]);
    expect(readdirSync(path.dirname(journalFile('RES10'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await withPhone(store, 'RES10', [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes', '--resume']);
      expect(r.code, r.stderr).toBe(0);
      expect(only(events(r), 'done')[0]!.stepsResumed).toBe(skippable(0, modem).length);
    });
    expect(contents(store)).toEqual(cleanPristine);
  }, 90_000);
});
