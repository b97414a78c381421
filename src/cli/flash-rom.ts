// `miflash flash ROM` (folder, .tgz/.zip, or a plan .json with --rom DIR):
// open the ROM, build the plan for --mode/--script, select the device(s), and
// run the plan on each device concurrently (one device's failure never stops
// the others; the exit code is the worst). Output: --json events, a TTY
// spinner + progress bars, or plain lines.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { BadInputError, ExitCode, MiflashError } from '../errors.js';
import type { DeviceEvent } from '../fastboot/events.js';
import type { Rom } from '../rom/rom.js';
import type { PlanEvent } from '../plan/events.js';
import type { PreflightResult } from '../plan/preflight.js';
import type { ConfirmRequest, RunPlanResult } from '../plan/runner.js';
import type { FlashPlan } from '../plan/schema.js';
import type { DeviceSpec } from '../transport/open.js';
import type { Renderer } from '../ui/render.js';

export interface FlashRomOptions {
  mode?: 'clean' | 'keep-data' | 'lock';
  script?: string;
  yes?: boolean;
  dryRun?: boolean;
  /** ROM folder for a plan .json target. */
  rom?: string;
  cache?: string;
}

export interface FlashRomGlobals {
  serial?: string[];
  all?: boolean;
  json?: boolean;
  sparseLimit?: string;
  timeout?: string;
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
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    tty: Boolean(process.stderr.isTTY),
  };
}

/** Loads the plan and ROM for `target` (ROM folder/archive, or plan .json + --rom). */
export async function loadPlan(target: string, options: FlashRomOptions): Promise<{ plan: FlashPlan; rom: Rom }> {
  const { openRom, planForRom } = await import('../rom/index.js');
  const cache = options.cache ? { cache: options.cache } : {};
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
    const romDir = options.rom ?? parsed.data.source.rom;
    if (!romDir) throw new BadInputError(`${target}: the plan names no ROM; pass --rom DIR`, { code: 'plan.no-rom' });
    return { plan: parsed.data, rom: await openRom(romDir, cache) };
  }
  if (options.rom) throw new BadInputError(`--rom is only for a plan file (flash PLAN.json --rom DIR); ${target} is the ROM itself`);
  const rom = await openRom(target, cache).catch((err: unknown) => {
    if (err instanceof MiflashError && err.code === 'rom.not-found' && /^[A-Za-z0-9_.-]+$/.test(target)) {
      throw new BadInputError(`${err.message}; 'flash ${target}' with one argument flashes a ROM folder, archive or plan file`, {
        code: err.code,
        hint: `to flash one partition give its image too: miflash flash ${target} IMAGE`,
      });
    }
    throw err;
  });
  const plan = await planForRom(rom, { ...(options.mode ? { mode: options.mode } : {}), ...(options.script ? { script: options.script } : {}) });
  return { plan, rom };
}

/** Runs the plan on every selected device; returns the worst exit code (0 = all fine). */
export async function flashRom(target: string, options: FlashRomOptions, globals: FlashRomGlobals, io: FlashRomIo = defaultIo()): Promise<number> {
  const json = Boolean(globals.json);
  const [{ parseSize }, { selectDevices, formatDeviceSpec }] = await Promise.all([import('./size.js'), import('../transport/open.js')]);
  let specs: DeviceSpec[];
  let plan: FlashPlan;
  let rom: Rom;
  let sparseLimit: number | undefined;
  let timeoutMs: number;
  try {
    sparseLimit = globals.sparseLimit === undefined ? undefined : parseSize(globals.sparseLimit, '-S');
    if (options.mode !== undefined && !['clean', 'keep-data', 'lock'].includes(options.mode)) {
      throw new BadInputError(`--mode '${options.mode}': expected clean, keep-data or lock`, { code: 'input.mode' });
    }
    timeoutMs = Number(globals.timeout ?? '30000');
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new BadInputError(`--timeout '${globals.timeout}': expected a positive number of milliseconds`);
    ({ plan, rom } = await loadPlan(target, options));
    specs = await selectDevices({ serials: globals.serial ?? [], all: globals.all });
  } catch (err) {
    // Before any device: in --json mode still one schema-valid error event.
    if (!json) throw err;
    writeJson(io.stdout, errorEvent('*', err));
    return exitCodeOf(err);
  }

  const ctl = new AbortController();
  const onSigint = () => {
    if (ctl.signal.aborted) process.exit(ExitCode.ABORTED);
    io.stderr.write('\nmiflash: stopping after the current buffer (Ctrl-C again to exit now)\n');
    ctl.abort();
  };
  process.on('SIGINT', onSigint);
  const several = specs.length > 1;
  const confirm = makeConfirm(options, io);
  const preflightCache = new Map<string, Promise<PreflightResult>>();
  try {
    const codes = await Promise.all(
      specs.map(async (spec) => {
        const name = formatDeviceSpec(spec);
        const out = await createOutput(name, several, json, io);
        try {
          const result = await flashOne(spec, name, { plan, rom, sparseLimit, timeoutMs, dryRun: Boolean(options.dryRun), confirm, signal: ctl.signal, out, preflightCache });
          out.finish(result);
          return 0;
        } catch (err) {
          out.fail(err);
          return exitCodeOf(err);
        }
      }),
    );
    return Math.max(0, ...codes);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

interface OneOptions {
  plan: FlashPlan;
  rom: Rom;
  sparseLimit: number | undefined;
  timeoutMs: number;
  dryRun: boolean;
  confirm: ((req: ConfirmRequest) => Promise<boolean>) | undefined;
  signal: AbortSignal;
  out: DeviceOutput;
  preflightCache: Map<string, Promise<PreflightResult>>;
}

async function flashOne(spec: DeviceSpec, name: string, o: OneOptions): Promise<RunPlanResult> {
  const [{ connectFastboot }, { runPlan }] = await Promise.all([import('../fastboot/connect.js'), import('../plan/runner.js')]);
  let client;
  try {
    client = await connectFastboot(spec, { timeoutMs: o.timeoutMs, onEvent: o.out.device });
  } catch (err) {
    // runPlan reports its own errors; a failed connect is reported here.
    o.out.event(errorEvent(name, err));
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
      onEvent: o.out.event,
      onDeviceEvent: o.out.device,
      signal: o.signal,
      preflightCache: o.preflightCache,
    });
  } finally {
    await client.close().catch(() => {});
  }
}

// ---- confirmation ----

function makeConfirm(options: FlashRomOptions, io: FlashRomIo): ((req: ConfirmRequest) => Promise<boolean>) | undefined {
  if (options.yes) return async () => true;
  if (!io.interactive) return undefined; // the runner refuses and tells the user to pass --yes
  let queue: Promise<unknown> = Promise.resolve();
  // One question at a time, even with several devices running.
  return (req) => {
    const next = queue.then(() => askOnce(req, io));
    queue = next.catch(() => {});
    return next;
  };
}

async function askOnce(req: ConfirmRequest, io: FlashRomIo): Promise<boolean> {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: true });
  // Ctrl-C or Ctrl-D at the prompt is a "no", never a hang or a crash.
  const cancelled = new Promise<string>((resolve) => {
    rl.once('SIGINT', () => resolve(''));
    rl.once('close', () => resolve(''));
  });
  const ask = (q: string) => Promise.race([rl.question(q).catch(() => ''), cancelled]);
  try {
    if (req.kind === 'lock') return (await ask(`${req.question}: `)).trim() === req.expect;
    const answer = (await ask(`${req.question} [y/N] `)).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

// ---- output ----

interface DeviceOutput {
  event(e: PlanEvent): void;
  device(e: DeviceEvent): void;
  finish(result: RunPlanResult): void;
  fail(err: unknown): void;
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

async function createOutput(name: string, several: boolean, json: boolean, io: FlashRomIo): Promise<DeviceOutput> {
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
    };
  }
  const { createRenderer, formatBytes, formatStatusLine } = await import('../ui/render.js');
  // Several devices at once: one spinner would fight another; use plain lines.
  let planPct = '';
  const renderer: Renderer = await createRenderer({ tty: io.tty && !several, err: io.stderr, out: io.stdout, progressSuffix: () => `  plan ${planPct}` });
  const prefix = several ? `[${name}] ` : '';
  const line = (text: string) => renderer.event({ type: 'text', message: `${prefix}${text}\n` });
  let total = 0;
  let count = 0;
  let pos = '';
  let doneBytes = 0;
  const bytesOf = new Map<number, number>();
  const pct = (n: number) => (total > 0 ? `${Math.floor((Math.min(n, total) / total) * 100)}%` : '');
  // Image verification (phase 1) shows as a transient spinner on a TTY only.
  let verifying: { file: string; started: number } | undefined;
  const showVerify = io.tty && !several;
  return {
    event(e) {
      if (e.event !== 'verify' && verifying) {
        verifying = undefined;
        renderer.stop();
      }
      switch (e.event) {
        case 'verify': {
          if (!showVerify) break;
          const now = performance.now();
          if (verifying?.file !== e.file) {
            verifying = { file: e.file, started: now };
            renderer.event({ type: 'step-start', id: -1, label: `${prefix}Verifying ${e.file}`, bytesTotal: e.bytesTotal });
          }
          const secs = (now - verifying.started) / 1000;
          renderer.event({ type: 'step-progress', id: -1, bytesDone: e.bytesDone, bytesTotal: e.bytesTotal, rateBytesPerSec: secs > 0 ? e.bytesDone / secs : 0 });
          break;
        }
        case 'plan':
          total = e.totalBytes;
          count = e.steps.length;
          for (const s of e.steps) bytesOf.set(s.step, s.bytes ?? 0);
          line(`${e.dryRun ? 'Dry run: ' : ''}${e.script} (${e.mode}) from ${e.rom ?? '?'} on ${name}: ${count} steps, ${formatBytes(total)}`);
          break;
        case 'step-start':
          pos = `[${e.step + 1}/${count} ${pct(doneBytes)}]`;
          if (!e.kind.startsWith('gate.')) line(`${pos} ${e.label}`);
          break;
        case 'progress':
          pos = `[${e.step + 1}/${count} ${pct(e.planBytesDone)}]`;
          planPct = pct(e.planBytesDone);
          break;
        case 'step-end': {
          doneBytes += bytesOf.get(e.step) ?? 0;
          const st = e.status === 'ok' ? 'OKAY' : e.status === 'failed' ? 'FAILED' : e.status === 'warning' ? 'WARNING' : 'SKIPPED';
          if (e.kind.startsWith('gate.')) line(`${formatStatusLine(`[${e.step + 1}/${count}] ${e.label}`, e.durationMs, st)}${e.message && e.status !== 'failed' ? ` ${e.message}` : ''}`);
          else if (e.status !== 'ok') {
            line(`${formatStatusLine(`[${e.step + 1}/${count}] ${e.label}`, e.durationMs, st)}${e.message ? ` (${e.message})` : ''}`);
          }
          break;
        }
        case 'message':
          if (e.level === 'warning') renderer.event({ type: 'warning', message: `${prefix}${e.text}` });
          else line(e.text);
          break;
        case 'done':
          line(
            e.status === 'dry-run'
              ? 'Dry run finished: gates and image checks passed; nothing was written'
              : `Finished${e.status === 'warning' ? ' with warnings' : ''}: ${e.stepsRun} operations, ${formatBytes(e.bytesSent)} sent in ${(e.durationMs / 1000).toFixed(3)}s`,
          );
          break;
        case 'error':
          break;
      }
    },
    device(e) {
      // AOSP-style sub-steps (Sending/Writing/Erasing) with the spinner and progress bar.
      if (e.type === 'step-start' || e.type === 'step-done' || e.type === 'step-fail') {
        renderer.event({ ...e, label: `${prefix}${pos} ${e.label}` });
      } else if (e.type !== 'warning') {
        renderer.event(e); // warnings arrive as plan 'message' events
      }
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
      if (e?.hint) io.stderr.write(`hint: ${e.hint}\n`);
      if (!e && err instanceof Error && process.env.MIFLASH_DEBUG) io.stderr.write(`${err.stack}\n`);
    },
  };
}
