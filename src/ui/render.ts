// Renders DeviceEvents for a terminal, a log, or a program:
//  - TTY: an ora spinner per step with a progress bar (bytes, rate, ETA);
//  - not a TTY: one AOSP-style line per finished step
//    ("Sending 'boot' (4096 KB)                           OKAY [  0.012s]");
//  - --json: one JSON object per line on stdout.
// Status goes to stderr in the first two modes so stdout stays for results.
import type { DeviceEvent } from '../fastboot/events.js';

export interface Renderer {
  event(e: DeviceEvent): void;
  /** Stops any spinner (call before printing results or errors). */
  stop(): void;
}

export interface RendererOptions {
  json?: boolean;
  /** Defaults to process.stderr.isTTY. */
  tty?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** TTY only: appended to the progress bar (e.g. the whole plan's percentage). */
  progressSuffix?: () => string;
}

export async function createRenderer(opts: RendererOptions = {}): Promise<Renderer> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  if (opts.json) return new JsonRenderer(out);
  const tty = opts.tty ?? isInteractiveTerminal(err);
  if (!tty) return new PlainRenderer(err);
  const { default: ora } = await import('ora');
  return new TtyRenderer(err, ora, opts.progressSuffix);
}

/**
 * Can we redraw a spinner line on `stream`? Not on a pipe or file, nor where ora
 * would not animate (TERM=dumb, CI): there it prints one line per update instead.
 * A terminal that reports no width (some ptys) would make ora's redraw maths loop.
 */
export function isInteractiveTerminal(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): boolean {
  const ws = stream as NodeJS.WriteStream;
  return Boolean(ws.isTTY && (ws.columns ?? 0) > 0 && env.TERM !== 'dumb' && !('CI' in env));
}

export function formatStatusLine(label: string, elapsedMs: number, status = 'OKAY'): string {
  return `${label.padEnd(50)} ${status} [${(elapsedMs / 1000).toFixed(3).padStart(7)}s]`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatProgress(done: number, total: number, rate: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  // No rate yet (first update): show neither a "0 B/s" nor an ETA rather than wrong ones.
  const eta = rate > 0 ? Math.max(0, (total - done) / rate) : undefined;
  const etaText = eta === undefined ? '' : ` ${formatBytes(rate)}/s ETA ${formatEta(eta)}`;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)}${etaText}`;
}

function formatEta(secs: number): string {
  const s = Math.ceil(secs);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * The spinner text for a transfer, at most `columns - 5` characters: the
 * spinner glyph and a space precede it, and the terminal's "^C" echo must fit
 * after it (a wrapped spinner line is not fully cleared: stale copies stay).
 * What matters most stays longest: the label (it names the piece, "3/9") and
 * the percentages; the bar shrinks, then goes, then the byte counts, the rate
 * and the ETA; only then is the label cut.
 */
export function fitProgressLine(label: string, done: number, total: number, rate: number, suffix: string, columns: number): string {
  const room = Math.max(20, columns - 5);
  for (let width = 30; width >= 8; width--) {
    const text = `${label} ${formatProgress(done, total, rate, width)}${suffix}`;
    if (text.length <= room) return text;
  }
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const pct = `${(frac * 100).toFixed(0)}%`;
  const bytes = `${formatBytes(done)}/${formatBytes(total)}`;
  const eta = rate > 0 ? `ETA ${formatEta(Math.max(0, (total - done) / rate))}` : '';
  const speed = rate > 0 ? `${formatBytes(rate)}/s` : '';
  const variants = [[pct, bytes, speed, eta], [pct, speed, eta], [pct, eta], [pct]];
  for (const parts of variants) {
    const text = `${label} ${parts.filter(Boolean).join(' ')}${suffix}`;
    if (text.length <= room) return text;
  }
  const tail = ` ${pct}${suffix}`;
  const keep = room - tail.length - 1;
  return keep >= 8 ? `${label.slice(0, keep)}…${tail}` : `${label}${tail}`.slice(0, room - 1) + '…';
}

class JsonRenderer implements Renderer {
  constructor(private readonly out: NodeJS.WritableStream) {}

  event(e: DeviceEvent): void {
    const { type, ...rest } = e;
    this.out.write(JSON.stringify({ event: type, ...rest }) + '\n');
  }

  stop(): void {}
}

class PlainRenderer implements Renderer {
  /** A device TEXT chunk left its line open (as AOSP prints it); the next line must not run on from it. */
  private midLine = false;

  constructor(private readonly err: NodeJS.WritableStream) {}

  event(e: DeviceEvent): void {
    if (this.midLine && e.type !== 'text' && e.type !== 'step-start' && e.type !== 'step-progress') this.endLine();
    switch (e.type) {
      case 'step-done':
        this.err.write(formatStatusLine(e.label, e.elapsedMs) + '\n');
        break;
      case 'step-fail':
        this.err.write(`${formatStatusLine(e.label, e.elapsedMs, 'FAILED')} (${e.error})\n`);
        break;
      case 'info':
        this.err.write(`(bootloader) ${e.message}\n`);
        break;
      case 'text':
        this.err.write(e.message);
        if (e.message) this.midLine = !e.message.endsWith('\n');
        break;
      case 'warning':
        this.err.write(`Warning: ${e.message}\n`);
        break;
      default:
        break;
    }
  }

  stop(): void {
    if (this.midLine) this.endLine();
  }

  private endLine(): void {
    this.err.write('\n');
    this.midLine = false;
  }
}

type OraFactory = typeof import('ora').default;
type Spinner = ReturnType<OraFactory>;

class TtyRenderer implements Renderer {
  private spinner: Spinner | undefined;
  private lastDraw = 0;

  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly ora: OraFactory,
    private readonly progressSuffix?: () => string,
  ) {}

  event(e: DeviceEvent): void {
    if (e.type !== 'text' && e.type !== 'step-progress') this.flushText();
    switch (e.type) {
      case 'step-start':
        this.spinner?.stop();
        // discardStdin off: Ctrl-C must reach our SIGINT handler untouched.
        // isEnabled: createRenderer already decided this is a live terminal (ora would re-check only the env).
        // color: ora colours its spinner through chalk, which ignores NO_COLOR; Node's hasColors() honours it.
        this.spinner = this.ora({
          text: e.label,
          stream: this.err as NodeJS.WriteStream,
          discardStdin: false,
          isEnabled: true,
          color: (this.err as NodeJS.WriteStream).hasColors?.() ? 'cyan' : false,
        }).start();
        this.label = e.label;
        break;
      case 'step-progress': {
        const now = performance.now();
        if (this.spinner && (now - this.lastDraw > 100 || e.bytesDone === e.bytesTotal)) {
          this.lastDraw = now;
          const columns = (this.err as NodeJS.WriteStream).columns ?? 80;
          this.spinner.text = fitProgressLine(this.label, e.bytesDone, e.bytesTotal, e.rateBytesPerSec, this.progressSuffix?.() ?? '', columns);
        }
        break;
      }
      case 'step-done':
        this.finishSpinner((s) => s.succeed(formatStatusLine(e.label, e.elapsedMs)));
        break;
      case 'step-fail':
        this.finishSpinner((s) => s.fail(`${formatStatusLine(e.label, e.elapsedMs, 'FAILED')} (${e.error})`));
        break;
      case 'info':
        this.above(`(bootloader) ${e.message}\n`);
        break;
      case 'text': {
        // Only whole lines go above the spinner: a partial one would be redrawn over.
        const all = this.pendingText + e.message;
        const cut = all.lastIndexOf('\n') + 1;
        this.pendingText = all.slice(cut);
        if (cut > 0) this.above(all.slice(0, cut));
        break;
      }
      case 'warning':
        this.above(`Warning: ${e.message}\n`);
        break;
    }
  }

  stop(): void {
    this.spinner?.stop();
    this.spinner = undefined;
    this.flushText();
  }

  private pendingText = '';

  private flushText(): void {
    if (!this.pendingText) return;
    const text = `${this.pendingText}\n`;
    this.pendingText = '';
    this.above(text);
  }

  private label = '';

  private finishSpinner(end: (s: Spinner) => void): void {
    if (this.spinner) end(this.spinner);
    this.spinner = undefined;
  }

  /** Prints above a running spinner without garbling it. */
  private above(text: string): void {
    if (!this.spinner) {
      this.err.write(text);
      return;
    }
    this.spinner.clear();
    this.err.write(text);
    this.spinner.render();
  }
}
