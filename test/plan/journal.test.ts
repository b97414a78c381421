// The resume rule (src/plan/journal.ts): what --resume may skip, on plans
// built to hit each clause, and the journal file's atomic rewrite.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { entryFor, journalPath, JournalWriter, planIdentity, readJournal, resumeDecision, safeName, type Journal, type ResumeNow } from '../../src/plan/journal.js';
import { stepLabel } from '../../src/plan/runner.js';
import { FlashPlanSchema, isDeviceOp, type FlashPlan, type PlanStep } from '../../src/plan/schema.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const flash = (partition: string, file = `images/${partition}.img`, slot?: string): PlanStep => ({ kind: 'flash', line: 1, onFailure: 'abort', partition, file, ...(slot ? { flags: { slot } } : {}) });
const erase = (partition: string): PlanStep => ({ kind: 'erase', line: 1, onFailure: 'abort', partition });

function planOf(steps: PlanStep[]): FlashPlan {
  return FlashPlanSchema.parse({ version: 1, source: { script: 'flash_all.sh', dialect: 'sh', mode: 'clean', family: 'xiaomi' }, warnings: [], steps: steps.map((s, i) => ({ ...s, line: i + 1 })) });
}

const md5 = (file: string) => `md5-of-${file}`;
const digests = (changed: string[] = []) => (file: string) => ({ md5: changed.includes(file) ? 'new' : md5(file), size: 10 });

/** A journal that shows the first `n` device operations of `plan` done, with today's digests. */
function journalOf(plan: FlashPlan, n: number, over: Partial<Journal> = {}): Journal {
  const entries = plan.steps
    .map((s, i) => [s, i] as const)
    .filter(([s]) => isDeviceOp(s))
    .slice(0, n)
    .map(([s, i]) => entryFor(i, s, stepLabel(s), s.kind === 'flash' ? digests()(s.file) : undefined, '2026-01-01T00:00:00.000Z'));
  return { version: 1, ...now(plan), startedAt: 'T0', updatedAt: 'T1', steps: entries, ...over };
}

function now(plan: FlashPlan, over: Partial<ResumeNow> = {}): ResumeNow {
  return { serial: 'S1', plan: planIdentity(plan), rom: '/rom', runs: '1'.repeat(plan.steps.length), ...over };
}

function decide(plan: FlashPlan, journal: Journal, opts: { now?: Partial<ResumeNow>; changed?: string[]; runs?: boolean[]; deferred?: number[] } = {}) {
  return resumeDecision(plan, opts.runs ?? plan.steps.map(() => true), new Set(opts.deferred ?? []), journal, now(plan, opts.now), digests(opts.changed), stepLabel, isDeviceOp);
}

describe('resumeDecision', () => {
  const plan = planOf([erase('boot'), flash('xbl'), flash('abl'), flash('tz'), flash('modem'), flash('boot'), { kind: 'reboot', line: 1, onFailure: 'abort' }]);

  it('skips the completed flashes of the prefix; the erase runs again; the first step not done and all after run', () => {
    const d = decide(plan, journalOf(plan, 4)); // erase, xbl, abl, tz done; modem failed
    expect([...d.skip.keys()]).toEqual([1, 2, 3]);
    expect([...d.again.keys()]).toEqual([0]);
    expect(d.resumeAt).toBe(4);
    expect(d.ignored).toBeUndefined();
  });

  it('a changed image is flashed again; the others are still skipped', () => {
    const d = decide(plan, journalOf(plan, 4), { changed: ['images/abl.img'] });
    expect([...d.skip.keys()]).toEqual([1, 3]);
    expect(d.again.get(2)).toMatch(/images\/abl\.img changed/);
  });

  it('a flash after an erase of the same partition that runs again is never skipped (slot suffixes count as the same partition)', () => {
    const p = planOf([flash('misc'), erase('boot_a'), flash('boot'), flash('dtbo')]);
    const d = decide(p, journalOf(p, 4));
    expect([...d.skip.keys()]).toEqual([0, 3]);
    expect([...d.again.keys()]).toEqual([1, 2]);
  });

  it('a partition flashed twice: once the first is sent again, the second is too', () => {
    const p = planOf([flash('logo', 'images/a.img'), flash('logo', 'images/b.img'), flash('dtbo')]);
    expect([...decide(p, journalOf(p, 3)).skip.keys()]).toEqual([0, 1, 2]);
    const d = decide(p, journalOf(p, 3), { changed: ['images/a.img'] });
    expect([...d.skip.keys()]).toEqual([2]);
    expect([...d.again.keys()]).toEqual([0, 1]);
  });

  it('the CRC-list pseudo-partitions are bootloader state: sent again, and they do not stop later skips', () => {
    const p = planOf([flash('crclist', 'images/crclist.txt'), flash('sparsecrclist', 'images/sparsecrclist.txt'), flash('xbl'), flash('tz')]);
    const d = decide(p, journalOf(p, 3));
    expect([...d.skip.keys()]).toEqual([2]);
    expect(d.again.get(0)).toMatch(/bootloader state/);
    expect(d.resumeAt).toBe(3);
  });

  it('-w makes userdata, cache and metadata flashes after it run again', () => {
    const p = planOf([{ kind: 'wipe', line: 1, onFailure: 'abort' }, flash('userdata'), flash('cache'), flash('system')]);
    expect([...decide(p, journalOf(p, 4)).skip.keys()]).toEqual([3]);
  });

  it.each([
    ['set-active', { kind: 'set-active', line: 1, onFailure: 'abort', slot: 'a' }],
    ['reboot bootloader', { kind: 'reboot', line: 1, onFailure: 'abort', target: 'bootloader' }],
    ['oem', { kind: 'oem', line: 1, onFailure: 'abort', args: ['foo'] }],
    ['lock', { kind: 'lock', line: 1, onFailure: 'abort', command: 'flashing lock' }],
    ['flashing unlock', { kind: 'flashing', line: 1, onFailure: 'abort', sub: 'unlock' }],
  ] as Array<[string, PlanStep]>)('%s ends the resumable prefix even when the journal shows it and later flashes done', (_n, barrier) => {
    const p = planOf([flash('xbl'), barrier, flash('abl'), flash('tz')]);
    const d = decide(p, journalOf(p, 3));
    expect([...d.skip.keys()]).toEqual([0]);
    expect(d.resumeAt).toBe(1);
    expect(d.endsBecause).toMatch(/changes the device's state/);
  });

  it('a step phase 1 could not decide ends the prefix', () => {
    const p = planOf([flash('xbl'), flash('abl'), flash('tz')]);
    const d = decide(p, journalOf(p, 3), { deferred: [1] });
    expect([...d.skip.keys()]).toEqual([0]);
    expect(d.resumeAt).toBe(1);
  });

  it('a gap in the journal ends the prefix there (nothing after it is skipped, even if recorded)', () => {
    const j = journalOf(plan, 6);
    j.steps = j.steps.filter((e) => e.step !== 2);
    const d = decide(plan, j);
    expect([...d.skip.keys()]).toEqual([1]);
    expect(d.resumeAt).toBe(2);
  });

  it.each([
    ['another serial', { serial: 'S2' }, /for device S1, not S2/],
    ['another ROM folder', { rom: '/other' }, /ROM in \/rom/],
    ['other steps run', { runs: '0111111' }, /answers differently/],
    ['another current slot', { slot: 'b' }, /current slot was \(none\) and is now b/],
    ['fastbootd now', { userspace: 'yes' }, /not in fastbootd then/],
  ] as Array<[string, Partial<ResumeNow>, RegExp]>)('ignored for %s: nothing skipped', (_n, over, why) => {
    const d = decide(plan, journalOf(plan, 4), { now: over });
    expect(d.skip.size).toBe(0);
    expect(d.ignored).toMatch(why);
  });

  it('ignored for another plan (a step added) and planIdentity ignores where the ROM lies', () => {
    const other = planOf([...plan.steps, flash('cust')]);
    const d = resumeDecision(other, other.steps.map(() => true), new Set(), journalOf(plan, 4), now(other, { runs: '1'.repeat(plan.steps.length) }), digests(), stepLabel, isDeviceOp);
    expect(d.ignored).toMatch(/another ROM or plan/);
    expect(planIdentity({ ...plan, source: { ...plan.source, rom: '/x' } })).toBe(planIdentity(plan));
  });
});

describe('journal file', () => {
  it('is rewritten whole after each step (no temp files left), read back by readJournal, removed on completion', async () => {
    const file = journalPath(dir, 'tcp:1/x');
    expect(path.basename(file)).toMatch(/^tcp_1_x-[0-9a-f]{8}\.json$/);
    expect(safeName('ABC123')).toBe('ABC123');
    expect(safeName('AB/C')).not.toBe(safeName('AB:C'));
    const w = new JournalWriter(file, { serial: 'tcp:1/x', plan: 'p', rom: '/rom', runs: '11', startedAt: 'T0' });
    await w.start();
    expect((await readJournal(file)) as unknown).toMatchObject({ journal: { steps: [] } });
    await w.record({ step: 0, kind: 'flash', label: 'flash a images/a', at: 'T1' });
    await w.record({ step: 1, kind: 'flash', label: 'flash b images/b', at: 'T2' });
    expect(JSON.parse(readFileSync(file, 'utf8')).steps.map((e: { step: number }) => e.step)).toEqual([0, 1]);
    expect(readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await w.complete();
    expect(await readJournal(file)).toBeUndefined();
  });

  it('a damaged journal is reported unreadable, never used', async () => {
    const file = journalPath(dir, 'BROKEN');
    const w = new JournalWriter(file, { serial: 'BROKEN', plan: 'p', rom: '/rom', runs: '1', startedAt: 'T0' });
    await w.start();
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 20));
    expect(await readJournal(file)).toMatchObject({ unreadable: expect.any(String) });
    writeFileSync(file, JSON.stringify({ version: 1, serial: 'BROKEN' }));
    expect(await readJournal(file)).toMatchObject({ unreadable: expect.stringMatching(/plan/) });
  });

  it('a write that fails is reported once and does not throw', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const said: string[] = [];
    const w = new JournalWriter(path.join(blocker, 'j', 'S.json'), { serial: 'S', plan: 'p', rom: '/rom', runs: '1', startedAt: 'T0' }, (m) => said.push(m));
    await w.start();
    await w.record({ step: 0, kind: 'erase', label: 'erase boot', at: 'T1' });
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/cannot write the resume journal/);
  });
});
