// Events a plan run emits, one schema per event name. `--json` writes them one
// per line on stdout; the TTY and plain renderers are driven by the same
// stream. Names and fields are a public contract: add, never rename.
import { z } from '../zod.js';

const Base = {
  /** The device as the user names it (-s value, usb:PORTPATH, tcp:HOST:PORT). */
  device: z.string(),
  /** ISO-8601 timestamp. */
  time: z.string(),
};

const StepRef = {
  /** 0-based index into the plan's steps. */
  step: z.number().int().nonnegative(),
  kind: z.string(),
  /** 1-based line in the script (0 = synthesised). */
  line: z.number().int().nonnegative(),
  /** Human summary, e.g. "flash xbl ← images/xbl.elf". */
  label: z.string(),
};

export const StepStatusSchema = z.enum(['ok', 'failed', 'skipped', 'warning']);
export type StepStatus = z.infer<typeof StepStatusSchema>;

export const PlanEventSchema = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('plan'),
    ...Base,
    script: z.string(),
    mode: z.string(),
    rom: z.string().optional(),
    dryRun: z.boolean(),
    /** Bytes of every image the plan sends (whole-plan percentage is by bytes). */
    totalBytes: z.number().int().nonnegative(),
    steps: z.array(z.object({ ...StepRef, bytes: z.number().int().nonnegative().optional() })),
    warnings: z.array(z.string()),
  }),
  z.object({
    event: z.literal('step-start'),
    ...Base,
    ...StepRef,
    bytesTotal: z.number().int().nonnegative().optional(),
  }),
  z.object({
    event: z.literal('progress'),
    ...Base,
    step: z.number().int().nonnegative(),
    /** Bytes of this step's image sent so far. */
    bytesDone: z.number().int().nonnegative(),
    bytesTotal: z.number().int().nonnegative(),
    rateBytesPerSec: z.number().nonnegative(),
    /** Whole plan, by bytes. */
    planBytesDone: z.number().int().nonnegative(),
    planBytesTotal: z.number().int().nonnegative(),
    percent: z.number().min(0).max(100),
  }),
  z.object({
    event: z.literal('verify'),
    ...Base,
    /** Image being checked against md5sum.xml / crclist.txt before the first write (phase 1). */
    file: z.string(),
    bytesDone: z.number().int().nonnegative(),
    bytesTotal: z.number().int().nonnegative(),
  }),
  z.object({
    event: z.literal('step-end'),
    ...Base,
    ...StepRef,
    status: StepStatusSchema,
    durationMs: z.number().nonnegative(),
    /** Why it failed / was skipped / warned; the script's own message when it has one. */
    message: z.string().optional(),
    /** --resume: skipped because the journal shows it done with the same image (status 'skipped'). */
    resumed: z.boolean().optional(),
  }),
  z.object({
    event: z.literal('resume'),
    ...Base,
    /** The journal read (cache folder, journals/SERIAL.json). */
    journal: z.string(),
    /** The device serial the journal is for. */
    serial: z.string(),
    /** Steps that will be skipped (0-based), each reported again by a step-end with resumed: true. */
    skipped: z.array(z.number().int().nonnegative()),
    /** Steps the journal shows done that run again all the same (erase, format, -w; a changed image). */
    again: z.array(z.number().int().nonnegative()),
    /** The first step that runs because the journal does not show it done or it ends the resumable part. */
    resumeAt: z.number().int().nonnegative().optional(),
    /** Set when nothing is skipped because of the journal: why (absent, other device, other ROM or plan, ...). */
    ignored: z.string().optional(),
    /** One sentence for people. */
    message: z.string(),
  }),
  z.object({
    event: z.literal('message'),
    ...Base,
    level: z.enum(['info', 'warning']),
    /** 'device' = an INFO/TEXT line from the bootloader. */
    source: z.enum(['miflash', 'device']),
    text: z.string(),
  }),
  z.object({
    event: z.literal('done'),
    ...Base,
    /** 'warning' = finished, but a step warned (a lock would not have run). */
    status: z.enum(['ok', 'warning', 'dry-run']),
    durationMs: z.number().nonnegative(),
    stepsRun: z.number().int().nonnegative(),
    bytesSent: z.number().int().nonnegative(),
    warnings: z.array(z.string()),
    /** --resume: steps skipped because the journal shows them done. */
    stepsResumed: z.number().int().nonnegative().optional(),
    /** The per-device log file of this run (commands, replies, step outcomes and timing). */
    logFile: z.string().optional(),
  }),
  z.object({
    event: z.literal('error'),
    ...Base,
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    exitCode: z.number().int(),
    /** The failed step, when a step failed (absent for refusals before any write). */
    step: z.number().int().nonnegative().optional(),
    /** The per-device log file of this run, when one was written. */
    logFile: z.string().optional(),
  }),
]);

export type PlanEvent = z.infer<typeof PlanEventSchema>;
export type PlanEventName = PlanEvent['event'];
export type PlanEventOf<N extends PlanEventName> = Extract<PlanEvent, { event: N }>;

/** Event names, in the order a run emits them (documentation and tests). */
export const PLAN_EVENT_NAMES = ['plan', 'resume', 'step-start', 'progress', 'verify', 'step-end', 'message', 'done', 'error'] as const satisfies readonly PlanEventName[];

// The throttle lives in its own module: the runner needs it, not the schemas above.
export { PROGRESS_MAX_PER_SECOND, progressThrottle } from './progress-throttle.js';

/** JSON Schema of the event stream (for consumers of --json). */
export function planEventJsonSchema(): unknown {
  return z.toJSONSchema(PlanEventSchema);
}
