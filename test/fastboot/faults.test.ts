// Every fault the emulator can inject ends a real flash (over TCP) in a typed
// error within the reply timeout: no hang, no unhandled rejection.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceFailError, MiflashError, TransportClosedError, TransportError, TransportTimeoutError } from '../../src/errors.js';
import { FastbootClient } from '../../src/fastboot/client.js';
import type { DeviceEvent } from '../../src/fastboot/events.js';
import { flashImage } from '../../src/fastboot/flash-image.js';
import { startFastbootEmulator, type FaultOptions } from '../../src/emulator/fastboot/index.js';
import { openTcpTransport } from '../../src/transport/tcp.js';

const TIMEOUT = 500;
let dir: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miflash-faults-'));
  image = join(dir, 'img');
  const b = Buffer.alloc(1536 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = (i * 17 + (i >> 12)) & 0xff;
  await writeFile(image, b);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type ErrorClass = abstract new (...args: never[]) => MiflashError;

const modes: Array<{ name: string; faults: FaultOptions; expected: ErrorClass; sparseLimit?: number }> = [
  { name: 'FAIL on flash', faults: { failOn: 'flash', failMessage: 'nope' }, expected: DeviceFailError },
  { name: 'FAIL on the 5th command (flash)', faults: { failOn: 5 }, expected: DeviceFailError },
  { name: 'FAIL on download', faults: { failOn: 'download' }, expected: DeviceFailError },
  { name: 'stall on the first getvar', faults: { stallOn: 1 }, expected: TransportTimeoutError },
  { name: 'stall on download', faults: { stallOn: 'download' }, expected: TransportTimeoutError },
  { name: 'stall on flash', faults: { stallOn: 'flash' }, expected: TransportTimeoutError },
  { name: 'stall on the 2nd piece', faults: { stallOn: 8 }, expected: TransportTimeoutError, sparseLimit: 512 * 1024 },
  { name: 'drop after 300 KB of data', faults: { dropAfterBytes: 300 * 1024 }, expected: TransportError },
  { name: 'drop right at the start of data', faults: { dropAfterBytes: 1 }, expected: TransportError },
];

describe('fault injection', () => {
  for (const m of modes) {
    it(`${m.name} -> ${m.expected.name}`, async () => {
      const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, faults: m.faults });
      const events: DeviceEvent[] = [];
      const client = new FastbootClient(await openTcpTransport(emu.address, { timeoutMs: TIMEOUT }), { timeoutMs: TIMEOUT });
      const t0 = performance.now();
      try {
        const err = await flashImage(client, 'boot', image, { sparseLimit: m.sparseLimit, onEvent: (e) => events.push(e) }).then(
          () => undefined,
          (e: unknown) => e,
        );
        const took = performance.now() - t0;
        expect(err).toBeInstanceOf(m.expected);
        expect((err as MiflashError).message.length).toBeGreaterThan(10);
        // One timeout (plus scheduling slack) at most: the timeout is per reply, and only one reply is awaited when it fires.
        expect(took).toBeLessThan(TIMEOUT + 1500);
        if (m.expected === TransportTimeoutError) expect(took).toBeGreaterThanOrEqual(TIMEOUT - 50);
        // A step was in progress or the failure came from a getvar; no step is left "started".
        const started = events.filter((e) => e.type === 'step-start').length;
        const ended = events.filter((e) => e.type === 'step-done' || e.type === 'step-fail').length;
        expect(ended).toBe(started);
      } finally {
        await client.close();
        await emu.close();
      }
    });
  }

  it('a FAIL on an optional getvar (is-logical) is taken as "no", as AOSP does', async () => {
    const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, faults: { failOn: 3 } });
    const client = new FastbootClient(await openTcpTransport(emu.address, { timeoutMs: TIMEOUT }), { timeoutMs: TIMEOUT });
    try {
      await flashImage(client, 'boot', image);
      expect(emu.log[2]).toBe('getvar:is-logical:boot');
      expect(emu.log.at(-1)).toBe('flash:boot');
    } finally {
      await client.close();
      await emu.close();
    }
  });

  it('INFO and TEXT before every reply do not disturb a flash', async () => {
    const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, faults: { infoBefore: ['a', 'b'], textBefore: ['t'] } });
    const events: DeviceEvent[] = [];
    const client = new FastbootClient(await openTcpTransport(emu.address, { timeoutMs: TIMEOUT }), {
      timeoutMs: TIMEOUT,
      onInfo: (message) => events.push({ type: 'info', message }),
    });
    try {
      await flashImage(client, 'boot', image, { onEvent: (e) => events.push(e) });
      expect(events.filter((e) => e.type === 'info').length).toBeGreaterThanOrEqual(2 * 5);
      expect(emu.log.filter((l) => l.startsWith('download ')).length).toBe(1);
    } finally {
      await client.close();
      await emu.close();
    }
  });

  it('a closed connection before the command is a TransportClosedError', async () => {
    const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null });
    const client = new FastbootClient(await openTcpTransport(emu.address, { timeoutMs: TIMEOUT }), { timeoutMs: TIMEOUT });
    await emu.close();
    const err = await client.getvar('product').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportClosedError);
    await client.close();
  });
});
