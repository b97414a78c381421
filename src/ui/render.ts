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
  // A terminal that reports no width (some ptys) would make ora's redraw maths loop: use plain lines there.
  const ws = err as NodeJS.WriteStream;
  const tty = opts.tty ?? Boolean(ws.isTTY && (ws.columns ?? 0) > 0);
  if (!tty) return new PlainRenderer(err);
  const { default: ora } = await import('ora');
  return new TtyRenderer(err, ora, opts.progressSuffix);
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
  const eta = rate > 0 ? Math.max(0, (total - done) / rate) : undefined;
  const etaText = eta === undefined ? '' : ` ETA ${eta < 60 ? `${Math.ceil(eta)}s` : `${Math.floor(eta / 60)}m${String(Math.ceil(eta % 60)).padStart(2, '0')}s`}`;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s${etaText}`;
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
  constructor(private readonly err: NodeJS.WritableStream) {}

  event(e: DeviceEvent): void {
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
        break;
      case 'warning':
        this.err.write(`Warning: ${e.message}\n`);
        break;
      default:
        break;
    }
  }

  stop(): void {}
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
    switch (e.type) {
      case 'step-start':
        this.spinner?.stop();
        // discardStdin off: Ctrl-C must reach our SIGINT handler untouched.
        this.spinner = this.ora({ text: e.label, stream: this.err as NodeJS.WriteStream, discardStdin: false }).start();
        this.label = e.label;
        break;
      case 'step-progress': {
        const now = performance.now();
        if (this.spinner && (now - this.lastDraw > 100 || e.bytesDone === e.bytesTotal)) {
          this.lastDraw = now;
          // Keep the line within the terminal: the bar shrinks first.
          const columns = (this.err as NodeJS.WriteStream).columns ?? 80;
          const width = Math.max(8, Math.min(30, columns - this.label.length - 62));
          this.spinner.text = `${this.label} ${formatProgress(e.bytesDone, e.bytesTotal, e.rateBytesPerSec, width)}${this.progressSuffix?.() ?? ''}`;
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
      case 'text':
        this.above(e.message);
        break;
      case 'warning':
        this.above(`Warning: ${e.message}\n`);
        break;
    }
  }

  stop(): void {
    this.spinner?.stop();
    this.spinner = undefined;
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
