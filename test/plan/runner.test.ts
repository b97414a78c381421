// runPlan against the in-process emulator: the failure policy of grammar §6
// (checked failures stop the plan; unchecked erase/reboot failures warn; a
// lock never runs after a failure or warning), confirmations, conditions,
// dry runs, transport failures, and the event stream.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError, BadInputError, DeviceFailError, GateRefusedError, TransportError } from '../../src/errors.js';
import { connectFastboot } from '../../src/fastboot/connect.js';
import type { FaultOptions } from '../../src/emulator/fastboot/index.js';
import { PlanEventSchema, type PlanEvent } from '../../src/plan/events.js';
import { failurePolicy, runPlan, type ConfirmRequest, type RunPlanOptions } from '../../src/plan/runner.js';
import { checksOf } from '../../src/plan/checks.js';
import { isReadOnlyKind, type FlashPlan, type PlanStep } from '../../src/plan/schema.js';
import { openRom, planForRom, type Rom, type RomMode } from '../../src/rom/index.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { withEmulator } from '../helpers/emulator.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-runner-'));
const built = new Map<string, { syn: SyntheticRom; rom: Rom }>();

beforeAll(async () => {
  for (const from of ['land', 'liuqin', 'raphaelin', 'elish']) {
    const syn = await buildSyntheticRom(path.join(work, from), { from, seed: 11 });
    built.set(from, { syn, rom: await openRom(syn.root) });
  }
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  result?: Awaited<ReturnType<typeof runPlan>>;
  error?: unknown;
  events: PlanEvent[];
  log: string[];
  asked: ConfirmRequest[];
}

async function runOn(
  from: string,
  mode: RomMode,
  opts: { faults?: FaultOptions; vars?: Record<string, string>; slots?: string[]; edit?: (p: FlashPlan) => FlashPlan } & Partial<RunPlanOptions> = {},
): Promise<Run> {
  const { syn, rom } = built.get(from)!;
  let plan = await planForRom(rom, { mode });
  if (opts.edit) plan = opts.edit(plan);
  const partitions = Object.fromEntries(syn.partitions.map((p) => [p.name, p.size]));
  const needsSlots = plan.steps.some((s) => s.kind === 'set-active');
  return withEmulator(
    { product: syn.product, partitions, ...(needsSlots ? { slots: ['a', 'b'] } : {}), vars: opts.vars ?? {}, faults: opts.faults ?? {}, store: null },
    async (emu) => {
      const client = await connectFastboot({ kind: 'tcp', host: '127.0.0.1', port: emu.port }, { timeoutMs: 5000 });
      const events: PlanEvent[] = [];
      const asked: ConfirmRequest[] = [];
      const run: Run = { events, log: emu.log, asked };
      try {
        run.result = await runPlan(plan, {
          rom,
          client,
          deviceId: emu.address,
          confirm: async (q) => {
            asked.push(q);
            return true;
          },
          onEvent: (e) => events.push(PlanEventSchema.parse(e)),
          ...opts,
        });
      } catch (err) {
        run.error = err;
      } finally {
        await client.close().catch(() => {});
      }
      run.log = [...emu.log];
      return run;
    },
  );
}

const writes = (log: string[]) => log.filter((l) => !l.startsWith('getvar:'));

describe('failure policy', () => {
  it('a failed checked flash stops the plan: exit 4, the script message, nothing after it', async () => {
    const r = await runOn('raphaelin', 'clean', { faults: { failOn: 'flash:tz', failMessage: 'emmc write error' } });
    expect(r.error).toBeInstanceOf(DeviceFailError);
    const e = r.error as DeviceFailError;
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/flash_all\.sh line \d+ \(flash tz images\/tz\.mbn\) \[Flash tz error\]: .*emmc write error/);
    const w = writes(r.log);
    expect(w.at(-1)).toBe('flash:tz');
    expect(w).not.toContain('flash:tzbak');
    expect(r.events.at(-1)).toMatchObject({ event: 'error', exitCode: 4, code: 'fastboot.fail' });
  });

  it('land lock: an unchecked erase of a scratch partition fails -> warning, flashing continues, the lock never runs', async () => {
    const r = await runOn('land', 'lock', { faults: { failOn: 'erase:mdtp' } });
    const w = writes(r.log);
    expect(w).toContain('erase:mdtp');
    const after = w.slice(w.indexOf('erase:mdtp') + 1);
    expect(after.filter((l) => l.startsWith('flash:')).length).toBeGreaterThan(3);
    expect(w).not.toContain('oem lock');
    expect(r.error).toBeInstanceOf(DeviceFailError);
    expect((r.error as DeviceFailError).code).toBe('plan.lock-refused');
    const warned = r.events.find((e) => e.event === 'step-end' && e.status === 'warning');
    expect(warned).toMatchObject({ label: 'erase mdtp' });
  });

  it('land lock without faults does lock (control for the test above)', async () => {
    const r = await runOn('land', 'lock');
    expect(r.error).toBeUndefined();
    expect(writes(r.log).slice(-2)).toEqual(['oem lock', 'reboot']);
    expect(r.asked.map((q) => q.kind)).toEqual(['user-data', 'lock']);
    expect(r.asked[1]!.expect).toBe('land');
  });

  it('an unchecked flash that fails still aborts (a half-written boot chain can brick the device)', async () => {
    const r = await runOn('land', 'clean', { faults: { failOn: 'flash:tz' } });
    expect(r.error).toBeInstanceOf(DeviceFailError);
    expect(writes(r.log).at(-1)).toBe('flash:tz');
  });

  it('a failed unchecked reboot is reported as a warning', async () => {
    const r = await runOn('land', 'clean', { faults: { failOn: 'reboot' } });
    expect(r.error).toBeUndefined();
    expect(r.result!.status).toBe('warning');
    expect(r.events.at(-1)).toMatchObject({ event: 'done', status: 'warning' });
  });

  it('a broken link is a transport error (5), whatever the script says', async () => {
    const r = await runOn('land', 'clean', { faults: { dropAfterBytes: 300 } });
    expect(r.error).toBeInstanceOf(TransportError);
    expect((r.error as TransportError).exitCode).toBe(5);
  });

  it('failurePolicy follows grammar §6 for vendor-unchecked steps', () => {
    const fail = new DeviceFailError('x');
    const base = { line: 1, onFailure: 'ignore' as const, vendorUnchecked: true };
    const flash: PlanStep = { kind: 'flash', partition: 'boot', file: 'images/boot.img', ...base };
    const eraseScratch: PlanStep = { kind: 'erase', partition: 'misc', ...base };
    const eraseOther: PlanStep = { kind: 'erase', partition: 'userdata', ...base };
    const eraseThenFlash: PlanStep = { kind: 'erase', partition: 'boot', ...base };
    expect(failurePolicy(flash, fail)).toBe('abort');
    expect(failurePolicy({ kind: 'set-active', slot: 'a', ...base }, fail)).toBe('abort');
    expect(failurePolicy(eraseScratch, fail)).toBe('warn');
    expect(failurePolicy(eraseOther, fail)).toBe('abort');
    expect(failurePolicy(eraseThenFlash, fail, [flash])).toBe('warn');
    expect(failurePolicy({ kind: 'reboot', ...base }, fail)).toBe('warn');
    expect(failurePolicy({ ...eraseScratch, onFailure: 'abort' }, fail)).toBe('abort');
    expect(failurePolicy(eraseScratch, new TransportError('gone'))).toBe('abort');
  });
});

describe('gates, confirmations, conditions, dry run', () => {
  it('declined confirmation: aborted (130), only getvars sent', async () => {
    const r = await runOn('raphaelin', 'clean', { confirm: async () => false });
    expect(r.error).toBeInstanceOf(AbortedError);
    expect(writes(r.log)).toEqual([]);
  });

  it('no way to confirm: refuses and says to pass --yes', async () => {
    const r = await runOn('raphaelin', 'clean', { confirm: undefined });
    expect(r.error).toBeInstanceOf(AbortedError);
    expect((r.error as AbortedError).hint).toMatch(/--yes/);
    expect(writes(r.log)).toEqual([]);
  });

  it('keep-data needs no confirmation', async () => {
    const r = await runOn('raphaelin', 'keep-data', { confirm: undefined });
    expect(r.error).toBeUndefined();
    expect(writes(r.log)).not.toContain('flash:userdata');
  });

  it('crc-supported condition: a device answering crc=0 gets no crclist/sparsecrclist flashes', async () => {
    const on = await runOn('liuqin', 'clean');
    const off = await runOn('liuqin', 'clean', { vars: { crc: '0' } });
    expect(on.error).toBeUndefined();
    expect(off.error).toBeUndefined();
    expect(writes(on.log)).toContain('flash:crclist');
    expect(writes(off.log)).not.toContain('flash:crclist');
    expect(writes(off.log)).not.toContain('flash:sparsecrclist');
    const skipped = off.events.filter((e) => e.event === 'step-end' && e.status === 'skipped' && e.kind === 'flash');
    expect(skipped.length).toBe(2);
  });

  it('a gate the vendor does not check (onFailure ignore) only warns, and then a lock is refused', async () => {
    const r = await runOn('land', 'lock', {
      vars: { product: 'landx' },
      edit: (p) => ({
        ...p,
        // The script's product check, anchored at the end, and made one the script ignores.
        steps: p.steps.map((s) => (s.kind === 'exit' && checksOf(s, p.steps).includes('product') ? ({ ...(JSON.parse(JSON.stringify(s).replace('^product: land"', '^product: land$"')) as PlanStep), onFailure: 'ignore' as const }) : s)),
      }),
    });
    expect((r.error as DeviceFailError).code).toBe('plan.lock-refused');
    expect(writes(r.log)).not.toContain('oem lock');
  });

  it('a plan without an anti-rollback check still respects images/anti_version.txt', async () => {
    const { rom } = built.get('raphaelin')!;
    const dropAnti = (p: FlashPlan) => ({ ...p, steps: p.steps.filter((s) => !checksOf(s, p.steps).includes('anti')) });
    const withFile = { ...rom, antiVersion: 2 };
    const high = await runOn('raphaelin', 'clean', { rom: withFile, vars: { anti: '3' }, edit: dropAnti });
    expect(high.error).toBeInstanceOf(GateRefusedError);
    expect((high.error as GateRefusedError).message).toMatch(/anti-rollback version 3 .* higher than this package's 2 \(anti_version\.txt\)/);
    expect(writes(high.log)).toEqual([]);
    const equal = await runOn('raphaelin', 'clean', { rom: withFile, vars: { anti: '2' }, edit: dropAnti, dryRun: true });
    expect(equal.error).toBeUndefined();
  });

  it('an unknown gate blocks before any write (exit 2)', async () => {
    const r = await runOn('raphaelin', 'clean', {
      edit: (p) => ({ ...p, steps: [{ kind: 'gate.unknown', line: 3, onFailure: 'abort', text: 'fastboot $* getvar foo | grep bar', reason: 'device check miflash cannot interpret' }, ...p.steps] }),
    });
    expect((r.error as { exitCode: number }).exitCode).toBe(2);
    expect(writes(r.log)).toEqual([]);
  });

  it('--disable-verity on a vbmeta image without an AVB header is refused before any write (exit 2)', async () => {
    const r = await runOn('elish', 'clean');
    expect((r.error as BadInputError).code).toBe('rom.vbmeta-invalid');
    expect((r.error as BadInputError).message).toMatch(/images\/vbmeta\.img \(partition vbmeta_a\): not a vbmeta image/);
    expect(writes(r.log)).toEqual([]);
  });

  it('--disable-verity patches only vbmeta, vbmeta_a and vbmeta_b, as the AOSP client does: vbmeta_system_a goes out unchanged', async () => {
    const { rom } = built.get('elish')!;
    // elish flashes vbmeta_a and vbmeta_system_a with both flags; neither synthetic image has an AVB header.
    const r = await runOn('elish', 'clean', { edit: (p) => ({ ...p, steps: p.steps.filter((s) => !(s.kind === 'flash' && s.partition === 'vbmeta_a')) }) });
    expect(r.error).toBeUndefined();
    const at = r.log.indexOf('flash:vbmeta_system_a');
    expect(at).toBeGreaterThan(0);
    const sha = createHash('sha256').update(readFileSync(path.join(rom.root, 'images/vbmeta_system.img'))).digest('hex');
    expect(r.log[at - 1]).toMatch(new RegExp(`^download [0-9]+ ${sha}$`));
  });

  it('wrong product refuses with GateRefusedError before anything but getvars', async () => {
    const r = await runOn('raphaelin', 'clean', { vars: { product: 'raphael' } });
    expect(r.error).toBeInstanceOf(GateRefusedError);
    expect(writes(r.log)).toEqual([]);
    expect(r.log.every((l) => l.startsWith('getvar:'))).toBe(true);
  });

  it('dry run: getvars only, the operations listed in order, no confirmation asked', async () => {
    const r = await runOn('liuqin', 'clean', { dryRun: true, confirm: undefined });
    expect(r.error).toBeUndefined();
    expect(writes(r.log)).toEqual([]);
    expect(r.result!.status).toBe('dry-run');
    expect(r.result!.operations[0]).toBe('flash crclist images/crclist.txt');
    expect(r.result!.operations.at(-1)).toBe('reboot');
    expect(r.result!.operations).toContain('set_active a');
    expect(r.result!.facts.product).toBe('liuqin');
  });

  it('events: every step ends once, in order; progress never more than 10 per second', async () => {
    let t = 0;
    const progressAt: number[] = [];
    const all: PlanEvent[] = [];
    // A clock that advances 1 ms per reading: progress comes far faster than 10/s.
    const r = await runOn('raphaelin', 'clean', {
      now: () => (t += 1),
      onEvent: (e) => {
        all.push(PlanEventSchema.parse(e));
        if (e.event === 'progress') progressAt.push(t);
      },
    });
    expect(r.error).toBeUndefined();
    expect(progressAt.length).toBeGreaterThan(0);
    for (let i = 1; i < progressAt.length; i++) expect(progressAt[i]! - progressAt[i - 1]!).toBeGreaterThanOrEqual(100);
    const plan = all[0] as Extract<PlanEvent, { event: 'plan' }>;
    const ends = all.filter((e) => e.event === 'step-end').map((e) => (e as { step: number }).step);
    // Every step ends exactly once; the device operations end in plan order (read-only steps are decided before the first write).
    expect([...ends].sort((a, b) => a - b)).toEqual(plan.steps.map((s) => s.step));
    const opEnds = ends.filter((i) => !isReadOnlyKind(plan.steps[i]!.kind));
    expect(opEnds).toEqual([...opEnds].sort((a, b) => a - b));
    const pct = all.filter((e) => e.event === 'progress').map((e) => (e as { percent: number }).percent);
    expect(pct).toEqual([...pct].sort((a, b) => a - b));
  });
});
