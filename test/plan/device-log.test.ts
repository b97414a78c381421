// The per-device log (src/plan/device-log.ts): what a wrapped transport
// records, how the file is named, and that a log never breaks a run.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceLog, logDir } from '../../src/plan/device-log.js';
import type { Transport } from '../../src/transport/transport.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-devlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A transport whose reads return the given packets in order; writes are kept. */
function scripted(replies: Array<string | Buffer>): Transport & { written: Buffer[] } {
  const written: Buffer[] = [];
  return {
    id: 'tcp:127.0.0.1:5554',
    kind: 'memory',
    preferredWriteSize: 4096,
    maxInFlight: 1,
    written,
    write: async (d) => {
      written.push(Buffer.from(d));
    },
    read: async () => {
      const r = replies.shift();
      if (r === undefined) throw new Error('connection closed by the device');
      return Buffer.isBuffer(r) ? r : Buffer.from(r, 'latin1');
    },
    close: async () => {},
  };
}

const body = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.slice(13)) // the time of day
    .join('\n');

describe('DeviceLog', () => {
  it('records commands, replies and data phases by size; takes its name from the serial the device answers; lines before that are kept', async () => {
    const cache = path.join(dir, 'a');
    const log = new DeviceLog(cache, 'tcp:127.0.0.1:5554');
    log.line('header');
    const t = log.wrap(scripted(['OKAY0x20000000', 'OKAYSER/1 ', 'DATA00000010', 'OKAY', 'DATA00000004', Buffer.from([0, 1, 0xff, 2]), 'OKAY', 'INFOhello', 'FAILno\\such']));
    await t.write(Buffer.from('getvar:max-download-size'));
    await t.read(1024);
    expect(log.path).toBeUndefined(); // no serial yet: nothing on disk
    await t.write(Buffer.from('getvar:serialno'));
    await t.read(1024);
    expect(path.basename(log.path!)).toMatch(/^SER_1-[0-9a-f]{8}-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.log$/);
    await t.write(Buffer.from('download:00000010'));
    await t.read(1024);
    await t.write(Buffer.alloc(10, 0x41));
    await t.write(Buffer.alloc(6, 0x42));
    await t.read(1024);
    await t.write(Buffer.from('upload'));
    await t.read(1024);
    await t.read(4);
    await t.read(1024);
    await t.write(Buffer.from('oem x'));
    await t.read(1024);
    await t.read(1024);
    await expect(t.read(1024)).rejects.toThrow(/closed/);
    const file = log.close()!;
    expect(log.close()).toBe(file); // twice: the same file, no second one
    expect(readdirSync(logDir(cache))).toHaveLength(1);
    expect(body(file)).toBe(
      [
        'header',
        '> getvar:max-download-size',
        '< OKAY0x20000000',
        '> getvar:serialno',
        '< OKAYSER/1 ',
        '> download:00000010',
        '< DATA00000010',
        '> (16 bytes of data)',
        '< OKAY',
        '> upload',
        '< DATA00000004',
        '< (4 bytes of data)',
        '< OKAY',
        '> oem x',
        '< INFOhello',
        '< FAILno\\\\such',
        '! read failed: connection closed by the device',
        '',
      ].join('\n'),
    );
  });

  it('a run that never hears the serial is named after the device address; step events are logged with their outcome and time', () => {
    const cache = path.join(dir, 'b');
    const log = new DeviceLog(cache, 'tcp:127.0.0.1:5554');
    const base = { device: 'tcp:127.0.0.1:5554', time: 'T' };
    log.event({ event: 'step-start', ...base, step: 2, kind: 'flash', line: 9, label: 'flash xbl images/xbl.elf' });
    log.device({ type: 'step-done', id: 1, label: "Sending 'xbl' (1 KB)", elapsedMs: 12 });
    log.event({ event: 'step-end', ...base, step: 2, kind: 'flash', line: 9, label: 'flash xbl images/xbl.elf', status: 'ok', durationMs: 1500 });
    log.event({ event: 'step-end', ...base, step: 3, kind: 'flash', line: 10, label: 'flash abl images/abl.elf', status: 'skipped', durationMs: 0, resumed: true, message: 'resumed: done' });
    log.event({ event: 'error', ...base, code: 'fastboot.fail', message: 'boom', exitCode: 4, step: 4 });
    const file = log.close()!;
    expect(path.basename(file)).toMatch(/^tcp_127\.0\.0\.1_5554-[0-9a-f]{8}-/);
    expect(body(file)).toBe(
      [
        'step 3 start: flash xbl images/xbl.elf (line 9)',
        "  Sending 'xbl' (1 KB) OKAY 0.012s",
        'step 3 ok: flash xbl images/xbl.elf in 1.500 s',
        'step 4 skipped (resumed): flash abl images/abl.elf in 0.000 s — resumed: done',
        'error fastboot.fail (exit 4) at step 5: boom',
        '',
      ].join('\n'),
    );
  });

  it('an unwritable cache folder costs the log only', async () => {
    const blocker = path.join(dir, 'file');
    writeFileSync(blocker, 'x');
    const log = new DeviceLog(blocker, 'dev');
    const t = log.wrap(scripted(['OKAYS1']));
    await t.write(Buffer.from('getvar:serialno'));
    expect((await t.read(64)).toString()).toBe('OKAYS1');
    log.line('more');
    expect(log.close()).toBeUndefined();
  });
});
