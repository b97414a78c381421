// A writable stream that looks like a terminal to ora and readline: isTTY,
// columns, and the cursor methods (written out as the ANSI codes a real tty
// stream writes), with everything captured as text.
import { PassThrough } from 'node:stream';

export interface FakeTty {
  stream: NodeJS.WriteStream;
  /** Everything written so far, escape codes included. */
  raw(): string;
  /** The last line a person would see (after the last clear / carriage return), without escape codes. */
  lastLine(): string;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

export function fakeTty(columns = 100): FakeTty {
  const pt = new PassThrough();
  let text = '';
  pt.on('data', (d: Buffer) => (text += d.toString()));
  const s = pt as unknown as NodeJS.WriteStream & Record<string, unknown>;
  Object.assign(s, {
    isTTY: true,
    columns,
    rows: 40,
    cursorTo: (x: number, _y?: unknown, cb?: () => void) => pt.write(`\x1b[${x + 1}G`, cb),
    moveCursor: (dx: number, dy: number, cb?: () => void) => pt.write(`${dy < 0 ? `\x1b[${-dy}A` : dy > 0 ? `\x1b[${dy}B` : ''}${dx ? `\x1b[${dx}C` : ''}`, cb),
    clearLine: (_dir: number, cb?: () => void) => pt.write('\x1b[2K', cb),
    getColorDepth: () => 1,
    hasColors: () => false,
  });
  return {
    stream: s,
    raw: () => text,
    lastLine: () => {
      // A clear-line code or a carriage return starts the line over.
      const parts = text.split(/\x1b\[2K|\r|\n/);
      return stripAnsi(parts[parts.length - 1] ?? '');
    },
  };
}
