// The --json event contract: one zod schema per event name, every event
// carries device and time, progress is throttled to 10 per second.
import { describe, expect, it } from 'vitest';
import { PLAN_EVENT_NAMES, PlanEventSchema, planEventJsonSchema, progressThrottle, type PlanEvent } from '../../src/plan/events.js';

const base = { device: 'tcp:127.0.0.1:5554', time: '2026-01-01T00:00:00.000Z' };
const progress = (n: number): PlanEvent => ({
  event: 'progress',
  ...base,
  step: 3,
  bytesDone: n,
  bytesTotal: 1000,
  rateBytesPerSec: 10,
  planBytesDone: n,
  planBytesTotal: 1000,
  percent: n / 10,
});

describe('PlanEventSchema', () => {
  it('accepts one well-formed event of each name', () => {
    const samples: PlanEvent[] = [
      { event: 'plan', ...base, script: 'flash_all.sh', mode: 'clean', dryRun: false, totalBytes: 10, steps: [{ step: 0, kind: 'flash', line: 3, label: 'flash boot images/boot.img', bytes: 10 }], warnings: [] },
      { event: 'resume', ...base, journal: '/c/journals/X.json', serial: 'X', skipped: [1], again: [0], resumeAt: 2, message: 'resuming' },
      { event: 'step-start', ...base, step: 0, kind: 'flash', line: 3, label: 'flash boot images/boot.img', bytesTotal: 10 },
      progress(500),
      { event: 'verify', ...base, file: 'images/boot.img', bytesDone: 5, bytesTotal: 10 },
      { event: 'step-end', ...base, step: 0, kind: 'flash', line: 3, label: 'flash boot images/boot.img', status: 'ok', durationMs: 12 },
      { event: 'message', ...base, level: 'warning', source: 'miflash', text: 'x' },
      { event: 'done', ...base, status: 'ok', durationMs: 1, stepsRun: 1, bytesSent: 10, warnings: [] },
      { event: 'error', ...base, code: 'gate.product', message: 'wrong product', exitCode: 3 },
    ];
    expect(samples.map((s) => PlanEventSchema.parse(s).event)).toEqual([...PLAN_EVENT_NAMES]);
  });

  it('rejects unknown names, missing device/time, bad statuses and out-of-range percentages', () => {
    expect(PlanEventSchema.safeParse({ event: 'flashed', ...base }).success).toBe(false);
    const { device: _d, ...noDevice } = progress(1) as Record<string, unknown>;
    void _d;
    expect(PlanEventSchema.safeParse(noDevice).success).toBe(false);
    expect(PlanEventSchema.safeParse({ ...progress(1), time: undefined }).success).toBe(false);
    expect(PlanEventSchema.safeParse({ event: 'step-end', ...base, step: 0, kind: 'flash', line: 1, label: 'x', status: 'done', durationMs: 1 }).success).toBe(false);
    expect(PlanEventSchema.safeParse({ ...progress(1), percent: 101 }).success).toBe(false);
  });

  it('has a JSON Schema with one branch per event name', () => {
    const text = JSON.stringify(planEventJsonSchema());
    for (const name of PLAN_EVENT_NAMES) expect(text).toContain(`"const":"${name}"`);
  });
});

describe('progressThrottle', () => {
  it('lets at most 10 progress events through per second, and every other event always', () => {
    let t = 0;
    const allow = progressThrottle(() => t);
    let passed = 0;
    let others = 0;
    for (let i = 0; i < 3000; i++) {
      t = i; // one event per millisecond for 3 s
      if (allow(progress(i % 1000))) passed++;
      if (allow({ event: 'message', ...base, level: 'info', source: 'device', text: 'x' })) others++;
    }
    expect(passed).toBe(30);
    expect(others).toBe(3000);
  });

  it('a slow stream passes untouched', () => {
    let t = 0;
    const allow = progressThrottle(() => t);
    const results = [0, 150, 300, 450].map((at) => ((t = at), allow(progress(at))));
    expect(results).toEqual([true, true, true, true]);
  });
});
