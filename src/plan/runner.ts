// Runs a flash plan against one device in two phases:
//  1. read-only: getvars only. Every gate, every step condition, the download
//     limit, and the ROM preflight (existence, sparse validity, md5sum.xml,
//     crclist.txt, sparsecrclist.txt CRC and piece count at that limit). Any
//     refusal here means nothing but getvars reached the device.
//  2. the device operations, in script order, exactly as the vendor script
//     sends them (same partition names, `_ab` included), with the failure
//     policy of the grammar (§6): a failed flash/format/set_active always
//     stops the plan, a failed erase of a vendor-unchecked line warns, a
//     failed unchecked reboot is reported, and a lock never runs after any
//     failure or warning.
// A `reboot bootloader|fastboot` that more operations follow is followed: the
// runner waits for the link to drop and for the same device (serial checked)
// to come back on the same address, within --reboot-timeout (reconnect.ts);
// a reboot elsewhere with operations after it is refused in phase 1. `-w` and
// `format` erase and say the filesystem comes from Android (wipe.ts);
// `update image-*.zip` is checked in phase 1 and flashed in AOSP flashall
// order (update-zip.ts).
import { constants, existsSync } from 'node:fs';
import { access, copyFile, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, BadInputError, DeviceFailError, ExitCode, GateRefusedError, MiflashError, TransportError } from '../errors.js';
import type { FastbootClient } from '../fastboot/client.js';
import { readAndroidInfoFromZip } from '../rom/rom.js';
import { DEFAULT_REBOOT_TIMEOUT_MS, reconnect, waitForDisconnect } from './reconnect.js';
// update-zip.ts (zip reading, CRC checks) loads only for a plan with an update zip (Google factory images).
import { formatCommand, wipeNote, wipeUserData } from './wipe.js';
import { DeviceLink } from '../fastboot/link.js';
import type { DeviceEvent } from '../fastboot/events.js';
import { deviceSparseLimit, flashImage } from '../fastboot/flash-image.js';
// The sparse modules themselves, not sparse/index.js: its converters would load zlib and crypto at start-up.
import { readSparseFile } from '../sparse/file.js';
import { RESPARSE_LIMIT } from '../sparse/prepare.js';
import { RAW_BLOCK_SIZE } from '../sparse/raw-scan.js';
import { minResparseLimit } from '../sparse/resparse.js';
import { erasePartition } from '../fastboot/erase.js';
import { createLogicalPartition, deleteLogicalPartition, resizeLogicalPartition, snapshotUpdate } from '../fastboot/logical.js';
import { bootImage } from '../fastboot/ram.js';
import { resolveSlotOption } from '../fastboot/slots.js';
import type { Rom } from '../rom/rom.js';
import { touchesUserData } from '../rom/script/index.js';
// preflight.ts (hashing: worker threads, crypto, zlib) loads when the image checks run, after the first device command.
import type { PreflightResult } from './preflight.js';
import { exitGateCode } from './checks.js';
import { DeviceFacts, describeGate, evaluateGate, type GateStep } from './gates.js';
import type { PlanEvent, StepStatus } from './events.js';
import { progressThrottle } from './progress-throttle.js';
import { ScriptState } from './script-state.js';
import { queryArgv } from './predicate.js';
import { FlashPlanSchema, isDeviceOp, isGate, type FlashPlan, type PlanStep, type StepCondition, type StepOf } from './schema.js';

export interface ConfirmRequest {
  kind: 'user-data' | 'lock';
  device: string;
  question: string;
  /** For 'lock': the answer the user must type (the product name). */
  expect?: string;
}

export interface RunPlanOptions {
  /** The ROM the plan's files are relative to. */
  rom: Rom;
  client: FastbootClient;
  /** How the device is named in events (-s value). */
  deviceId: string;
  /** -S: split images larger than this; undefined/0 = the device's max-download-size. */
  sparseLimit?: number;
  /** Phase 1 only: read getvars, evaluate gates and preflight, report what would run. */
  dryRun?: boolean;
  /** Asked before a plan that erases/flashes user data and again before a lock; false = abort. Absent = refuse such plans. */
  confirm?: (req: ConfirmRequest) => Promise<boolean>;
  onEvent?: (e: PlanEvent) => void;
  /** Raw fastboot step events (AOSP-style "Sending 'boot' ..." lines) for the human renderers. */
  onDeviceEvent?: (e: DeviceEvent) => void;
  signal?: AbortSignal;
  /** Run steps marked foreign (lines without $* / %*). Default: skip them with a warning. */
  allowForeign?: boolean;
  /** Shared between runs of the same plan and ROM on several devices: image checks run once per download limit. */
  preflightCache?: Map<string, Promise<PreflightResult>>;
  /** Clock for event timestamps and throttling (tests). */
  now?: () => number;
  /**
   * Opens a fresh client on the same device (same address / USB serial), used
   * after a `reboot bootloader|fastboot` that more device operations follow.
   * Absent = such plans are refused before anything is written.
   */
  reconnect?: () => Promise<FastbootClient>;
  /** How long to wait for the device to come back after such a reboot (default 60 s). */
  rebootTimeoutMs?: number;
  /** Poll interval while waiting for the device (tests). */
  reconnectIntervalMs?: number;
  /** The device's serial number as the host lists it (`fastboot devices` in a script); default: getvar serialno. */
  deviceSerial?: string;
  /** Where update-zip images are extracted before flashing (default os.tmpdir()). */
  tmpDir?: string;
  /** AOSP client options for `update` steps (miflash update ZIP): --slot, --skip-secondary, --force, --set-active, --disable-fastboot-info. */
  update?: UpdateStepOptions;
  /** Where -w / format look for mke2fs / mkfs.f2fs (default: $PATH and the sbin folders; [] = none, they erase only). */
  mkfsSearchPath?: readonly string[];
  /**
   * The resume journal (miflash flash ROM; journal.ts): kept in DIR/journals/SERIAL.json,
   * rewritten after every completed step and removed when the run completes. With
   * resume: true it is read first and the steps it shows done that are safe to skip
   * are skipped (journal.ts resumeDecision); gates and checks always run again.
   */
  journal?: {
    dir: string;
    resume: boolean;
    /**
     * Several devices in one run: false when another of them already answered this
     * serial number (clones may share one); this device then keeps no journal.
     */
    claim?: (serial: string) => boolean;
  };
}

export interface UpdateStepOptions {
  slot?: string;
  skipSecondary?: boolean;
  force?: boolean;
  /** --set-active[=SLOT]: '' = the slot being flashed / the current one. */
  setActive?: string;
  disableFastbootInfo?: boolean;
  /** --exclude-dynamic-partitions (v35): only partitions outside super, all from the bootloader. */
  excludeDynamicPartitions?: boolean;
  /** --fs-options for the filesystems `-w` builds after the images (v35 WipeTask passes fs_options). */
  fsOptions?: import('../fastboot/mkfs.js').FsOptions;
}

export interface StepOutcome {
  step: number;
  kind: PlanStep['kind'];
  label: string;
  status: StepStatus | 'not-run';
  message?: string;
}

export interface RunPlanResult {
  status: 'ok' | 'warning' | 'dry-run';
  /** --resume: steps skipped because the journal shows them done. */
  stepsResumed?: number;
  /** Device operations that ran (or, in a dry run, would run), as `fastboot` arguments. */
  operations: string[];
  steps: StepOutcome[];
  warnings: string[];
  bytesSent: number;
  preflight: PreflightResult;
  /** getvar answers read in phase 1. */
  facts: Record<string, string | undefined>;
  limit: number;
}

/** Longest `sleep` a plan may ask for (vendor scripts sleep a few seconds). */
export const MAX_SLEEP_SECONDS = 600;

/** Scratch partitions whose failed erase only warns (grammar §6). */
const SCRATCH = /^(misc|config|DDR|ddr|mdtp|apdp|multiimgoem|imagefv)(_a|_b|_ab)?$|^imagefv/;

/**
 * The partitions whose image a ROM script's `fastboot --disable-verity / --disable-verification flash P`
 * gets patched: exactly these names, the v29 client's rule (its flash_buf). ROM scripts follow v29, not
 * v35, on purpose: the reference for a vendor script is that script run by a real shell with Debian's
 * AOSP client, which is v29 (the shell oracle in test/helpers/oracle.ts; issue 8: send exactly what the
 * AOSP client sends). v35 also patches any name ending in vbmeta / vbmeta_a / vbmeta_b (guest_vbmeta)
 * and the vbmeta in boot on a device without vbmeta partition; `miflash flash PARTITION FILE` follows
 * v35 (src/fastboot/flash-image.ts), as does update / flashall. Likewise no AVB footer copy here (v35 only).
 * test/cli/aosp-host-parity.test.ts compares a script's downloads with the v29 client's.
 */
const VBMETA = /^vbmeta(_a|_b)?$/;

export function stepLabel(s: PlanStep): string {
  switch (s.kind) {
    case 'flash': {
      const f = s.flags;
      const opts = [f?.slot ? `--slot=${f.slot}` : '', f?.disableVerity ? '--disable-verity' : '', f?.disableVerification ? '--disable-verification' : '']
        .filter(Boolean)
        .join(' ');
      return `flash ${opts ? `${opts} ` : ''}${s.partition} ${s.file}`;
    }
    case 'erase':
      return `erase ${s.partition}`;
    case 'format':
      return `format${s.fsType ? `:${s.fsType}` : ''} ${s.partition}`;
    case 'set-active':
      return `set_active ${s.slot}`;
    case 'reboot':
      return s.target ? `reboot ${s.target}` : 'reboot';
    case 'oem':
      return `oem ${s.args.join(' ')}`;
    case 'flashing':
      return `flashing ${s.sub}`;
    case 'lock':
      return s.command;
    case 'wipe':
      return '-w (wipe userdata and cache)';
    case 'update':
      return `${s.wipe ? '-w ' : ''}${s.skipReboot ? '--skip-reboot ' : ''}update ${s.file}`;
    case 'sleep':
      return `sleep ${s.seconds}`;
    case 'note':
      return s.text;
    case 'query':
      return `ask ${queryArgv(s.query).join(' ')}`;
    case 'exit':
      return s.status === 0 ? 'the script ends here' : `check: ${s.message ?? `the script stops with status ${s.status}`}`;
    case 'boot':
      return `boot ${s.file}`;
    case 'fetch':
      return `fetch ${s.partition} ${s.output}`;
    case 'logical-partition':
      return `${s.action}-logical-partition ${s.partition}${s.size !== undefined ? ` ${s.size}` : ''}`;
    case 'wipe-super':
      return `wipe-super ${s.file}`;
    case 'snapshot-update':
      return `snapshot-update${s.action ? ` ${s.action}` : ''}`;
    default:
      return describeGate(s as GateStep);
  }
}

/**
 * Does the step erase or overwrite user data? userdata or metadata under any
 * case or slot suffix (a hand-edited plan may spell them so), and unlocking,
 * which makes the bootloader wipe the data.
 */
export function touchesData(s: PlanStep): boolean {
  if (touchesUserData(s)) return true;
  switch (s.kind) {
    case 'flash':
    case 'erase':
    case 'format':
      return /^(userdata|metadata)(_a|_b|_ab)?$/i.test(s.partition);
    case 'flashing':
      return s.sub === 'unlock' || s.sub === 'unlock_critical';
    case 'oem':
      return /^unlock/i.test(s.args[0]!);
    default:
      return false;
  }
}

/** Does the step lock the bootloader? Also an `oem lock…` or `flashing lock_critical` that a plan carries as an opaque step. */
export function isLock(s: PlanStep): boolean {
  return s.kind === 'lock' || (s.kind === 'oem' && /^lock/i.test(s.args[0]!)) || (s.kind === 'flashing' && s.sub === 'lock_critical');
}

class RunContext {
  readonly events: PlanEvent[] = [];
  readonly throttle: (e: PlanEvent) => boolean;
  readonly clock: () => number;

  constructor(private readonly opts: RunPlanOptions) {
    this.clock = opts.now ?? (() => performance.now());
    this.throttle = progressThrottle(this.clock);
  }

  emit(e: DistributiveOmit<PlanEvent, 'device' | 'time'>): void {
    const full = { ...e, device: this.opts.deviceId, time: new Date().toISOString() } as PlanEvent;
    if (!this.throttle(full)) return;
    this.opts.onEvent?.(full);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export async function runPlan(planInput: FlashPlan, opts: RunPlanOptions): Promise<RunPlanResult> {
  const ctx = new RunContext(opts);
  let current: number | undefined;
  try {
    return await run(planInput, opts, ctx, (i) => (current = i));
  } catch (err) {
    const e = err instanceof MiflashError ? err : undefined;
    ctx.emit({
      event: 'error',
      code: e?.code ?? 'internal',
      message: err instanceof Error ? err.message : String(err),
      ...(e?.hint ? { hint: e.hint } : {}),
      exitCode: e?.exitCode ?? ExitCode.INTERNAL,
      ...(current !== undefined ? { step: current } : {}),
    });
    throw err;
  }
}

async function run(planInput: FlashPlan, opts: RunPlanOptions, ctx: RunContext, setCurrent: (i: number | undefined) => void): Promise<RunPlanResult> {
  const parsed = FlashPlanSchema.safeParse(planInput);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadInputError(`invalid flash plan: ${issue.path.join('.') || '(root)'}: ${issue.message}`, { code: 'plan.invalid' });
  }
  const plan = parsed.data;
  const { client, rom } = opts;
  const started = ctx.clock();
  const warnings: string[] = [];
  const outcomes: StepOutcome[] = plan.steps.map((s, i) => ({ step: i, kind: s.kind, label: stepLabel(s), status: 'not-run' }));

  // ---- host-only checks: nothing sent yet ----
  hostChecks(plan, opts);
  await readMissingAndroidInfo(plan, rom);
  const sizes = new Map<string, number>();
  // All at once: one stat after another costs a thread-pool round trip each (~50 images).
  await Promise.all(
    plan.steps.map(async (s) => {
      if ((s.kind !== 'flash' && s.kind !== 'update') || (s.foreign && !opts.allowForeign)) return;
      const path = join(rom.root, s.file);
      if (s.kind === 'update') {
        // Bytes of the images inside (the central directory only; phase 1 checks the data).
        const { listZip, imagesInZip } = await import('./update-zip.js');
        const listed = await listZip(path, s.file).catch(() => undefined);
        if (listed) sizes.set(s.file, imagesInZip(listed).reduce((n, i) => n + i.size, 0));
        return;
      }
      const st = await stat(path).catch(() => undefined);
      if (st) sizes.set(s.file, st.size);
    }),
  );
  const stepBytes = (s: PlanStep) => (s.kind === 'flash' || s.kind === 'update' ? (sizes.get(s.file) ?? 0) : 0);
  const totalBytes = plan.steps.reduce((n, s) => n + (s.foreign && !opts.allowForeign ? 0 : stepBytes(s)), 0);
  ctx.emit({
    event: 'plan',
    script: plan.source.script,
    mode: plan.source.mode,
    rom: rom.root,
    dryRun: Boolean(opts.dryRun),
    totalBytes,
    steps: plan.steps.map((s, i) => ({ step: i, kind: s.kind, line: s.line, label: stepLabel(s), ...(s.kind === 'flash' || s.kind === 'update' ? { bytes: stepBytes(s) } : {}) })),
    warnings: plan.warnings,
  });
  for (const w of plan.warnings) ctx.emit({ event: 'message', level: 'warning', source: 'miflash', text: w });

  // ---- phase 1: read-only ----
  // Walk the plan in order up to its first device operation that will run:
  // ask the queries, evaluate the gates, exits and every step's predicate.
  // Steps after that whose predicate reads a query asked later (after a
  // reboot into fastbootd, say) are decided in place in phase 2; every check
  // that can be decided now is decided now, so a refusal comes before any write.
  const facts = new DeviceFacts(client);
  const state = new ScriptState(plan, (f) => existsSync(join(rom.root, f)));
  const serial = async () => opts.deviceSerial ?? (await facts.get('serialno')) ?? opts.deviceId;
  const runs: boolean[] = [];
  const deferred = new Set<number>();
  const skipWhy: Array<string | undefined> = [];
  let firstWrite = -1;
  let endAt = plan.steps.length;
  // The journal and the device log are named after the serial: asked first (read-only, remembered).
  if (opts.journal) await serial();
  for (const [i, s] of plan.steps.entries()) {
    if (i > endAt) {
      runs.push(false);
      skipWhy.push(`the script ends at line ${plan.steps[endAt]!.line}`);
      continue;
    }
    if (s.foreign && !opts.allowForeign && s.kind !== 'query') {
      runs.push(false);
      skipWhy.push(`line ${s.line} is not vendor content (no $* / %*); skipped`);
      continue;
    }
    let when: boolean | undefined = true;
    if (s.when) when = state.readable(s.when) ? state.holds(s.when) : undefined;
    if (when === true && s.condition && !(await conditionHolds(s.condition, facts, rom))) when = false;
    skipWhy.push(when === false ? `condition not met: ${s.when ? `not (${state.describe(s.when)})` : describeCondition(s.condition!)}` : undefined);
    runs.push(when !== false);
    if (when === undefined) {
      deferred.add(i);
      continue;
    }
    if (!when) {
      if (s.kind === 'exit' && s.status !== 0) {
        // A check the device passes: the script does not stop here.
        outcomes[i]!.status = 'ok';
        ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label: stepLabel(s), status: 'ok', durationMs: 0, message: 'passed' });
      }
      continue;
    }
    if (s.kind === 'query') {
      if (firstWrite >= 0) {
        deferred.add(i);
        continue;
      }
      await askQuery(s, i, { state, client, serial, ctx, setCurrent, outcomes, facts });
      continue;
    }
    if (s.kind === 'exit') {
      if (s.onFailure === 'ignore') {
        ignoredCheck(s, i, { state, ctx, warnings, outcomes });
        continue;
      }
      if (s.status === 0) {
        endAt = i;
        continue;
      }
      const out = exitOutcome(s, plan, state, false);
      outcomes[i]!.status = 'failed';
      ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label: stepLabel(s), status: 'failed', durationMs: 0, message: out.message });
      throw out;
    }
    if (isGate(s)) {
      const label = stepLabel(s);
      const t0 = ctx.clock();
      setCurrent(i);
      ctx.emit({ event: 'step-start', step: i, kind: s.kind, line: s.line, label });
      const out = await evaluateGate(s as GateStep, facts);
      const durationMs = ctx.clock() - t0;
      if (out.ok) {
        outcomes[i]!.status = 'ok';
        ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label, status: 'ok', durationMs, message: out.detail });
        continue;
      }
      if (s.onFailure === 'ignore' && s.kind !== 'gate.unknown') {
        const text = `${label}: ${out.detail} (the vendor script does not stop here; a lock will not run)`;
        warnings.push(text);
        outcomes[i]!.status = 'warning';
        ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label, status: 'warning', durationMs, message: out.detail });
        continue;
      }
      outcomes[i]!.status = 'failed';
      ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label, status: 'failed', durationMs, message: out.error!.message });
      throw out.error!;
    }
    if (firstWrite < 0 && isDeviceOp(s)) firstWrite = i;
  }
  setCurrent(undefined);
  await implicitAntiRollback(plan, rom, facts, ctx);

  await checkSlots(plan, runs, client);
  const rebootsToFollow = reconnectPoints(plan, runs, opts);
  // The serial number identifies the device again after a reboot.
  const serialBefore = rebootsToFollow.size > 0 ? await facts.get('serialno') : undefined;

  const limit = opts.sparseLimit !== undefined && opts.sparseLimit > 0 ? opts.sparseLimit : await deviceSparseLimit(client);
  const effective: FlashPlan = { ...plan, steps: plan.steps.filter((_, i) => runs[i]) };
  const onVerify = (p: { file: string; done: number; total: number }) => {
    // Checking a multi-GB ROM takes minutes: Ctrl-C stops it at the next buffer (nothing has been written yet).
    if (opts.signal?.aborted) throw new AbortedError(`aborted by the user while checking ${p.file}; nothing has been written to the device`);
    ctx.emit({ event: 'verify', file: p.file, bytesDone: p.done, bytesTotal: p.total });
  };
  const check = async () => {
    const { checkRomImages } = await import('./preflight.js');
    // A journal records each flashed image's MD5: every image is read (once; the digest cache remembers it).
    const result = await checkRomImages(rom, effective, { limit, includeForeign: Boolean(opts.allowForeign), onProgress: onVerify, ...(opts.journal ? { digestAll: true } : {}) });
    for (const s of effective.steps) {
      if (s.kind !== 'update' || (s.foreign && !opts.allowForeign)) continue;
      const { checkUpdateZip } = await import('./update-zip.js');
      const z = await checkUpdateZip(join(rom.root, s.file), s.file, {
        requiredPartitions: await requiredPartitions(plan, s.file, facts),
        onProgress: onVerify,
        ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
        ...(opts.update?.disableFastbootInfo ? { disableFastbootInfo: true } : {}),
        ...(opts.update?.excludeDynamicPartitions ? { excludeDynamic: true } : {}),
      });
      // --exclude-dynamic-partitions never goes to fastbootd: no reconnect needed.
      if (z.dynamic && !opts.reconnect && !opts.update?.excludeDynamicPartitions) {
        throw new BadInputError(`${s.file} (script line ${s.line}) has super_empty.img: flashing it reboots into fastbootd, and this caller cannot reconnect to the device`, {
          code: 'plan.reconnect-unavailable',
          hint: 'nothing has been written to the device',
        });
      }
      for (const i of z.images) result.images.push({ file: `${s.file}/${i.image}`, partitions: [i.partition], size: i.size, sparse: i.sparse });
    }
    return result;
  };
  // Several devices flashing one ROM share the (streamed, possibly long) image checks.
  const key = `${limit}|${runs.map((r) => (r ? 1 : 0)).join('')}${opts.journal ? '|digests' : ''}`;
  let pending = opts.preflightCache?.get(key);
  if (!pending) {
    pending = check();
    opts.preflightCache?.set(key, pending);
  }
  const preflight = await pending;
  for (const w of preflight.warnings) {
    ctx.emit({ event: 'message', level: 'info', source: 'miflash', text: w });
  }
  await checkSplitLimit(effective, preflight, rom, limit);
  const vbmetaPatches = await checkVbmeta(effective, rom);

  const operations = plan.steps.flatMap((s, i) => (runs[i] && isDeviceOp(s) ? [stepLabel(s)] : []));
  // A dry run never writes the journal: it reads it only to say what --resume would skip.
  const journal = opts.journal && (!opts.dryRun || opts.journal.resume) ? await openJournal(plan, { opts, ctx, facts, serial, runs, deferred, preflight }) : undefined;

  const factsSnapshot = facts.snapshot();

  if (opts.dryRun) {
    for (const [i, s] of plan.steps.entries()) {
      if (isGate(s) || outcomes[i]!.status !== 'not-run') continue;
      outcomes[i]!.status = 'skipped';
      const later = deferred.has(i) ? ` if ${state.describe(s.when!)} (decided when the device gets there)` : '';
      const resumed = journal?.decision?.skip.get(i);
      const message = resumed ? `dry run: would skip (${resumed})` : runs[i] ? `dry run: would ${stepLabel(s)}${later}` : skipWhy[i]!;
      outcomes[i]!.message = message;
      ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label: stepLabel(s), status: 'skipped', durationMs: 0, message });
    }
    ctx.emit({ event: 'done', status: 'dry-run', durationMs: ctx.clock() - started, stepsRun: 0, bytesSent: 0, warnings });
    return { status: 'dry-run', operations, steps: outcomes, warnings, bytesSent: 0, preflight, facts: factsSnapshot, limit };
  }

  // ---- confirmations (after the gates, before the first write) ----
  // `||`: a device answering an empty product must not make an empty answer confirm a lock.
  const product = (await facts.get('product')) || plan.product?.device || 'this device';
  const willRun = plan.steps.filter((_, i) => runs[i]);
  if (willRun.some(touchesData)) {
    await ask(opts, {
      kind: 'user-data',
      device: opts.deviceId,
      question: `${opts.deviceId} (${product}): ${plan.source.script} erases all user data (userdata/metadata). Continue?`,
    });
  }
  if (willRun.some(isLock)) {
    await ask(opts, {
      kind: 'lock',
      device: opts.deviceId,
      question: `${opts.deviceId}: ${plan.source.script} ends by LOCKING the bootloader; a locked phone with a bad image may not boot. Type the product name (${product}) to lock`,
      expect: product,
    });
  }

  // ---- phase 2: device operations ----
  let planBytesDone = 0;
  const link = new Link(client);
  let stepsRun = 0;
  let stepsResumed = 0;
  await journal?.writer.start();
  const tmp = vbmetaPatches.size > 0 ? await mkdtemp(join(tmpdir(), 'miflash-vbmeta-')) : undefined;
  try {
    let ended: PlanStep | undefined;
    for (const [i, s] of plan.steps.entries()) {
      if (isGate(s) && !deferred.has(i) && outcomes[i]!.status !== 'not-run') continue;
      if (opts.signal?.aborted) throw new AbortedError(`aborted by the user before step ${i + 1} (${stepLabel(s)})`);
      const label = stepLabel(s);
      const base = { step: i, kind: s.kind, line: s.line, label };
      if (ended && runs[i]) {
        runs[i] = false;
        skipWhy[i] = `the script ends at line ${ended.line}`;
      }
      if (deferred.has(i) && runs[i]) {
        // Decided now, with the answers of the queries asked since phase 1.
        if (s.when && !state.readable(s.when)) throw new BadInputError(`${plan.source.script} line ${s.line}: the plan reads a query it has not asked`, { code: 'plan.invalid' });
        if (s.when && !state.holds(s.when)) {
          runs[i] = false;
          skipWhy[i] = `condition not met: not (${state.describe(s.when)})`;
        }
      }
      if (runs[i] && s.kind === 'query') {
        if (outcomes[i]!.status === 'not-run') await askQuery(s, i, { state, client: link.client, serial, ctx, setCurrent, outcomes });
        continue;
      }
      if (runs[i] && s.kind === 'exit' && s.onFailure === 'ignore') {
        if (outcomes[i]!.status === 'not-run') ignoredCheck(s, i, { state, ctx, warnings, outcomes });
        continue;
      }
      if (runs[i] && s.kind === 'exit') {
        outcomes[i]!.status = s.status === 0 ? 'ok' : 'failed';
        if (s.status === 0) {
          ended = s;
          ctx.emit({ event: 'step-end', ...base, status: 'ok', durationMs: 0, message: 'the script ends here' });
          continue;
        }
        const out = exitOutcome(s, plan, state, stepsRun > 0);
        ctx.emit({ event: 'step-end', ...base, status: 'failed', durationMs: 0, message: out.message });
        throw out;
      }
      if (runs[i] && isGate(s)) {
        const out = await evaluateGate(s as GateStep, facts);
        if (!out.ok) {
          outcomes[i]!.status = 'failed';
          ctx.emit({ event: 'step-end', ...base, status: 'failed', durationMs: 0, message: out.error!.message });
          throw out.error!;
        }
        outcomes[i]!.status = 'ok';
        continue;
      }
      if (s.kind === 'query' || s.kind === 'exit' || isGate(s)) {
        if (outcomes[i]!.status === 'not-run') {
          outcomes[i]!.status = 'skipped';
          ctx.emit({ event: 'step-end', ...base, status: 'skipped', durationMs: 0, message: skipWhy[i] ?? 'not reached' });
        }
        continue;
      }
      if (s.kind === 'note' && runs[i]) {
        ctx.emit({ event: 'message', level: 'info', source: 'miflash', text: s.text });
        outcomes[i]!.status = 'ok';
        continue;
      }
      if (!runs[i]) {
        outcomes[i]!.status = 'skipped';
        outcomes[i]!.message = skipWhy[i];
        if (s.foreign) warnings.push(skipWhy[i]!);
        else planBytesDone += stepBytes(s); // counted in the plan's total: keep the percentage honest
        ctx.emit({ event: 'step-end', ...base, status: 'skipped', durationMs: 0, message: skipWhy[i]! });
        continue;
      }
      const resumed = journal?.decision?.skip.get(i);
      if (resumed !== undefined) {
        // Done in the interrupted run with this very image (journal.ts says when that is safe).
        outcomes[i]!.status = 'skipped';
        outcomes[i]!.message = resumed;
        planBytesDone += stepBytes(s);
        stepsResumed++;
        ctx.emit({ event: 'step-end', ...base, status: 'skipped', durationMs: 0, message: resumed, resumed: true });
        await journal!.writer.record(journal!.previous.get(i)!);
        continue;
      }
      if (isLock(s) && warnings.length > 0) {
        const message = `not locking: an earlier step warned (${warnings[0]})`;
        outcomes[i]!.status = 'skipped';
        outcomes[i]!.message = message;
        ctx.emit({ event: 'step-end', ...base, status: 'skipped', durationMs: 0, message });
        throw new DeviceFailError(`${plan.source.script} line ${s.line}: ${message}; the device was flashed but is still unlocked`, {
          code: 'plan.lock-refused',
          hint: 'fix the cause and flash again; miflash never locks a device after a failure or warning',
        });
      }
      setCurrent(i);
      const bytesTotal = stepBytes(s);
      const t0 = ctx.clock();
      ctx.emit({ event: 'step-start', ...base, ...(bytesTotal > 0 ? { bytesTotal } : {}) });
      stepsRun++;
      const stepStartBytes = planBytesDone;
      let piecesDone = 0;
      let pieceDone = 0;
      const onFb = (e: DeviceEvent) => {
        opts.onDeviceEvent?.(e);
        if (e.type === 'step-progress') {
          pieceDone = e.bytesDone;
          const done = Math.min(bytesTotal, piecesDone + pieceDone);
          const planDone = Math.min(totalBytes, stepStartBytes + done);
          ctx.emit({
            event: 'progress',
            step: i,
            bytesDone: done,
            bytesTotal,
            rateBytesPerSec: Math.max(0, e.rateBytesPerSec),
            planBytesDone: planDone,
            planBytesTotal: totalBytes,
            percent: totalBytes > 0 ? Math.min(100, (planDone / totalBytes) * 100) : 100,
          });
        } else if (e.type === 'step-done' && pieceDone > 0) {
          piecesDone += pieceDone;
          pieceDone = 0;
        } else if (e.type === 'warning') {
          ctx.emit({ event: 'message', level: 'warning', source: 'miflash', text: e.message });
        }
      };
      try {
        await perform(s, { opts, rom, onFb, vbmeta: vbmetaPatches, tmp, link, emit: (e) => ctx.emit(e) });
      } catch (err) {
        const durationMs = ctx.clock() - t0;
        const message = err instanceof Error ? err.message : String(err);
        const policy = failurePolicy(s, err, plan.steps.slice(i + 1).filter((_, j) => runs[i + 1 + j]));
        if (policy === 'abort') {
          outcomes[i]!.status = 'failed';
          outcomes[i]!.message = message;
          ctx.emit({ event: 'step-end', ...base, status: 'failed', durationMs, message });
          throw withStep(err, plan, s);
        }
        const text = `${label} failed (${message}); the vendor script does not check this line, continuing`;
        warnings.push(text);
        outcomes[i]!.status = 'warning';
        outcomes[i]!.message = message;
        ctx.emit({ event: 'step-end', ...base, status: 'warning', durationMs, message });
        ctx.emit({ event: 'message', level: 'warning', source: 'miflash', text });
        planBytesDone = stepStartBytes + bytesTotal;
        continue;
      }
      planBytesDone = stepStartBytes + bytesTotal;
      outcomes[i]!.status = 'ok';
      ctx.emit({ event: 'step-end', ...base, status: 'ok', durationMs: ctx.clock() - t0 });
      // Written before the next step starts: a crash from here on leaves this step recorded.
      if (journal) await journal.writer.record(journal.entry(i, s, label));
      if (rebootsToFollow.has(i)) await followReboot(s as StepOf<'reboot'>, i, { opts, ctx, link, expectSerial: serialBefore });
    }
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    await link.closeOwn();
  }
  setCurrent(undefined);
  await journal?.writer.complete();
  const bytesSent = link.bytesSent();
  const status = warnings.length > 0 ? 'warning' : 'ok';
  const resumedCount = opts.journal?.resume ? { stepsResumed } : {};
  ctx.emit({ event: 'done', status, durationMs: ctx.clock() - started, stepsRun, bytesSent, warnings, ...resumedCount });
  return { status, operations, steps: outcomes, warnings, bytesSent, preflight, facts: factsSnapshot, limit, ...resumedCount };
}

interface JournalContext {
  opts: RunPlanOptions;
  ctx: RunContext;
  facts: DeviceFacts;
  serial: () => Promise<string>;
  runs: boolean[];
  deferred: Set<number>;
  preflight: PreflightResult;
}

interface OpenJournal {
  writer: import('./journal.js').JournalWriter;
  /** --resume with a journal that applies: what is skipped. */
  decision: import('./journal.js').ResumeDecision | undefined;
  /** The journal's entries by step (carried into the new journal for skipped steps). */
  previous: Map<number, import('./journal.js').JournalEntry>;
  entry(i: number, s: PlanStep, label: string): import('./journal.js').JournalEntry;
}

/**
 * After phase 1 (every gate and image checked again): the journal of this
 * device serial, and with --resume what it lets us skip, announced in a
 * `resume` event. The writer replaces the old journal when phase 2 starts.
 */
async function openJournal(plan: FlashPlan, j: JournalContext): Promise<OpenJournal | undefined> {
  const J = await import('./journal.js');
  const { dir, resume, claim } = j.opts.journal!;
  const who = await j.serial();
  if (claim && !claim(who)) {
    // Two phones answering one serial would share (and overwrite) one journal, and a resume could skip on one what the other did.
    j.ctx.emit({ event: 'message', level: 'warning', source: 'miflash', text: `another device in this run also answers serial number ${who}: no resume journal for ${j.opts.deviceId}${resume ? ', and --resume skips nothing on it' : ''}` });
    return undefined;
  }
  const slot = await j.facts.get('current-slot');
  const userspace = await j.facts.get('is-userspace');
  const head: import('./journal.js').JournalHead = {
    serial: who,
    plan: J.planIdentity(plan),
    rom: j.opts.rom.root,
    runs: j.runs.map((r) => (r ? '1' : '0')).join(''),
    ...(slot !== undefined ? { slot } : {}),
    ...(userspace !== undefined ? { userspace } : {}),
    startedAt: new Date().toISOString(),
  };
  const path = J.journalPath(dir, who);
  const digests = new Map(j.preflight.images.flatMap((i) => (i.digest ? [[i.file, i.digest] as const] : [])));
  const writer = new J.JournalWriter(path, head, (text) => j.ctx.emit({ event: 'message', level: 'warning', source: 'miflash', text }));
  const out: OpenJournal = {
    writer,
    decision: undefined,
    previous: new Map(),
    entry: (i, s, label) => J.entryFor(i, s, label, s.kind === 'flash' ? digests.get(s.file) : undefined, new Date().toISOString()),
  };
  if (!resume) return out;
  const read = await J.readJournal(path);
  const announce = (e: { skipped?: number[]; again?: number[]; resumeAt?: number; ignored?: string; message: string }) =>
    j.ctx.emit({ event: 'resume', journal: path, serial: who, skipped: e.skipped ?? [], again: e.again ?? [], ...(e.resumeAt !== undefined ? { resumeAt: e.resumeAt } : {}), ...(e.ignored ? { ignored: e.ignored } : {}), message: e.message });
  if (read === undefined) {
    announce({ ignored: 'no journal', message: `--resume: no journal for device ${who} (${path}); every step runs` });
    return out;
  }
  if ('unreadable' in read) {
    announce({ ignored: `unreadable: ${read.unreadable}`, message: `--resume: the journal ${path} cannot be used (${read.unreadable}); every step runs` });
    return out;
  }
  const d = J.resumeDecision(plan, j.runs, j.deferred, read.journal, { ...head }, (f) => digests.get(f), stepLabel, isDeviceOp);
  if (d.ignored) {
    announce({ ignored: d.ignored, message: `--resume: not using the journal ${path}: ${d.ignored}; every step runs` });
    return out;
  }
  out.decision = d;
  out.previous = new Map(read.journal.steps.map((e) => [e.step, e]));
  const skipped = [...d.skip.keys()];
  const again = [...d.again.keys()];
  const at = d.resumeAt !== undefined ? plan.steps[d.resumeAt]! : undefined;
  const range = skipped.length > 0 ? ` (steps ${skipped[0]! + 1}–${skipped.at(-1)! + 1})` : '';
  const message =
    `--resume: ${skipped.length} flash${skipped.length === 1 ? '' : 'es'} done in the interrupted run of ${read.journal.startedAt} ${skipped.length === 1 ? 'is' : 'are'} skipped${range}` +
    (again.length > 0 ? `; ${again.length} step${again.length === 1 ? '' : 's'} it completed run${again.length === 1 ? 's' : ''} again (${again.map((i) => `${i + 1}: ${d.again.get(i)}`).join('; ')})` : '') +
    (at ? `; from step ${d.resumeAt! + 1} (${stepLabel(at)}) everything runs: ${d.endsBecause}` : '');
  announce({ skipped, again, ...(d.resumeAt !== undefined ? { resumeAt: d.resumeAt } : {}), message });
  return out;
}

/**
 * A package with images/anti_version.txt whose script has no anti-rollback
 * check (hand-edited plans, some derived scripts) is still checked: flashing
 * below the device's anti version can brick it.
 */
async function implicitAntiRollback(plan: FlashPlan, rom: Rom, facts: DeviceFacts, ctx: RunContext): Promise<void> {
  // A blocking gate at most as permissive as the package's file covers it; a hand-edited
  // gate with a higher version (or one that only warns) does not.
  const antiVersion = rom.antiVersion;
  if (antiVersion === undefined || plan.steps.some((s) => s.kind === 'gate.anti-rollback' && s.onFailure === 'abort' && s.packageVersion <= antiVersion)) return;
  const out = await evaluateGate(
    { kind: 'gate.anti-rollback', line: 0, onFailure: 'abort', packageVersion: antiVersion, variable: 'anti', from: 'anti_version.txt' },
    facts,
  );
  if (!out.ok) throw out.error!;
  ctx.emit({ event: 'message', level: 'info', source: 'miflash', text: `images/anti_version.txt: ${out.detail}` });
}

async function ask(opts: RunPlanOptions, req: ConfirmRequest): Promise<void> {
  if (!opts.confirm) {
    throw new AbortedError(`${req.device}: confirmation needed (${req.kind === 'lock' ? 'the plan locks the bootloader' : 'the plan erases user data'}) and none can be asked`, {
      hint: 'pass --yes to confirm in advance',
    });
  }
  if (!(await opts.confirm(req))) {
    throw new AbortedError(`${req.device}: not confirmed; nothing has been written to the device`);
  }
}

/**
 * What a failure of `s` means for the rest of the plan. A checked line aborts.
 * An unchecked one aborts anyway for flash/format/set_active (a half-written
 * boot chain can brick the device) and for a broken link; an erase of a
 * scratch partition or of one flashed later, a reboot and vendor oem commands
 * warn and continue.
 */
export function failurePolicy(s: PlanStep, err: unknown, later: PlanStep[] = []): 'abort' | 'warn' {
  if (err instanceof AbortedError || err instanceof TransportError) return 'abort';
  if (!(err instanceof DeviceFailError)) return 'abort';
  if (s.onFailure === 'abort') return 'abort';
  switch (s.kind) {
    case 'flash':
    case 'format':
    case 'set-active':
    case 'update':
    case 'wipe':
      return 'abort';
    case 'erase':
      // Only a scratch partition, or one the plan writes again later (grammar §6).
      return SCRATCH.test(s.partition) || later.some((l) => l.kind === 'flash' && l.partition === s.partition) ? 'warn' : 'abort';
    case 'reboot':
    case 'oem':
    case 'flashing':
    case 'lock':
      return 'warn';
    default:
      return 'abort';
  }
}

/** Prefixes a step failure with the script line and the vendor's own message. */
function withStep(err: unknown, plan: FlashPlan, s: PlanStep): unknown {
  if (err instanceof MiflashError) {
    const where = `${plan.source.script} line ${s.line} (${stepLabel(s)})`;
    if (!err.message.startsWith(where)) err.message = `${where}${s.message ? ` [${s.message}]` : ''}: ${err.message}`;
  }
  return err;
}

async function conditionHolds(c: StepCondition, facts: DeviceFacts, rom: Rom): Promise<boolean> {
  switch (c.kind) {
    case 'crc-supported':
      return (await facts.get('crc')) === '1';
    case 'partition-exists':
      return (await facts.get(`partition-type:${c.partition}`)) !== undefined;
    case 'file-exists':
    case 'file-missing': {
      const there = await access(join(rom.root, c.file), constants.F_OK).then(
        () => true,
        () => false,
      );
      return there === (c.kind === 'file-exists');
    }
  }
}

function describeCondition(c: StepCondition): string {
  switch (c.kind) {
    case 'crc-supported':
      return "the device does not answer 'getvar crc' with 1";
    case 'partition-exists':
      return `the device has no partition ${c.partition}`;
    case 'file-exists':
      return `${c.file} is not in the ROM`;
    case 'file-missing':
      return `${c.file} is in the ROM`;
  }
}

/**
 * An image larger than the download limit goes out in pieces of one block or
 * more plus headers; a limit too small for that (-S 4K, a tiny device
 * max-download-size) is refused now rather than at that image, half-way.
 */
async function checkSplitLimit(plan: FlashPlan, preflight: PreflightResult, rom: Rom, limit: number): Promise<void> {
  if (limit <= 0) return;
  const flashed = new Set(plan.steps.flatMap((s) => (s.kind === 'flash' ? [s.file] : [])));
  const maxLen = Math.min(limit, RESPARSE_LIMIT);
  for (const i of preflight.images) {
    if (i.size <= limit || i.partitions.length === 0) continue; // fits, or an update zip itself (its images are listed too)
    const blockSize = i.sparse && flashed.has(i.file) ? (await readSparseFile(join(rom.root, i.file))).header.blockSize : RAW_BLOCK_SIZE;
    const need = minResparseLimit(blockSize);
    if (maxLen < need) {
      throw new BadInputError(
        `${i.file} (partition ${i.partitions[0]}): ${i.size} bytes must be split at the download limit of ${limit} bytes, but a piece needs at least ${need} bytes (one ${blockSize}-byte block plus headers)`,
        { code: 'sparse.limit', hint: "use a larger -S, or none (the device's max-download-size); nothing has been written to the device" },
      );
    }
  }
}

/** vbmeta flags: byte 123 of the AVB header (0x01 verity, 0x02 verification), as the AOSP client patches them. */
const AVB_FLAGS_OFFSET = 123;
const AVB_HEADER_SIZE = 256;

async function checkVbmeta(plan: FlashPlan, rom: Rom): Promise<Map<PlanStep, number>> {
  const out = new Map<PlanStep, number>();
  for (const s of plan.steps) {
    if (s.kind !== 'flash' || !(s.flags?.disableVerity || s.flags?.disableVerification)) continue;
    if (!VBMETA.test(s.partition)) continue; // the AOSP client ignores the flags for other partitions
    const path = join(rom.root, s.file);
    const fh = await open(path, 'r');
    try {
      const head = Buffer.alloc(AVB_HEADER_SIZE);
      const { bytesRead } = await fh.read(head, 0, AVB_HEADER_SIZE, 0);
      if (bytesRead < AVB_HEADER_SIZE || head.toString('latin1', 0, 4) !== 'AVB0') {
        throw new BadInputError(`${s.file} (partition ${s.partition}): not a vbmeta image (no AVB0 header), so --disable-verity/--disable-verification cannot be applied (script line ${s.line})`, {
          code: 'rom.vbmeta-invalid',
          hint: 'nothing has been written to the device',
        });
      }
      out.set(s, (s.flags.disableVerity ? 0x01 : 0) | (s.flags.disableVerification ? 0x02 : 0));
    } finally {
      await fh.close();
    }
  }
  return out;
}

async function patchedVbmeta(src: string, flags: number, tmp: string, name: string): Promise<string> {
  const dst = join(tmp, `${name}.img`);
  await copyFile(src, dst);
  const fh = await open(dst, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, AVB_FLAGS_OFFSET);
    b[0]! |= flags;
    await fh.write(b, 0, 1, AVB_FLAGS_OFFSET);
  } finally {
    await fh.close();
  }
  return dst;
}

interface PerformContext {
  opts: RunPlanOptions;
  rom: Rom;
  onFb: (e: DeviceEvent) => void;
  vbmeta: Map<PlanStep, number>;
  tmp: string | undefined;
  link: Link;
  emit: (e: DistributiveOmit<PlanEvent, 'device' | 'time'>) => void;
}

async function perform(s: PlanStep, c: PerformContext): Promise<void> {
  const { signal, sparseLimit } = c.opts;
  const client = c.link.client;
  switch (s.kind) {
    case 'flash': {
      let path = join(c.rom.root, s.file);
      const flags = c.vbmeta.get(s);
      if (flags !== undefined) path = await patchedVbmeta(path, flags, c.tmp!, s.partition);
      await flashImage(client, s.partition, path, {
        ...(sparseLimit !== undefined ? { sparseLimit } : {}),
        ...(s.flags?.slot ? { slot: s.flags.slot } : {}),
        onEvent: c.onFb,
        ...(signal ? { signal } : {}),
      });
      return;
    }
    case 'erase':
      await erasePartition(client, s.partition, { onEvent: c.onFb });
      return;
    case 'set-active': {
      const slot = await resolveSlotOption(client, s.slot);
      await fbStep(c, `Setting current slot to '${slot}'`, () => client.setActive(slot));
      return;
    }
    case 'reboot':
      await fbStep(c, s.target ? `Rebooting into ${s.target}` : 'Rebooting', () => client.reboot(s.target));
      return;
    case 'oem':
      await fbStep(c, `oem ${s.args.join(' ')}`, () => client.oem(s.args));
      return;
    case 'flashing':
      await fbStep(c, `flashing ${s.sub}`, () => client.flashing(s.sub));
      return;
    case 'lock':
      await fbStep(c, s.command, () => client.command(s.command));
      return;
    case 'sleep':
      await sleep(s.seconds * 1000, signal);
      return;
    case 'wipe':
      await wipeWithNote(client, '-w', c);
      return;
    case 'format':
      await formatCommand(client, s.partition, {
        onEvent: c.onFb,
        ...(s.fsType ? { fsType: s.fsType } : {}),
        ...(sparseLimit !== undefined ? { sparseLimit } : {}),
        ...(signal ? { signal } : {}),
        ...(c.opts.mkfsSearchPath ? { searchPath: c.opts.mkfsSearchPath } : {}),
      });
      return;
    case 'update': {
      // update-super reboots into fastbootd: the link follows the device and the run goes on with the new client.
      const link = new DeviceLink(client, {
        deviceId: c.opts.deviceId,
        ...(c.opts.reconnect ? { reopen: c.opts.reconnect } : {}),
        ...(c.opts.rebootTimeoutMs !== undefined ? { rebootTimeoutMs: c.opts.rebootTimeoutMs } : {}),
        ...(c.opts.reconnectIntervalMs !== undefined ? { reconnectIntervalMs: c.opts.reconnectIntervalMs } : {}),
        ...(signal ? { signal } : {}),
        onEvent: c.onFb,
        onClient: (next) => c.link.replace(next),
      });
      const { runUpdate } = await import('./update-zip.js');
      await runUpdate(link, join(c.rom.root, s.file), s.file, {
        onEvent: c.onFb,
        wipe: s.wipe,
        ...(c.opts.update ?? {}),
        ...(signal ? { signal } : {}),
        ...(sparseLimit !== undefined ? { sparseLimit } : {}),
        ...(c.opts.tmpDir ? { tmpDir: c.opts.tmpDir } : {}),
      });
      const after = link.client;
      // AOSP order: images, then --set-active, then -w, then the reboot.
      if (c.opts.update?.setActive !== undefined) {
        const { currentSlot, resolveSlotOption } = await import('../fastboot/slots.js');
        // AOSP: --set-active without a slot activates the --slot being flashed ('all' = a), else the current slot.
        const wanted = c.opts.update.setActive || c.opts.update.slot || '';
        const resolved = wanted === '' ? await currentSlot(after) : await resolveSlotOption(after, wanted);
        const slot = resolved === 'all' ? 'a' : resolved;
        if (slot !== '') await fbStep(c, `Setting current slot to '${slot}'`, () => after.setActive(slot));
      }
      if (s.wipe) await wipeWithNote(after, '-w', c, c.opts.update?.fsOptions);
      if (!s.skipReboot) await fbStep(c, 'Rebooting', () => after.reboot());
      return;
    }
    case 'logical-partition':
      if (s.action === 'create') await createLogicalPartition(client, s.partition, s.size!, c.onFb);
      else if (s.action === 'delete') await deleteLogicalPartition(client, s.partition, c.onFb);
      else await resizeLogicalPartition(client, s.partition, s.size!, { onEvent: c.onFb });
      return;
    case 'snapshot-update':
      await snapshotUpdate(client, s.action, c.onFb);
      return;
    case 'boot':
      await bootImage(client, await readFile(join(c.rom.root, s.file)), { onEvent: c.onFb, ...(signal ? { signal } : {}) });
      return;
    default:
      throw new BadInputError(`step kind ${s.kind} cannot run`, { code: 'plan.unsupported-step' });
  }
}

async function wipeWithNote(client: FastbootClient, what: string, c: PerformContext, fsOptions?: import('../fastboot/mkfs.js').FsOptions): Promise<void> {
  const o = c.opts;
  const note = wipeNote(
    await wipeUserData(client, c.onFb, {
      ...(fsOptions ? { fsOptions } : {}),
      ...(o.sparseLimit !== undefined ? { sparseLimit: o.sparseLimit } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.mkfsSearchPath ? { searchPath: o.mkfsSearchPath } : {}),
    }),
    what,
  );
  if (note) c.emit({ event: 'message', level: 'warning', source: 'miflash', text: note });
}

async function fbStep(c: PerformContext, label: string, fn: () => Promise<unknown>): Promise<void> {
  const { step } = await import('../fastboot/events.js');
  await step(c.onFb, label, async () => {
    await fn();
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('aborted during a sleep step'));
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError('aborted during a sleep step'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The device link of a run: the caller's client, then one per reconnect (those are ours to close). */
class Link {
  private readonly own: FastbootClient[] = [];
  private readonly sentBefore: number;
  private readonly first: FastbootClient;

  constructor(public client: FastbootClient) {
    this.first = client;
    this.sentBefore = client.stats.bytesSent;
  }

  /** Switches to the client opened after a reboot; a previous one of ours is closed now (the caller closes its own). */
  async replace(next: FastbootClient): Promise<void> {
    const old = this.client;
    this.own.push(next);
    this.client = next;
    if (old !== this.first) await old.close().catch(() => {});
  }

  bytesSent(): number {
    return this.first.stats.bytesSent - this.sentBefore + this.own.reduce((n, c) => n + c.stats.bytesSent, 0);
  }

  async closeOwn(): Promise<void> {
    for (const c of this.own) await c.close().catch(() => {}); // closing twice is harmless
  }
}

// ---- host checks and reboots in the middle of a plan ----

/** Slots named by --slot and set_active exist on the device (getvars only), so a bad one stops the plan before its first write. */
async function checkSlots(plan: FlashPlan, runs: boolean[], client: FastbootClient): Promise<void> {
  for (const [i, s] of plan.steps.entries()) {
    if (!runs[i]) continue;
    const slot = s.kind === 'set-active' ? s.slot : s.kind === 'flash' ? s.flags?.slot : undefined;
    if (slot === undefined) continue;
    await resolveSlotOption(client, slot).catch((err: unknown) => {
      throw withStep(err, plan, s);
    });
  }
}

/** Checks that need neither the device nor the ROM's images. */
function hostChecks(plan: FlashPlan, opts: RunPlanOptions): void {
  const active = plan.steps.filter((s) => !(s.foreign && !opts.allowForeign));
  if (plan.source.mode === 'keep-data') {
    // planForRom refuses these already; a hand-edited plan must not get around it.
    const bad = active.find(touchesData);
    if (bad) {
      throw new BadInputError(`${plan.source.script} is a keep-data plan but line ${bad.line} (${stepLabel(bad)}) erases user data`, {
        code: 'plan.keep-data-violation',
        hint: 'nothing has been written to the device',
      });
    }
  }
  for (const s of active) {
    if (s.kind === 'wipe-super' || s.kind === 'fetch') {
      throw new BadInputError(`${plan.source.script} line ${s.line}: ${stepLabel(s)} is not supported by miflash's runner yet`, {
        code: 'plan.unsupported-step',
        hint: 'nothing has been written to the device',
      });
    }
    if (s.kind === 'sleep' && s.seconds > MAX_SLEEP_SECONDS) {
      throw new BadInputError(`${plan.source.script} line ${s.line}: sleep ${s.seconds} s is longer than the ${MAX_SLEEP_SECONDS} s miflash allows`, { code: 'plan.sleep-too-long' });
    }
  }
}

/** A hand-written plan may lack the requirements planForRom reads from the zip: read them now (host only). */
async function readMissingAndroidInfo(plan: FlashPlan, rom: Rom): Promise<void> {
  for (const [i, s] of plan.steps.entries()) {
    if (s.kind !== 'gate.android-info' || s.requirements !== null) continue;
    const path = join(rom.root, s.file);
    const there = await access(path, constants.R_OK).then(
      () => true,
      () => false,
    );
    if (!there) {
      throw new BadInputError(`${s.file} (script line ${s.line}): the update zip is missing from the ROM`, { code: 'rom.image-missing', hint: 'nothing has been written to the device' });
    }
    const { assertInsideRom } = await import('./preflight.js');
    await assertInsideRom(rom, s.file);
    const info = await readAndroidInfoFromZip(path);
    if (info) plan.steps[i] = { ...s, requirements: info.requirements };
  }
}

/** `require partition-exists=P` lines that apply to this device: AOSP makes P's image mandatory. */
async function requiredPartitions(plan: FlashPlan, file: string, facts: DeviceFacts): Promise<string[]> {
  const out: string[] = [];
  for (const s of plan.steps) {
    if (s.kind !== 'gate.android-info' || s.file !== file) continue;
    for (const r of s.requirements ?? []) {
      if (r.kind !== 'require' || r.variable !== 'partition-exists') continue;
      if (r.forProduct !== undefined && r.forProduct !== (await facts.get('product'))) continue;
      out.push(...r.values);
    }
  }
  return out;
}

/**
 * Steps after which the device must be followed through a reboot: a reboot
 * into the bootloader or fastbootd that more device operations follow. A
 * reboot elsewhere (Android, recovery, EDL) with operations after it is
 * refused: the device would not come back to fastboot by itself.
 */
function reconnectPoints(plan: FlashPlan, runs: boolean[], opts: RunPlanOptions): Set<number> {
  const live = plan.steps.map((s, i) => Boolean(runs[i]) && isDeviceOp(s));
  const out = new Set<number>();
  for (const [i, s] of plan.steps.entries()) {
    if (!live[i]) continue;
    const next = plan.steps.findIndex((_, j) => j > i && live[j]);
    if (next < 0) continue;
    const then = plan.steps[next]!;
    const leaves = s.kind === 'reboot' ? (s.target ?? 'android') : s.kind === 'update' && !s.skipReboot ? 'android (update reboots at the end)' : undefined;
    if (leaves === undefined) continue;
    if (s.kind === 'reboot' && (s.target === 'bootloader' || s.target === 'fastboot')) {
      if (!opts.reconnect) {
        throw new BadInputError(`${plan.source.script} line ${s.line}: the plan reboots into ${s.target} and continues (line ${then.line}: ${stepLabel(then)}), but this caller cannot reconnect to the device`, {
          code: 'plan.reconnect-unavailable',
        });
      }
      out.add(i);
      continue;
    }
    throw new BadInputError(
      `${plan.source.script} line ${s.line}: '${stepLabel(s)}' leaves fastboot for ${leaves}, but device operations follow (line ${then.line}: ${stepLabel(then)}); miflash cannot follow the device out of fastboot`,
      { code: 'plan.reboot-then-ops', hint: 'edit the plan (miflash plan --json) so that only reboot bootloader/fastboot is followed by more steps; nothing has been written to the device' },
    );
  }
  return out;
}

/** As AOSP after `reboot fastboot`: the device must now be userspace fastboot (fastbootd). */
async function checkUserspace(client: FastbootClient, s: StepOf<'reboot'>, deviceId: string): Promise<void> {
  const { getvarOrUndefined } = await import('../fastboot/slots.js');
  const v = (await getvarOrUndefined(client, 'is-userspace'))?.trim();
  if (v === 'yes') return;
  throw new DeviceFailError(`line ${s.line}: after 'reboot fastboot' ${deviceId} is not in userspace fastboot (getvar is-userspace: ${v ?? 'no answer'})`, {
    code: 'plan.not-fastbootd',
    hint: 'the device may have booted back into the bootloader: one or more components might be unbootable',
  });
}

interface FollowContext {
  opts: RunPlanOptions;
  ctx: RunContext;
  link: Link;
  expectSerial: string | undefined;
}

/** After a reboot into the bootloader/fastbootd: wait for the link to drop, then for the device to come back. */
async function followReboot(s: StepOf<'reboot'>, i: number, f: FollowContext): Promise<void> {
  const timeoutMs = f.opts.rebootTimeoutMs ?? DEFAULT_REBOOT_TIMEOUT_MS;
  const label = `wait for ${f.opts.deviceId} to come back in ${s.target} (up to ${+(timeoutMs / 1000).toFixed(1)} s)`;
  const base = { step: i, kind: 'wait-device', line: s.line, label };
  const t0 = f.ctx.clock();
  f.ctx.emit({ event: 'step-start', ...base });
  try {
    await waitForDisconnect(f.link.client.transport);
    const next = await reconnect({
      connect: f.opts.reconnect!,
      timeoutMs,
      ...(f.opts.reconnectIntervalMs !== undefined ? { intervalMs: f.opts.reconnectIntervalMs } : {}),
      ...(f.opts.signal ? { signal: f.opts.signal } : {}),
      ...(f.expectSerial !== undefined ? { expectSerial: f.expectSerial } : {}),
      deviceId: f.opts.deviceId,
    });
    await f.link.replace(next);
    // A new client asks max-download-size again: fastbootd's limit differs from the bootloader's (AOSP forgets it too).
    if (s.target === 'fastboot') await checkUserspace(next, s, f.opts.deviceId);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    f.ctx.emit({ event: 'step-end', ...base, status: 'failed', durationMs: f.ctx.clock() - t0, message });
    throw err;
  }
  const durationMs = f.ctx.clock() - t0;
  f.ctx.emit({ event: 'step-end', ...base, status: 'ok', durationMs, message: `back after ${(durationMs / 1000).toFixed(1)} s` });
}

interface AskContext {
  state: ScriptState;
  client: FastbootClient;
  serial: () => Promise<string>;
  ctx: RunContext;
  setCurrent: (i: number | undefined) => void;
  outcomes: StepOutcome[];
  /** Phase 1: answers shared with the gates. */
  facts?: DeviceFacts;
}

/** Asks one of the plan's queries (read-only) and reports what the AOSP client would have printed. */
async function askQuery(s: StepOf<'query'>, i: number, a: AskContext): Promise<void> {
  const label = stepLabel(s);
  const t0 = a.ctx.clock();
  a.setCurrent(i);
  a.ctx.emit({ event: 'step-start', step: i, kind: s.kind, line: s.line, label });
  await a.state.ask(s.id, s.query, a.client, a.serial, a.facts);
  a.outcomes[i]!.status = 'ok';
  a.ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label, status: 'ok', durationMs: a.ctx.clock() - t0, message: a.state.summary(s.id) });
}

/** The refusal for a script exit with a non-zero status (a gate). */
function exitOutcome(s: StepOf<'exit'>, plan: FlashPlan, state: ScriptState, afterWrites: boolean): GateRefusedError {
  const where = s.line > 0 ? `${plan.source.script} line ${s.line}` : 'miflash';
  const said = s.message ?? `the script stops with status ${s.status}`;
  const why = s.when ? `; it stops because ${state.describe(s.when)}` : '';
  const answered = s.when ? state.answers(s.when) : '';
  return new GateRefusedError(`${where}: ${said}${answered ? ` (the device answered ${answered})` : ''}${why}`, {
    code: exitGateCode(s, plan.steps),
    hint: afterWrites ? 'the steps before this one were done; the rest were not' : 'nothing has been written to the device',
  });
}

/** A check the script makes but ignores: reported as a warning (so a later lock is refused), never a stop. */
function ignoredCheck(s: StepOf<'exit'>, i: number, a: { state: ScriptState; ctx: RunContext; warnings: string[]; outcomes: StepOutcome[] }): void {
  const text = `line ${s.line}: ${s.message ?? 'a check failed'}, and it failed (${a.state.describe(s.when!)}); a lock will not run`;
  a.warnings.push(text);
  a.outcomes[i]!.status = 'warning';
  a.ctx.emit({ event: 'step-end', step: i, kind: s.kind, line: s.line, label: stepLabel(s), status: 'warning', durationMs: 0, message: text });
}
