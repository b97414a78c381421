// What a person sees on a terminal: progress text that fits the line, no
// invented rates, ETAs that read like times, and plain lines wherever a
// spinner cannot be redrawn (pipes, TERM=dumb, CI).
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRenderer, fitProgressLine, formatProgress, isInteractiveTerminal } from '../../src/ui/render.js';
import { fakeTty, stripAnsi } from './fake-tty.js';

const MiB = 1024 * 1024;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => vi.unstubAllEnvs());

describe('formatProgress', () => {
  it('shows no rate and no ETA before the rate is known', () => {
    const p = formatProgress(47 * MiB, 48 * MiB, 0, 10);
    expect(p).toBe('[##########]  98% 47.0 MiB/48.0 MiB');
    expect(p).not.toMatch(/B\/s|ETA/);
  });

  it('writes an ETA just under two minutes as 2m00s, never 1m60s', () => {
    // 119.5 s left: rounding the seconds separately from the minutes gave "1m60s".
    const p = formatProgress(0, 119.5 * MiB, MiB, 10);
    expect(p).toContain('ETA 2m00s');
    expect(formatProgress(0, 61 * MiB, MiB, 10)).toContain('ETA 1m01s');
    expect(formatProgress(0, 59.2 * MiB, MiB, 10)).toContain('ETA 1m00s');
    expect(formatProgress(0, 58.2 * MiB, MiB, 10)).toContain('ETA 59s');
  });
});

describe('fitProgressLine', () => {
  const label = "[42/49] Sending sparse 'system' 3/9 (524284 KB)";

  it('never makes a spinner line wider than the terminal', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 25, max: 220 }),
        fc.string({ minLength: 0, maxLength: 140 }),
        fc.nat({ max: 4096 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.constantFrom('', '  plan 7%', '  plan 100%'),
        (columns, lbl, doneMiB, rateMiB, suffix) => {
          const text = fitProgressLine(lbl, doneMiB * MiB, 4096 * MiB, rateMiB * MiB, suffix, columns);
          // glyph + space + text + a "^C" echo still fit on the line
          expect(text.length).toBeLessThanOrEqual(columns - 5);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the piece number and both percentages on an 80-column terminal', () => {
    const text = fitProgressLine(label, 100 * MiB, 512 * MiB, 30 * MiB, '  plan 45%', 80);
    expect(text.startsWith(label)).toBe(true);
    expect(text).toContain(' 20%');
    expect(text).toMatch(/plan 45%$/);
    expect(text.length).toBeLessThanOrEqual(75);
  });

  it('shows the bar, bytes, rate and ETA when there is room', () => {
    const text = fitProgressLine(label, 256 * MiB, 512 * MiB, 64 * MiB, '  plan 45%', 160);
    expect(text).toMatch(/\[#+-+\]  50% 256\.0 MiB\/512\.0 MiB 64\.0 MiB\/s ETA 4s {2}plan 45%$/);
  });
});

describe('choosing live or plain output', () => {
  it('animates only on a terminal with a width, not under TERM=dumb or CI', () => {
    const tty = fakeTty(100).stream;
    expect(isInteractiveTerminal(tty, {})).toBe(true);
    expect(isInteractiveTerminal(tty, { TERM: 'dumb' })).toBe(false);
    expect(isInteractiveTerminal(tty, { CI: 'true' })).toBe(false);
    expect(isInteractiveTerminal(fakeTty(0).stream, {})).toBe(false);
    const notTty = fakeTty(100).stream;
    (notTty as { isTTY: boolean }).isTTY = false;
    expect(isInteractiveTerminal(notTty, {})).toBe(false);
  });

  it('TERM=dumb gets AOSP-style status lines, no "- Sending" lines and no escape codes', async () => {
    vi.stubEnv('TERM', 'dumb');
    const tty = fakeTty(100);
    const r = await createRenderer({ err: tty.stream });
    r.event({ type: 'step-start', id: 1, label: "Sending 'boot' (4096 KB)", bytesTotal: 4 * MiB });
    r.event({ type: 'step-progress', id: 1, bytesDone: 2 * MiB, bytesTotal: 4 * MiB, rateBytesPerSec: MiB });
    r.event({ type: 'step-done', id: 1, label: "Sending 'boot' (4096 KB)", elapsedMs: 12 });
    r.stop();
    expect(tty.raw()).toBe(`${"Sending 'boot' (4096 KB)".padEnd(50)} OKAY [  0.012s]\n`);
  });
});

describe('live spinner on a narrow terminal', () => {
  it('every redrawn progress line fits in 60 columns', async () => {
    const tty = fakeTty(60);
    const r = await createRenderer({ err: tty.stream, tty: true, progressSuffix: () => '  plan 12%' });
    const label = "[42/49] Sending sparse 'system' 3/9 (524284 KB)";
    r.event({ type: 'step-start', id: 1, label, bytesTotal: 512 * MiB });
    for (let i = 1; i <= 3; i++) {
      await tick(120); // the renderer redraws at most every 100 ms
      r.event({ type: 'step-progress', id: 1, bytesDone: i * 100 * MiB, bytesTotal: 512 * MiB, rateBytesPerSec: 30 * MiB });
    }
    await tick(120);
    r.event({ type: 'step-done', id: 1, label, elapsedMs: 3000 });
    r.stop();
    const lines = stripAnsi(tty.raw().replace(/\x1b\[2K/g, '\n')).split(/\r|\n/).filter(Boolean);
    const progressLines = lines.filter((l) => l.includes('%'));
    expect(progressLines.length).toBeGreaterThan(0);
    for (const l of progressLines) expect(l.length, l).toBeLessThanOrEqual(57);
    expect(progressLines.some((l) => l.includes('3/9') && l.includes('plan 12%'))).toBe(true);
  });
});

describe('device TEXT chunks (may end mid-line)', () => {
  it('plain: the next line never runs on from an unterminated TEXT', async () => {
    const tty = fakeTty(100);
    (tty.stream as { isTTY: boolean }).isTTY = false;
    const r = await createRenderer({ err: tty.stream, tty: false });
    r.event({ type: 'text', message: 'erasing ' });
    r.event({ type: 'text', message: 'cache...' });
    r.event({ type: 'info', message: 'done' });
    r.event({ type: 'text', message: 'trailing' });
    r.stop();
    expect(tty.raw()).toBe('erasing cache...\n(bootloader) done\ntrailing\n');
  });

  it('terminal: chunks are joined into whole lines above the spinner, never drawn over', async () => {
    const tty = fakeTty(100);
    const r = await createRenderer({ err: tty.stream, tty: true });
    r.event({ type: 'step-start', id: 1, label: "Writing 'boot'" });
    r.event({ type: 'text', message: 'verifying ' });
    await tick(250); // past ora's redraw interval and its deferral after a partial write
    r.event({ type: 'text', message: 'signature\nstage 2' });
    r.event({ type: 'step-done', id: 1, label: "Writing 'boot'", elapsedMs: 5 });
    r.stop();
    const shown = stripAnsi(tty.raw().replace(/\x1b\[2K/g, '\n'));
    expect(shown).toContain('verifying signature\n');
    expect(shown).toMatch(/stage 2\n[^]*✔ Writing 'boot' +OKAY/);
    expect(shown).not.toMatch(/verifying [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
  });
});
