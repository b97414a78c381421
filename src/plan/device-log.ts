// The per-device log of a ROM run, as MiFlash keeps one: every command sent
// and every reply received (data phases summarised by size), each step's
// start, outcome and timing, the messages, and how the run ended. One file
// per device per run in the cache folder: logs/<serial>-<UTC time>.log.
// The serial is learnt from the device's own answer to `getvar serialno`
// (lines wait in memory until then, or until the run ends: a run that never
// asks it is named after the device address). Lines are written
// synchronously, in order, so a crash loses at most what was never said.
// Writing the log never fails a flash: an unwritable folder costs the log only.
import { closeSync, mkdirSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceEvent } from '../fastboot/events.js';
import type { Transport } from '../transport/transport.js';
import { tapTransport } from '../fastboot/tap.js';
import type { PlanEvent } from './events.js';
import { safeName } from './journal.js';

/** Log files kept in the folder (oldest removed first). */
export const MAX_LOG_FILES = 500;

export function logDir(cache: string): string {
  return join(cache, 'logs');
}

export class DeviceLog {
  private fd: number | undefined;
  private file: string | undefined;
  private pending: string[] = [];
  private broken = false;
  private closed = false;
  private serial: string | undefined;
  private readonly started = new Date();

  constructor(
    private readonly dir: string,
    /** The device as the user named it (fallback file name). */
    private readonly deviceId: string,
  ) {}

  /** The file's path once it exists (after the serial is known or the log was closed). */
  get path(): string | undefined {
    return this.file;
  }

  /** One line, with the UTC time of day to the millisecond. */
  line(text: string): void {
    if (this.closed) return;
    const stamped = `${new Date().toISOString().slice(11, 23)} ${text}\n`;
    if (this.fd === undefined) {
      this.pending.push(stamped);
      return;
    }
    this.write(stamped);
  }

  /** Names the file after the device serial and writes what waited. */
  identify(serial: string): void {
    if (this.serial !== undefined || this.broken || this.closed) return;
    this.serial = serial;
    this.open(serial);
  }

  /** A transport whose traffic is logged: commands, replies, data phases by size. */
  wrap(t: Transport): Transport {
    let serialAsked = false;
    return tapTransport(t, {
      line: (text) => this.line(text),
      command: (text) => {
        serialAsked = text === 'getvar:serialno';
      },
      reply: (text, raw) => {
        const head = text.slice(0, 4);
        if (head === 'OKAY' && serialAsked) {
          const serial = raw.subarray(4).toString('latin1').trim();
          if (serial) this.identify(serial);
        }
        if (head !== 'INFO' && head !== 'TEXT') serialAsked &&= head !== 'OKAY' && head !== 'FAIL';
      },
      failed: (op, err) => this.line(`! ${op} failed: ${err.message}`),
    });
  }

  /** The run's events: step outcomes with timing, messages, the end. */
  event(e: PlanEvent): void {
    switch (e.event) {
      case 'plan':
        this.line(`plan: ${e.script} (${e.mode})${e.rom ? ` from ${e.rom}` : ''}, ${e.steps.length} steps, ${e.totalBytes} bytes${e.dryRun ? ', dry run' : ''}`);
        break;
      case 'resume':
        this.line(e.message);
        break;
      case 'step-start':
        this.line(`step ${e.step + 1} start: ${e.label} (line ${e.line})`);
        break;
      case 'step-end':
        this.line(`step ${e.step + 1} ${e.status}${e.resumed ? ' (resumed)' : ''}: ${e.label} in ${(e.durationMs / 1000).toFixed(3)} s${e.message ? ` — ${e.message}` : ''}`);
        break;
      case 'message':
        this.line(`${e.source === 'device' ? 'device' : 'miflash'} ${e.level}: ${e.text}`);
        break;
      case 'done':
        this.line(`done: ${e.status}, ${e.stepsRun} operations${e.stepsResumed ? `, ${e.stepsResumed} resumed` : ''}, ${e.bytesSent} bytes sent in ${(e.durationMs / 1000).toFixed(3)} s`);
        for (const w of e.warnings) this.line(`warning: ${w}`);
        break;
      case 'error':
        this.line(`error ${e.code} (exit ${e.exitCode})${e.step !== undefined ? ` at step ${e.step + 1}` : ''}: ${e.message}${e.hint ? ` — hint: ${e.hint}` : ''}`);
        break;
      default:
        break; // progress and verify: too many, and the outcome says it all
    }
  }

  /** AOSP-style sub-steps (Sending/Writing/Erasing) and device INFO/TEXT. */
  device(e: DeviceEvent): void {
    switch (e.type) {
      case 'step-done':
        this.line(`  ${e.label} OKAY ${(e.elapsedMs / 1000).toFixed(3)}s`);
        break;
      case 'step-fail':
        this.line(`  ${e.label} FAILED ${(e.elapsedMs / 1000).toFixed(3)}s (${e.error})`);
        break;
      default:
        break; // INFO/TEXT are in the replies; progress is not logged
    }
  }

  /** Ends the log; returns its path (undefined when it could not be written). */
  close(): string | undefined {
    if (this.closed) return this.broken ? undefined : this.file;
    this.closed = true;
    if (this.fd === undefined && !this.broken) this.open(this.deviceId);
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
      this.fd = undefined;
    }
    return this.broken ? undefined : this.file;
  }

  private open(name: string): void {
    const stamp = this.started.toISOString().replace(/:/g, '-');
    try {
      const dir = logDir(this.dir);
      mkdirSync(dir, { recursive: true });
      for (let n = 0; ; n++) {
        const file = join(dir, `${safeName(name)}-${stamp}${n ? `-${n}` : ''}.log`);
        try {
          this.fd = openSync(file, 'wx');
          this.file = file;
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
        }
      }
      prune(dir, this.file!);
    } catch {
      this.broken = true;
      this.pending = [];
      return;
    }
    for (const l of this.pending) this.write(l);
    this.pending = [];
  }

  private write(text: string): void {
    try {
      writeSync(this.fd!, text);
    } catch {
      // A full disk: the flash goes on without its log.
    }
  }
}

/** Keeps the newest MAX_LOG_FILES logs. */
function prune(dir: string, keep: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.log'));
  if (files.length <= MAX_LOG_FILES) return;
  const dated = files.map((f) => ({ f: join(dir, f), t: statSync(join(dir, f), { throwIfNoEntry: false })?.mtimeMs ?? 0 })).sort((a, b) => a.t - b.t);
  for (const { f } of dated.slice(0, files.length - MAX_LOG_FILES)) if (f !== keep) unlinkSync(f);
}
