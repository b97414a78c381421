// `miflash flash ROM` (folder, .tgz/.zip, or a plan .json with --rom DIR):
// open the ROM, build the plan for --mode/--script, select the device(s), and
// run the plan on each device concurrently (one device's failure never stops
// the others; the exit code is the worst). Output: --json events, a TTY
// spinner + progress bars, or plain lines.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { BadInputError, ExitCode, MiflashError } from '../errors.js';
import type { DeviceEvent } from '../fastboot/events.js';
import type { Rom } from '../rom/rom.js';
import type { ProgressFn } from '../rom/archive.js';
import type { PlanEvent } from '../plan/events.js';
import type { PreflightResult } from '../plan/preflight.js';
import type { ConfirmRequest, RunPlanResult } from '../plan/runner.js';
import { isReadOnlyKind, type FlashPlan } from '../plan/schema.js';
import type { DeviceSpec } from '../transport/open.js';
import type { Renderer } from '../ui/render.js';

export interface FlashRomOptions {
  mode?: 'clean' | 'keep-data' | 'lock';
  script?: string;
  /** --input LINE (repeatable): what the script's `read` gets, in order. */
  input?: string[];
  yes?: boolean;
  dryRun?: boolean;
  /** ROM folder for a plan .json target. */
  rom?: string;
  cache?: string;
  /** --reboot-timeout SECONDS: how long to wait for the device after a reboot in the middle of the plan. */
  rebootTimeout?: string;
  /** A plan built by the caller (miflash update ZIP) instead of one read from `target`. */
  prebuilt?: { plan: FlashPlan; rom: Rom };
  /** AOSP options for update steps (--slot, --skip-secondary, --force, --set-active, --disable-fastboot-info). */
  update?: import('../plan/runner.js').UpdateStepOptions;
  /** --resume: skip the steps the device's journal shows done, where that is safe (src/plan/journal.ts). */
  resume?: boolean;
}

export interface FlashRomGlobals {
  serial?: string[];
  all?: boolean;
  json?: boolean;
  sparseLimit?: string;
  timeout?: string;
  /** -v: print the conversation on stderr (as the single-command verbs do). */
  verbose?: boolean;
}

export interface FlashRomIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** Can we ask questions? (stdin and stderr are terminals) */
  interactive: boolean;
  tty: boolean;
}

function defaultIo(): FlashRomIo {
  // `miflash --json flash ROM | head`: a reader that goes away must not kill a flash half-way
  // (a cut transfer can leave the phone unbootable); the run goes on without that output.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    tty: Boolean(process.stderr.isTTY),
  };
}

/** Loads the plan and ROM for `target` (ROM folder/archive, or plan .json + --rom). */
export async function loadPlan(target: string, options: FlashRomOptions, onProgress?: ProgressFn): Promise<{ plan: FlashPlan; rom: Rom }> {
  // The two modules, not rom/index.js: its archive exports would load zlib and crypto for a folder too.
  const [{ openRom }, { planForRom }, { mark }] = await Promise.all([import('../rom/rom.js'), import('../rom/plan-for-rom.js'), import('./trace.js')]);
  mark('rom-modules-loaded');
  const cache = { ...(options.cache ? { cache: options.cache } : {}), ...(onProgress ? { onProgress } : {}) };
  if (/\.json$/i.test(target)) {
    const { FlashPlanSchema } = await import('../plan/schema.js');
    let data: unknown;
    try {
      data = JSON.parse(await readFile(target, 'utf8'));
    } catch (err) {
      throw new BadInputError(`${target}: cannot read the plan (${(err as Error).message})`, { code: 'plan.unreadable' });
    }
    const parsed = FlashPlanSchema.safeParse(data);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      throw new BadInputError(`${target}: not a valid flash plan: ${issues.join('; ')}`, {
        code: 'plan.invalid',
        hint: '`miflash plan ROM --json > plan.json` writes a valid plan to start from',
      });
    }
    // The plan decides what runs: a --mode or --script it would ignore must not pass for a promise (keep-data!).
    // 'clean' is the option's default, so only the other two can be told apart from "not given".
    if (options.mode !== undefined && options.mode !== 'clean' && options.mode !== parsed.data.source.mode) {
      throw new BadInputError(`${target} is a '${parsed.data.source.mode}' plan but --mode ${options.mode} was given; nothing has been sent to a device`, {
        code: 'input.mode',
        hint: `drop --mode, or write a ${options.mode} plan: miflash plan ROM --mode ${options.mode} --json > plan.json`,
      });
    }
    if (options.script !== undefined) {
      throw new BadInputError(`--script is for a ROM, not a plan file (${target} already names its script: ${parsed.data.source.script})`, { code: 'input.script' });
    }
    const romDir = options.rom ?? parsed.data.source.rom;
    if (!romDir) throw new BadInputError(`${target}: the plan names no ROM; pass --rom DIR`, { code: 'plan.no-rom' });
    return { plan: parsed.data, rom: await openRom(romDir, cache) };
  }
  if (options.rom) throw new BadInputError(`--rom is only for a plan file (flash PLAN.json --rom DIR); ${target} is the ROM itself`);
  const rom = await openRom(target, cache).catch(async (err: unknown): Promise<never> => {
    if (err instanceof MiflashError && err.code === 'rom.not-found' && /^[A-Za-z0-9_.-]+$/.test(target)) {
      throw new BadInputError(`${err.message}; 'flash ${target}' with one argument flashes a ROM folder, archive or plan file`, {
        code: err.code,
        hint: `to flash one partition give its image too: miflash flash ${target} IMAGE`,
      });
    }
    if (err instanceof MiflashError && err.code === 'rom.not-a-rom') {
      const better = await nearbyRom(target);
      if (better) throw new BadInputError(err.message, { code: err.code, hint: `did you mean: miflash flash ${better}` });
    }
    if (err instanceof MiflashError && err.code === 'rom.not-found' && !err.hint) {
      throw new BadInputError(err.message, {
        code: err.code,
        hint: `check the path (relative to ${process.cwd()}): the ROM folder holds flash_all.sh and images/; a .tgz, .zip or plan .json works too`,
      });
    }
    if (err instanceof MiflashError && err.code === 'rom.unknown-format' && /\.(img|bin|mbn|elf|melf)$/i.test(target)) {
      // `flash boot.img`: an image without its partition.
      const part = basename(target).replace(/\.[^.]+$/, '');
      throw new BadInputError(`${target} is an image, not a ROM; 'flash' with one argument flashes a ROM folder, archive or plan file`, {
        code: err.code,
        hint: `to flash one image name its partition first: miflash flash ${part} ${target}`,
      });
    }
    throw err;
  });
  mark('rom-opened');
  const plan = await planForRom(rom, { ...(options.mode ? { mode: options.mode } : {}), ...(options.script ? { script: options.script } : {}), ...(options.input ? { inputs: options.input } : {}) });
  mark('script-parsed');
  return { plan, rom };
}

/** For a folder that is not a ROM: the ROM it is part of (its images/ folder) or the one archive in it. */
async function nearbyRom(target: string): Promise<string | undefined> {
  const { readdir } = await import('node:fs/promises');
  const { dirname, join } = await import('node:path');
  if (basename(target.replace(/\/+$/, '')) === 'images') return dirname(target.replace(/\/+$/, ''));
  const archives = (await readdir(target).catch(() => [] as string[])).filter((f) => /\.(tgz|tar\.gz|tar|zip)$/i.test(f));
  return archives.length === 1 ? join(target, archives[0]!) : undefined;
}

/** Runs the plan on every selected device; returns the worst exit code (0 = all fine). */
export async function flashRom(target: string, options: FlashRomOptions, globals: FlashRomGlobals, io: FlashRomIo = defaultIo()): Promise<number> {
  const json = Boolean(globals.json);
  const [{ parseSize }, { selectDevices, formatDeviceSpec }, { mark }] = await Promise.all([import('./size.js'), import('../transport/open.js'), import('./trace.js')]);
  mark('flash-command');
  let specs: DeviceSpec[];
  let plan: FlashPlan;
  let rom: Rom;
  let sparseLimit: number | undefined;
  let timeoutMs: number;
  let rebootTimeoutMs: number | undefined;
  try {
    sparseLimit = globals.sparseLimit === undefined ? undefined : parseSize(globals.sparseLimit, '-S');
    if (options.mode !== undefined && !['clean', 'keep-data', 'lock'].includes(options.mode)) {
      throw new BadInputError(`--mode '${options.mode}': expected clean, keep-data or lock`, { code: 'input.mode' });
    }
    timeoutMs = Number(globals.timeout ?? '30000');
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new BadInputError(`--timeout '${globals.timeout}': expected a positive number of milliseconds`);
    rebootTimeoutMs = parseRebootTimeout(options.rebootTimeout);
    // Unpacking a multi-GB archive takes minutes: show it, as the image checks and transfers are shown.
    // (A folder has nothing to unpack: no renderer, nor its libraries, this early.)
    const archive = [target, options.rom].some((t) => t !== undefined && /\.(tgz|tar\.gz|tar|zip)$/i.test(t));
    const unpacking = json || !archive ? undefined : await archiveProgress(io);
    try {
      ({ plan, rom } = options.prebuilt ?? (await loadPlan(target, options, unpacking?.onProgress)));
      unpacking?.end();
    } catch (err) {
      unpacking?.stop();
      throw err;
    }
    const wait = timeoutMs;
    specs = await selectDevices({ serials: globals.serial ?? [], all: globals.all }).catch(async (err: unknown) => {
      // As every device command (AOSP open_device): no -s and no USB device → the network devices `connect` stored.
      const { connectedFallback } = await import('./commands/device-context.js');
      const stored = globals.all ? undefined : await connectedFallback(err, wait);
      if (!stored) throw err;
      return [stored];
    });
  } catch (err) {
    // Before any device: in --json mode still one schema-valid error event.
    if (!json) throw err;
    writeJson(io.stdout, errorEvent('*', err));
    return exitCodeOf(err);
  }

  const ctl = new AbortController();
  const onSigint = () => {
    if (ctl.signal.aborted) {
      io.stderr.write('\nmiflash: aborted; if a transfer was cut short, reboot the device to the bootloader before retrying\n');
      process.exit(ExitCode.ABORTED);
    }
    io.stderr.write('\nmiflash: stopping after the current buffer (Ctrl-C again to exit now)\n');
    ctl.abort();
  };
  process.on('SIGINT', onSigint);
  const several = specs.length > 1;
  // A question must not sit under a spinner that redraws over it.
  // Several devices: while a question is open, the others' lines wait (they would bury the prompt).
  const pausers = new Set<() => void>();
  const gate = holdable(io.stderr);
  const outIo = several && io.interactive && !options.yes ? { ...io, stderr: gate.stream } : io;
  const confirm = makeConfirm(options, io, {
    before: () => {
      pausers.forEach((pause) => pause());
      gate.hold();
    },
    after: () => gate.release(),
  });
  const preflightCache = new Map<string, Promise<PreflightResult>>();
  const { cacheDir } = await import('../rom/cache-dir.js');
  const cache = cacheDir();
  // One journal per serial: the first device of this run to answer a serial number keeps it.
  const serials = new Set<string>();
  const claim = (serial: string) => !serials.has(serial) && Boolean(serials.add(serial));
  try {
    const codes = await Promise.all(
      specs.map(async (spec) => {
        const name = formatDeviceSpec(spec);
        const out = await createOutput(name, several, json, outIo, !options.prebuilt);
        pausers.add(out.pause);
        try {
          const result = await flashOne(spec, name, {
            verbose: globals.verbose ? (line: string) => io.stderr.write(`${several ? `[${name}] ` : ''}${line}\n`) : undefined,
            plan,
            rom,
            sparseLimit,
            timeoutMs,
            rebootTimeoutMs,
            dryRun: Boolean(options.dryRun),
            confirm,
            signal: ctl.signal,
            out,
            preflightCache,
            update: options.update,
            // `miflash update` runs one update step, which nothing could skip: no journal.
            // A dry run reads it (--resume: what would be skipped) and never writes it.
            journal: !options.prebuilt,
            resume: Boolean(options.resume),
            cache,
            claim,
          });
          out.finish(result);
          return 0;
        } catch (err) {
          out.fail(err);
          return exitCodeOf(err);
        }
      }),
    );
    if (several && !json) io.stderr.write(batchSummary(specs.map(formatDeviceSpec), codes, Boolean(options.dryRun)));
    return Math.max(0, ...codes);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

interface OneOptions {
  /** -v: each command and reply, as a line. */
  verbose: ((line: string) => void) | undefined;
  plan: FlashPlan;
  rom: Rom;
  sparseLimit: number | undefined;
  timeoutMs: number;
  rebootTimeoutMs: number | undefined;
  dryRun: boolean;
  confirm: ((req: ConfirmRequest) => Promise<boolean>) | undefined;
  signal: AbortSignal;
  out: DeviceOutput;
  preflightCache: Map<string, Promise<PreflightResult>>;
  update: import('../plan/runner.js').UpdateStepOptions | undefined;
  /** Keep the resume journal (flash ROM). */
  journal: boolean | undefined;
  resume: boolean;
  /** The cache folder: journals/ and logs/ live there. */
  cache: string;
  claim: (serial: string) => boolean;
}

async function flashOne(spec: DeviceSpec, name: string, o: OneOptions): Promise<RunPlanResult> {
  const [{ runPlan }, { DeviceLog }, { mark }] = await Promise.all([import('../plan/runner.js'), import('../plan/device-log.js'), import('./trace.js')]);
  mark('runner-loaded');
  // Every ROM run gets its own log file (commands, replies, steps, timing); its path ends the output.
  const log = new DeviceLog(o.cache, name);
  log.line(`miflash ${process.argv.slice(2).join(' ')}`);
  log.line(`device ${name}; ROM ${o.rom.root}; script ${o.plan.source.script} (${o.plan.source.mode})${o.dryRun ? '; dry run' : ''}${o.resume ? '; --resume' : ''}`);
  const onEvent = (e: PlanEvent) => {
    log.event(e);
    if (e.event === 'done' || e.event === 'error') {
      const logFile = log.close();
      o.out.event(logFile ? { ...e, logFile } : e);
      return;
    }
    o.out.event(e);
  };
  const onDevice = (e: DeviceEvent) => {
    log.device(e);
    o.out.device(e);
  };
  const connect = () => connectLogged(spec, o.timeoutMs, onDevice, log, o.verbose);
  let client;
  try {
    client = await connect();
    mark('connected');
  } catch (err) {
    // runPlan reports its own errors; a failed connect is reported here.
    onEvent(errorEvent(name, err));
    throw err;
  }
  try {
    return await runPlan(o.plan, {
      rom: o.rom,
      client,
      deviceId: name,
      ...(o.sparseLimit !== undefined ? { sparseLimit: o.sparseLimit } : {}),
      dryRun: o.dryRun,
      ...(o.confirm ? { confirm: o.confirm } : {}),
      onEvent,
      onDeviceEvent: onDevice,
      signal: o.signal,
      preflightCache: o.preflightCache,
      // After `reboot bootloader|fastboot` mid-plan: the same spec (address / USB serial / port) again.
      reconnect: connect,
      ...(o.rebootTimeoutMs !== undefined ? { rebootTimeoutMs: o.rebootTimeoutMs } : {}),
      ...(o.update ? { update: o.update } : {}),
      ...(o.journal ? { journal: { dir: o.cache, resume: o.resume, claim: o.claim } } : {}),
    });
  } finally {
    await client.close().catch(() => {});
    log.close();
  }
}

/** connectFastboot (src/fastboot/connect.ts) with the transport's traffic going to the device log. */
async function connectLogged(spec: DeviceSpec, timeoutMs: number, onEvent: (e: DeviceEvent) => void, log: import('../plan/device-log.js').DeviceLog, verbose?: (line: string) => void) {
  const [{ openDevice }, { FastbootClient }] = await Promise.all([import('../transport/open.js'), import('../fastboot/client.js')]);
  const logged = log.wrap(await openDevice(spec, { timeoutMs }));
  const transport = verbose ? (await import('../fastboot/verbose.js')).verboseTransport(logged, verbose) : logged;
  return new FastbootClient(transport, {
    timeoutMs,
    onInfo: (message) => onEvent({ type: 'info', message }),
    onText: (message) => onEvent({ type: 'text', message }),
  });
}

function parseRebootTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new BadInputError(`--reboot-timeout '${text}': expected a number of seconds between 0 and 3600`, { code: 'input.reboot-timeout' });
  }
  return Math.round(seconds * 1000);
}

/** Several devices: the last line says how many made it and which did not (a batch log ends with the verdict). */
function batchSummary(names: string[], codes: number[], dryRun: boolean): string {
  const failed = codes.flatMap((c, i) => (c === 0 ? [] : [`${names[i]} (exit ${c})`]));
  const ok = codes.length - failed.length;
  return `miflash: ${ok} of ${codes.length} devices ${dryRun ? 'checked' : 'flashed'}${failed.length ? `; failed: ${failed.join(', ')}` : ''}\n`;
}

/** Progress of checking and extracting a ROM archive (a folder or a reused cache reports none). */
async function archiveProgress(io: FlashRomIo): Promise<{ onProgress: ProgressFn; end(): void; stop(): void }> {
  const { createRenderer } = await import('../ui/render.js');
  const renderer = await createRenderer({ tty: io.tty, err: io.stderr, out: io.stdout });
  let phase: string | undefined;
  let started = 0;
  let id = 0;
  // Short: Xiaomi archive names are long enough to squeeze the bar off the line.
  const label = (p: string) => (p === 'verify' ? 'Checking the archive MD5' : 'Extracting the ROM archive');
  const end = () => {
    if (phase !== undefined) renderer.event({ type: 'step-done', id, label: label(phase), elapsedMs: performance.now() - started });
    phase = undefined;
    renderer.stop();
  };
  return {
    onProgress(p) {
      if (p.phase !== phase) {
        end();
        phase = p.phase;
        started = performance.now();
        renderer.event({ type: 'step-start', id: ++id, label: label(p.phase), bytesTotal: p.total });
      }
      const secs = (performance.now() - started) / 1000;
      renderer.event({ type: 'step-progress', id, bytesDone: p.done, bytesTotal: p.total, rateBytesPerSec: secs > 0.2 ? p.done / secs : 0 });
    },
    end,
    stop: () => renderer.stop(),
  };
}

// ---- confirmation ----

function makeConfirm(
  options: FlashRomOptions,
  io: FlashRomIo,
  around: { before(): void; after(): void } = { before() {}, after() {} },
): ((req: ConfirmRequest) => Promise<boolean>) | undefined {
  if (options.yes) return async () => true;
  if (!io.interactive) return undefined; // the runner refuses and tells the user to pass --yes
  let queue: Promise<unknown> = Promise.resolve();
  // One question at a time, even with several devices running.
  return (req) => {
    const next = queue.then(async () => {
      around.before();
      try {
        return await askOnce(req, io);
      } finally {
        around.after();
      }
    });
    queue = next.catch(() => {});
    return next;
  };
}

/** A writer that can hold what is written and let it out later, in order. */
function holdable(target: NodeJS.WritableStream): { stream: NodeJS.WritableStream; hold(): void; release(): void } {
  let held: Array<string | Uint8Array> | undefined;
  const stream = {
    write(chunk: string | Uint8Array): boolean {
      if (held) held.push(chunk);
      else target.write(chunk);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return {
    stream,
    hold: () => {
      held ??= [];
    },
    release: () => {
      const chunks = held ?? [];
      held = undefined;
      for (const c of chunks) target.write(c);
    },
  };
}

async function askOnce(req: ConfirmRequest, io: FlashRomIo): Promise<boolean> {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: true });
  // Ctrl-C or Ctrl-D at the prompt is a "no", never a hang or a crash;
  // end the prompt's line so the message that follows starts on its own.
  let answered = false;
  const cancel = (resolve: (s: string) => void) => () => {
    if (!answered) io.stderr.write('\n');
    answered = true;
    resolve('');
  };
  const cancelled = new Promise<string>((resolve) => {
    rl.once('SIGINT', cancel(resolve));
    rl.once('close', cancel(resolve));
  });
  const ask = (q: string) => Promise.race([rl.question(q).catch(() => ''), cancelled]);
  try {
    if (req.kind === 'lock') return (await ask(`${req.question}: `)).trim() === req.expect;
    const answer = (await ask(`${req.question} [y/N] `)).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } finally {
    answered = true;
    rl.close();
  }
}

// ---- output ----

interface DeviceOutput {
  event(e: PlanEvent): void;
  device(e: DeviceEvent): void;
  finish(result: RunPlanResult): void;
  fail(err: unknown): void;
  /** Ends any spinner line (before a question on the terminal). */
  pause(): void;
}

function errorEvent(device: string, err: unknown): PlanEvent {
  const e = err instanceof MiflashError ? err : undefined;
  return {
    event: 'error',
    device,
    time: new Date().toISOString(),
    code: e?.code ?? 'internal',
    message: err instanceof Error ? err.message : String(err),
    ...(e?.hint ? { hint: e.hint } : {}),
    exitCode: exitCodeOf(err),
  };
}

export function exitCodeOf(err: unknown): number {
  return err instanceof MiflashError ? err.exitCode : ExitCode.INTERNAL;
}

function writeJson(out: NodeJS.WritableStream, e: PlanEvent): void {
  out.write(JSON.stringify(e) + '\n');
}

async function createOutput(name: string, several: boolean, json: boolean, io: FlashRomIo, resumable = false): Promise<DeviceOutput> {
  if (json) {
    return {
      event: (e) => writeJson(io.stdout, e),
      device: (e) => {
        if (e.type === 'info' || e.type === 'text') {
          writeJson(io.stdout, { event: 'message', device: name, time: new Date().toISOString(), level: 'info', source: 'device', text: e.message.replace(/\n$/, '') });
        }
      },
      finish: () => {},
      fail: () => {},
      pause: () => {},
    };
  }
  const { createRenderer, formatBytes, formatStatusLine } = await import('../ui/render.js');
  // Several devices at once: one spinner would fight another; use plain lines.
  let planPct = '';
  const live = io.tty && !several;
  const renderer: Renderer = await createRenderer({ tty: live, err: io.stderr, out: io.stdout, progressSuffix: () => (planPct ? `  plan ${planPct}` : '') });
  const prefix = several ? `[${name}] ` : '';
  const line = (text: string) => renderer.event({ type: 'text', message: `${prefix}${text}\n` });
  let total = 0;
  let count = 0;
  let pos = '';
  // On a live line the plan's percentage is the progress suffix; a copy frozen in the label would contradict it.
  let stepPos = '';
  let subStepFailed = false;
  let dryRun = false;
  // "sent in" counts from the first device operation: not the image checks, not the time a question waited for an answer.
  let firstOperation: number | undefined;
  const flashMs = (planMs: number) => (firstOperation === undefined ? planMs : performance.now() - firstOperation);
  let doneBytes = 0;
  let logFile: string | undefined;
  const bytesOf = new Map<number, number>();
  const pct = (n: number) => (total > 0 ? `${Math.floor((Math.min(n, total) / total) * 100)}%` : '');
  // Image verification (phase 1) shows as a transient spinner on a TTY only.
  let verifying: { file: string; started: number } | undefined;
  let verifyStarted: number | undefined;
  const showVerify = live;
  const endVerify = () => {
    if (verifyStarted !== undefined) renderer.event({ type: 'step-done', id: -1, label: `${prefix}Verifying images`, elapsedMs: performance.now() - verifyStarted });
    verifying = undefined;
    verifyStarted = undefined;
    renderer.stop();
  };
  return {
    event(e) {
      if (e.event !== 'verify' && verifying) endVerify();
      switch (e.event) {
        case 'verify': {
          if (!showVerify) break;
          const now = performance.now();
          if (verifying?.file !== e.file) {
            verifying = { file: e.file, started: now };
            verifyStarted ??= now;
            renderer.event({ type: 'step-start', id: -1, label: `${prefix}Verifying ${e.file}`, bytesTotal: e.bytesTotal });
          }
          const secs = (now - verifying.started) / 1000;
          renderer.event({ type: 'step-progress', id: -1, bytesDone: e.bytesDone, bytesTotal: e.bytesTotal, rateBytesPerSec: secs > 0 ? e.bytesDone / secs : 0 });
          break;
        }
        case 'plan':
          dryRun = e.dryRun;
          total = e.totalBytes;
          count = e.steps.length;
          for (const s of e.steps) bytesOf.set(s.step, s.bytes ?? 0);
          line(`${e.dryRun ? 'Dry run: ' : ''}${e.script} (${e.mode}) from ${e.rom ?? '?'} on ${name}: ${count} steps, ${formatBytes(total)}`);
          break;
        case 'step-start':
          pos = `[${e.step + 1}/${count} ${pct(doneBytes)}]`;
          stepPos = `[${e.step + 1}/${count}]`;
          subStepFailed = false;
          if (!isReadOnlyKind(e.kind)) {
            firstOperation ??= performance.now();
            line(`${pos} ${e.label}`);
          }
          break;
        case 'progress':
          pos = `[${e.step + 1}/${count} ${pct(e.planBytesDone)}]`;
          planPct = pct(e.planBytesDone);
          break;
        case 'step-end': {
          doneBytes += bytesOf.get(e.step) ?? 0;
          const st = e.status === 'ok' ? 'OKAY' : e.status === 'failed' ? 'FAILED' : e.status === 'warning' ? 'WARNING' : 'SKIPPED';
          if (isReadOnlyKind(e.kind)) line(`${formatStatusLine(`[${e.step + 1}/${count}] ${e.label}`, e.durationMs, st)}${e.message && e.status !== 'failed' ? ` ${e.message}` : ''}`);
          // A failed Sending/Writing line already said FAILED and why; the error follows.
          // A dry run lists what would run on stdout at the end; a SKIPPED line per step would say it twice.
          else if (e.status !== 'ok' && !(e.status === 'failed' && subStepFailed) && !(dryRun && e.status === 'skipped' && e.message?.startsWith('dry run:'))) {
            line(`${formatStatusLine(`[${e.step + 1}/${count}] ${e.label}`, e.durationMs, st)}${e.message ? ` (${e.message})` : ''}`);
          }
          break;
        }
        case 'message':
          if (e.level === 'warning' && several) line(`Warning: ${e.text}`); // the device name leads every line
          else if (e.level === 'warning') renderer.event({ type: 'warning', message: e.text });
          else line(e.text);
          break;
        case 'resume':
          line(e.message);
          break;
        case 'done':
          line(
            e.status === 'dry-run'
              ? 'Dry run finished: gates and image checks passed; nothing was written'
              : `Finished${e.status === 'warning' ? ' with warnings' : ''}: ${e.stepsRun} operations${e.stepsResumed ? ` (${e.stepsResumed} skipped: done before, --resume)` : ''}, ${formatBytes(e.bytesSent)} sent in ${(flashMs(e.durationMs) / 1000).toFixed(3)}s`,
          );
          if (e.logFile) line(`Log: ${e.logFile}`);
          break;
        case 'error':
          logFile = e.logFile;
          break;
      }
    },
    device(e) {
      // AOSP-style sub-steps (Sending/Writing/Erasing) with the spinner and progress bar.
      if (e.type === 'step-start' || e.type === 'step-done' || e.type === 'step-fail') {
        if (e.type === 'step-fail') subStepFailed = true;
        renderer.event({ ...e, label: `${prefix}${live ? stepPos : pos} ${e.label}` });
      } else if (e.type !== 'warning') {
        renderer.event(e); // warnings arrive as plan 'message' events
      }
    },
    pause: () => {
      if (verifying) endVerify();
      else renderer.stop();
    },
    finish(result) {
      renderer.stop();
      if (result.status === 'dry-run') {
        const lines = result.operations.map((op) => `${several ? `${name}\t` : ''}fastboot ${op}`);
        io.stdout.write(lines.join('\n') + (lines.length ? '\n' : ''));
      }
    },
    fail(err) {
      renderer.stop();
      const e = err instanceof MiflashError ? err : undefined;
      io.stderr.write(`miflash: error${several ? ` [${name}]` : ''}: ${err instanceof Error ? err.message : String(err)}\n`);
      // A link lost after writing began leaves the phone half-flashed: say what to do now.
      const hint = e?.hint ?? (e?.exitCode === ExitCode.TRANSPORT && firstOperation !== undefined ? `${HALF_FLASHED_HINT}${resumable ? RESUME_HINT : ''}` : undefined);
      if (hint) io.stderr.write(`hint: ${hint}\n`);
      if (!e && err instanceof Error && process.env.MIFLASH_DEBUG) io.stderr.write(`${err.stack}\n`);
      if (logFile) io.stderr.write(`${several ? `[${name}] ` : ''}log: ${logFile}\n`);
    },
  };
}

const HALF_FLASHED_HINT =
  'the phone may be partly flashed: do not reboot it into the system; keep it in fastboot mode, check the cable (or reconnect it) and run the same command again';
const RESUME_HINT = ' with --resume (the flashes already done are then skipped)';
