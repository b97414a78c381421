import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { step, type DeviceEvent } from '../../src/fastboot/events.js';
import { createRenderer, formatProgress, formatStatusLine } from '../../src/ui/render.js';

function capture() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  return { s, text: () => text };
}

describe('renderer', () => {
  it('plain mode prints one AOSP-style line per finished step, INFO as (bootloader)', async () => {
    const out = capture();
    const err = capture();
    const r = await createRenderer({ tty: false, out: out.s, err: err.s });
    await step((e) => r.event(e), "Sending 'boot' (4096 KB)", async (p) => p(10, 20, 5), 20);
    r.event({ type: 'info', message: 'hello' });
    await expect(step((e) => r.event(e), "Writing 'boot'", async () => Promise.reject(new Error('remote: locked')))).rejects.toThrow();
    await new Promise((res) => setImmediate(res));
    const lines = err.text().split('\n');
    expect(lines[0]).toMatch(/^Sending 'boot' \(4096 KB\) {27}OKAY \[ {2}0\.\d{3}s\]$/);
    expect(lines[1]).toBe('(bootloader) hello');
    expect(lines[2]).toMatch(/^Writing 'boot' +FAILED \[ *0\.\d{3}s\] \(remote: locked\)$/);
    expect(out.text()).toBe('');
  });

  it('json mode prints every event as one object per line on stdout', async () => {
    const out = capture();
    const r = await createRenderer({ json: true, out: out.s });
    const events: DeviceEvent[] = [];
    await step((e) => (events.push(e), r.event(e)), 'Erasing', async () => {});
    await new Promise((res) => setImmediate(res));
    const parsed = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.event)).toEqual(['step-start', 'step-done']);
    expect(parsed[1]).toMatchObject({ label: 'Erasing', id: events[0]!.type === 'step-start' ? events[0]!.id : -1 });
  });

  it('formats status lines and progress bars', () => {
    expect(formatStatusLine('x', 1234)).toBe('x'.padEnd(50) + ' OKAY [  1.234s]');
    expect(formatStatusLine('y', 61000, 'FAILED')).toBe('y'.padEnd(50) + ' FAILED [ 61.000s]');
    const p = formatProgress(512 * 1024, 1024 * 1024, 256 * 1024, 10);
    expect(p).toContain('[#####-----]');
    expect(p).toContain(' 50%');
    expect(p).toContain('512.0 KiB/1.00 MiB');
    expect(p).toContain('ETA 2s');
  });
});
