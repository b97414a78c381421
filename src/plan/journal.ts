// The resume journal of `miflash flash ROM`: one JSON file per device serial
// under the cache folder (cache-dir.ts: journals/<serial>.json), rewritten
// atomically (temp file, fsync, rename) after every completed step, so a crash,
// a pulled cable or Ctrl-C leaves the last complete version. A run that
// finishes removes it. `--resume` reads it and skips only what is provably
// safe to skip (resumeDecision below); without --resume it is written and not
// read. The journal only knows what miflash did: it is never a claim about
// what the device holds after someone else flashed it.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from '../zod.js';
import type { FlashPlan, PlanStep } from './schema.js';

export const JOURNAL_VERSION = 1;

const EntrySchema = z.object({
  /** 0-based index into the plan's steps. */
  step: z.number().int().nonnegative(),
  kind: z.string(),
  label: z.string(),
  /** flash: the partition as the plan names it, the --slot flag, the image and its MD5 and size when it was sent. */
  partition: z.string().optional(),
  slot: z.string().optional(),
  file: z.string().optional(),
  md5: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
  /** ISO-8601: when the step completed. */
  at: z.string(),
});
export type JournalEntry = z.infer<typeof EntrySchema>;

/** What a run must share with the journal's run for anything to be skipped. */
const HeadSchema = z.object({
  /** getvar serialno of the device. */
  serial: z.string(),
  /** sha256 of the plan (script, mode, every step with its files and flags): planIdentity(). */
  plan: z.string(),
  /** The ROM root the images were read from. */
  rom: z.string(),
  /** Which steps phase 1 decided to run ('1'/'0' per step): other device answers, other steps. */
  runs: z.string(),
  /** getvar current-slot and is-userspace when the run began (absent = not answered). */
  slot: z.string().optional(),
  userspace: z.string().optional(),
  startedAt: z.string(),
});
export type JournalHead = z.infer<typeof HeadSchema>;

export const JournalSchema = HeadSchema.extend({
  version: z.literal(JOURNAL_VERSION),
  updatedAt: z.string(),
  /** Completed steps, in the order they completed (always plan order). */
  steps: z.array(EntrySchema),
});
export type Journal = z.infer<typeof JournalSchema>;

/** Folder of the journals: journals/ in the cache folder. */
export function journalDir(cache: string): string {
  return join(cache, 'journals');
}

/** A name safe on every filesystem; a serial that had to be changed gets a hash so two serials never share a file. */
export function safeName(serial: string): string {
  const clean = serial.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  if (clean === serial && clean !== '' && !clean.startsWith('.')) return clean;
  return `${clean}-${createHash('sha256').update(serial).digest('hex').slice(0, 8)}`;
}

export function journalPath(cache: string, serial: string): string {
  return join(journalDir(cache), `${safeName(serial)}.json`);
}

/** Identity of a plan: everything that decides what is sent (not where the ROM lies, not the warnings). */
export function planIdentity(plan: FlashPlan): string {
  const { rom: _rom, ...source } = plan.source;
  return createHash('sha256').update(JSON.stringify({ source, product: plan.product ?? null, steps: plan.steps })).digest('hex');
}

export type ReadJournal = { journal: Journal } | { unreadable: string } | undefined;

/** The journal for this serial; undefined when there is none; `unreadable` when it is not a journal of this version. */
export async function readJournal(path: string): Promise<ReadJournal> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { unreadable: (err as Error).message };
  }
  try {
    const parsed = JournalSchema.safeParse(JSON.parse(text));
    if (parsed.success) return { journal: parsed.data };
    const issue = parsed.error.issues[0]!;
    return { unreadable: `${issue.path.join('.') || '(root)'}: ${issue.message}` };
  } catch (err) {
    return { unreadable: (err as Error).message };
  }
}

let tmpCounter = 0;

/** Writes `data` to `path` so that a reader sees the old file or the new one, never a part (temp, fsync, rename). */
export async function writeAtomically(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * The journal of one run. Every write replaces the whole file atomically;
 * a write that fails (read-only or full disk) is reported once through
 * `onError` and the run goes on: an old journal lists fewer completed steps,
 * which only means fewer are skipped next time.
 */
export class JournalWriter {
  private readonly journal: Journal;
  private failed = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    head: JournalHead,
    private readonly onError: (message: string) => void = () => {},
  ) {
    this.journal = { version: JOURNAL_VERSION, ...head, updatedAt: head.startedAt, steps: [] };
  }

  /** Creates (or replaces) the file: from now on it describes this run. */
  start(): Promise<void> {
    return this.write();
  }

  /** Records a completed step and writes the journal before the next step starts. */
  record(entry: JournalEntry): Promise<void> {
    this.journal.steps.push(entry);
    this.journal.updatedAt = entry.at;
    return this.write();
  }

  /** The run finished: nothing is left to resume. */
  async complete(): Promise<void> {
    await this.queue;
    await unlink(this.path).catch(() => {});
  }

  private write(): Promise<void> {
    const data = JSON.stringify(this.journal);
    this.queue = this.queue.then(async () => {
      try {
        await mkdir(join(this.path, '..'), { recursive: true });
        await writeAtomically(this.path, data);
      } catch (err) {
        if (!this.failed) this.onError(`cannot write the resume journal ${this.path} (${(err as Error).message}); a later --resume will skip less`);
        this.failed = true;
      }
    });
    return this.queue;
  }
}

/** A journal entry for a step that completed now. */
export function entryFor(i: number, s: PlanStep, label: string, digest: { md5: string; size: number } | undefined, at: string): JournalEntry {
  if (s.kind !== 'flash') return { step: i, kind: s.kind, label, at };
  return {
    step: i,
    kind: s.kind,
    label,
    partition: s.partition,
    ...(s.flags?.slot ? { slot: s.flags.slot } : {}),
    file: s.file,
    ...(digest ? { md5: digest.md5, size: digest.size } : {}),
    at,
  };
}

// ---- the resume rule ----

/**
 * Device operations that may stand in the resumable prefix. Erase, format and
 * -w are always sent again (they are idempotent and their partition is then
 * "touched", see below); only flashes are ever skipped, and never those of
 * the CRC-list pseudo-partitions (STATE_NOT_CONTENT). Every other operation
 * (reboot, set_active, oem, flashing, lock, update, boot, logical partitions,
 * snapshot-update) changes the device's mode, slot, lock state or layout: the
 * state the later steps were sent in cannot be assumed, so it ends the prefix
 * and it and everything after it run again.
 */
const PREFIX_KINDS = new Set<PlanStep['kind']>(['flash', 'erase', 'format', 'wipe']);

/**
 * Xiaomi pseudo-partitions: `flash crclist` / `flash sparsecrclist` hand the
 * bootloader the CRC lists it checks later flashes against. That is bootloader
 * state, not partition contents (a reboot may drop it): always sent again.
 */
const STATE_NOT_CONTENT = /^(sparse)?crclist$/i;

/** Partitions a step writes, slot suffix dropped (a write to boot_a and one to boot count as the same partition: conservative). */
function touched(s: PlanStep): string[] {
  const base = (p: string) => p.replace(/_(a|b|ab)$/, '').toLowerCase();
  switch (s.kind) {
    case 'flash':
    case 'erase':
    case 'format':
      return [base(s.partition)];
    case 'wipe':
      return ['userdata', 'cache', 'metadata'];
    default:
      return [];
  }
}

export interface ResumeNow {
  serial: string;
  plan: string;
  rom: string;
  runs: string;
  slot?: string | undefined;
  userspace?: string | undefined;
}

export interface ResumeDecision {
  /** Steps skipped, with why (for the step-end message). */
  skip: Map<number, string>;
  /** Steps the journal shows done that run again all the same, with why. */
  again: Map<number, string>;
  /** Why nothing is skipped (journal ignored), when so. */
  ignored?: string;
  /** The first step that runs because the journal does not show it done (or a barrier), for the summary. */
  resumeAt?: number;
  /** Why the prefix ends there. */
  endsBecause?: string;
}

/**
 * Which steps `--resume` skips. The journal must belong to this device serial,
 * this plan, this ROM folder, the same phase-1 decisions, the same current slot
 * and fastboot mode; otherwise nothing is skipped. Then the plan is walked in
 * order: read-only steps (queries, checks, notes, sleeps) are passed over; the
 * walk ends at the first device operation that the journal does not show done,
 * that is not a flash/erase/format/-w, or that phase 1 could not decide. Within
 * that prefix a flash is skipped only if the journal shows it done with the
 * same partition, slot flag, file and image (MD5 and size as read now), is not
 * a CRC-list pseudo-partition, and no
 * operation sent again before it in the prefix wrote the same partition (an
 * erase sent again, or a flash whose image changed, would otherwise leave the
 * partition differing from a clean run).
 */
export function resumeDecision(
  plan: FlashPlan,
  runs: readonly boolean[],
  deferred: ReadonlySet<number>,
  journal: Journal,
  now: ResumeNow,
  digestOf: (file: string) => { md5: string; size: number } | undefined,
  label: (s: PlanStep) => string,
  isDeviceOp: (s: PlanStep) => boolean,
): ResumeDecision {
  const skip = new Map<number, string>();
  const again = new Map<number, string>();
  const mismatch = (
    [
      [journal.serial !== now.serial, `it is for device ${journal.serial}, not ${now.serial}`],
      [journal.plan !== now.plan, 'it was written for another ROM or plan (the steps or their files differ)'],
      [journal.rom !== now.rom, `it was written for the ROM in ${journal.rom}, not ${now.rom}`],
      [journal.runs !== now.runs, 'the device answers differently now, so other steps would run'],
      [journal.slot !== now.slot, `the device's current slot was ${journal.slot ?? '(none)'} and is now ${now.slot ?? '(none)'}`],
      [journal.userspace !== now.userspace, `the device was ${journal.userspace === 'yes' ? '' : 'not '}in fastbootd then and is ${now.userspace === 'yes' ? '' : 'not '}now`],
    ] as const
  ).find(([bad]) => bad);
  if (mismatch) return { skip, again, ignored: mismatch[1] };
  const done = new Map(journal.steps.map((e) => [e.step, e]));
  const dirty = new Set<string>();
  for (const [i, s] of plan.steps.entries()) {
    if (!runs[i]) continue;
    if (deferred.has(i)) return { skip, again, resumeAt: i, endsBecause: 'it depends on an answer the device gives later in the run' };
    if (!isDeviceOp(s)) continue;
    const entry = done.get(i);
    if (!entry || entry.kind !== s.kind || entry.label !== label(s)) return { skip, again, resumeAt: i, endsBecause: 'the interrupted run did not complete it' };
    if (!PREFIX_KINDS.has(s.kind)) return { skip, again, resumeAt: i, endsBecause: `'${label(s)}' changes the device's state beyond a partition's contents, so it and everything after it run again` };
    const parts = touched(s);
    if (s.kind !== 'flash') {
      again.set(i, `${s.kind} is never skipped`);
      parts.forEach((p) => dirty.add(p));
      continue;
    }
    if (STATE_NOT_CONTENT.test(s.partition)) {
      again.set(i, `${s.partition} is bootloader state, not a partition's contents: never skipped`);
      continue;
    }
    const digest = digestOf(s.file);
    const same = digest !== undefined && entry.md5 === digest.md5 && entry.size === digest.size && entry.partition === s.partition && entry.file === s.file && (entry.slot ?? '') === (s.flags?.slot ?? '');
    if (same && !parts.some((p) => dirty.has(p))) {
      skip.set(i, `resumed: done at ${entry.at} in the interrupted run, image unchanged (MD5 ${digest.md5})`);
      continue;
    }
    again.set(i, !same ? `${s.file} changed since the interrupted run (or its digest is unknown)` : `${s.partition} was written again earlier in this run`);
    parts.forEach((p) => dirty.add(p));
  }
  return { skip, again };
}
