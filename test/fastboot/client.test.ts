import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AbortedError, BadInputError, TransportClosedError, TransportError, TransportTimeoutError } from '../../src/errors.js';
import { FastbootClient } from '../../src/fastboot/client.js';
import { FastbootFailError, FastbootProtocolError } from '../../src/fastboot/errors.js';
import { EmulatedFastbootDevice, runFastbootDevice, startFastbootEmulator, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import { openTcpTransport } from '../../src/transport/tcp.js';
import type { Transport } from '../../src/transport/transport.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 10)) & 0xff;
  return b;
}

/** A client wired to an emulated device over the in-memory pair. */
function memoryClient(opts: Partial<FastbootEmulatorOptions> = {}, clientTimeoutMs = 2000) {
  const device = new EmulatedFastbootDevice({ store: null, ...opts });
  const pair = createMemoryTransportPair({ preferredWriteSize: 64 * 1024, maxInFlight: 3 });
  const served = runFastbootDevice(pair.device, device);
  const info: string[] = [];
  const text: string[] = [];
  const client = new FastbootClient(pair.host, { timeoutMs: clientTimeoutMs, onInfo: (l) => info.push(l), onText: (t) => text.push(t) });
  return { device, client, served, info, text, pair };
}

/** A scripted device on the memory pair: answers each command with `script(cmd)` packets. */
function scriptedClient(script: (cmd: string, dev: Transport) => Promise<void>, timeoutMs = 500) {
  const pair = createMemoryTransportPair();
  const received: Buffer[] = [];
  void (async () => {
    for (;;) {
      let packet: Buffer;
      try {
        packet = await pair.device.read(4096, { timeoutMs: 60_000 });
      } catch {
        return;
      }
      received.push(packet);
      await script(packet.toString('latin1'), pair.device);
    }
  })();
  return { client: new FastbootClient(pair.host, { timeoutMs }), received, pair };
}

const send = (t: Transport, s: string) => t.write(Buffer.from(s, 'latin1'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FastbootClient against the emulator (memory pair)', () => {
  it('getvar, getvar all, download + flash, erase, set_active, oem, reboot', async () => {
    const { client, device, served, info } = memoryClient({ store: null, product: 'cepheus', slots: ['a', 'b'] });
    expect(await client.getvar('product')).toBe('cepheus');
    expect(await client.getvar('current-slot')).toBe('a');
    const all = await client.getvarAll();
    expect(all).toContainEqual(['product', 'cepheus']);
    expect(all.some(([k]) => k === 'partition-size:boot_a')).toBe(true);
    await expect(client.getvar('no-such-var')).rejects.toBeInstanceOf(FastbootFailError);

    const image = pattern(300 * 1024 + 17);
    await client.download(image);
    await client.flash('boot_a');
    expect(device.log).toContain(`download ${image.length} ${sha(image)}`);
    expect(device.log).toContain('flash:boot_a');
    expect(client.stats.bytesSent).toBe(image.length);

    await client.erase('userdata');
    await client.setActive('b');
    expect(await client.getvar('current-slot')).toBe('b');
    await client.oem(['device-info']);
    expect(info).toContain('Device critical unlocked: true');
    await client.flashing('get_unlock_ability');
    expect(client.stats.commands.filter((c) => c.startsWith('download:'))).toEqual([`download:${image.length.toString(16).padStart(8, '0')}`]);
    await client.reboot('bootloader');
    expect(device.log.at(-1)).toBe('reboot-bootloader');
    await served; // the device dropped the link after OKAY
    await expect(client.getvar('product')).rejects.toBeInstanceOf(TransportError);
  });

  it('a FAIL carries the command and the device message', async () => {
    const { client } = memoryClient({ faults: { failOn: 'flash:boot', failMessage: 'Partition flashing is not allowed' } });
    await client.download(pattern(4096));
    const err = await client.flash('boot').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FastbootFailError);
    expect((err as FastbootFailError).command).toBe('flash:boot');
    expect((err as FastbootFailError).deviceMessage).toBe('Partition flashing is not allowed');
    expect((err as FastbootFailError).exitCode).toBe(4);
  });

  it('reports INFO and TEXT before the final status', async () => {
    const { client, info, text } = memoryClient({ faults: { infoBefore: ['erasing...', 'done'], textBefore: ['raw'] } });
    await client.erase('cache');
    expect(info).toEqual(['erasing...', 'done']);
    expect(text).toEqual(['raw']);
  });

  it('a stalled device ends in a timeout error within the reply timeout', async () => {
    const { client } = memoryClient({ faults: { stallOn: 'getvar:product' } }, 500);
    const t0 = performance.now();
    const err = await client.getvar('product').catch((e: unknown) => e);
    const took = performance.now() - t0;
    expect(err).toBeInstanceOf(TransportTimeoutError);
    expect((err as Error).message).toMatch(/getvar:product/);
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1500);
  });

  it('a device dropping the link mid-download ends in a transport error', async () => {
    const { client } = memoryClient({ faults: { dropAfterBytes: 100 * 1024 } }, 500);
    const err = await client.download(pattern(512 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
  });

  it('download can be aborted before it starts', async () => {
    const { client } = memoryClient();
    const ctl = new AbortController();
    ctl.abort();
    await expect(client.download(pattern(10), { signal: ctl.signal })).rejects.toBeInstanceOf(AbortedError);
    expect(client.stats.commands).toEqual([]);
  });
});

describe('FastbootClient against a scripted device', () => {
  it('the reply timeout restarts on every INFO and TEXT', async () => {
    const { client } = scriptedClient(async (_cmd, dev) => {
      for (let i = 0; i < 4; i++) {
        await sleep(250);
        await send(dev, i % 2 ? 'TEXTtick' : 'INFOworking');
      }
      await sleep(250);
      await send(dev, 'OKAYfinished');
    }, 400);
    const t0 = performance.now();
    const r = await client.command('oem slow');
    expect(r.message).toBe('finished');
    expect(r.info).toEqual(['working', 'working']);
    expect(performance.now() - t0).toBeGreaterThan(1000); // well past one 400 ms timeout
  });

  it('without INFO the same delay times out', async () => {
    const { client } = scriptedClient(async (_cmd, dev) => {
      await sleep(700);
      await send(dev, 'OKAY').catch(() => {});
    }, 400);
    await expect(client.command('oem slow')).rejects.toBeInstanceOf(TransportTimeoutError);
  });

  it('refuses a DATA size different from the size asked for and sends no data', async () => {
    const { client, received } = scriptedClient(async (cmd, dev) => {
      if (cmd.startsWith('download:')) await send(dev, 'DATA00000800');
    });
    const err = await client.download(pattern(4096)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FastbootProtocolError);
    expect((err as Error).message).toMatch(/asked for 2048 bytes .* offered 4096/);
    await sleep(50);
    expect(received.map((b) => b.toString('latin1'))).toEqual(['download:00001000']);
  });

  it('skips a zero-length packet before the reply', async () => {
    const { client } = scriptedClient(async (_cmd, dev) => {
      await dev.write(new Uint8Array(0));
      await send(dev, 'OKAYyes');
    });
    expect(await client.getvar('x')).toBe('yes');
  });

  it('refuses oversized and unknown replies', async () => {
    const { client } = scriptedClient(async (cmd, dev) => {
      if (cmd === 'getvar:big') await send(dev, 'OKAY' + 'x'.repeat(300));
      else await send(dev, 'HUH?');
    });
    await expect(client.getvar('big')).rejects.toThrow(/304 bytes exceeds the 256-byte limit/);
    await expect(client.getvar('x')).rejects.toThrow(/unknown reply status/);
  });

  it('refuses over-long commands before sending anything', async () => {
    const { client, received } = scriptedClient(async (_c, dev) => send(dev, 'OKAY'));
    await expect(client.oem(['x'.repeat(4093)])).rejects.toBeInstanceOf(BadInputError);
    await client.oem(['x'.repeat(4092)]);
    expect(received.length).toBe(1);
    expect(received[0]!.length).toBe(4096);
  });

  it('upload and fetch read the announced data then OKAY', async () => {
    const staged = pattern(3000, 9);
    const { client } = scriptedClient(async (cmd, dev) => {
      if (cmd === 'upload') {
        await send(dev, 'DATA00000bb8');
        await dev.write(staged.subarray(0, 1000));
        await dev.write(staged.subarray(1000));
        await send(dev, 'OKAY');
      } else if (cmd === 'fetch:boot:0x00000010:0x00000020') {
        await send(dev, 'DATA00000020');
        await dev.write(staged.subarray(16, 48));
        await send(dev, 'OKAY');
      } else await send(dev, 'FAILunknown');
    });
    expect((await client.upload()).equals(staged)).toBe(true);
    expect((await client.fetch('boot', 16, 32)).equals(staged.subarray(16, 48))).toBe(true);
    expect(client.stats.bytesReceived).toBe(3032);
  });

  it('a closed link is a TransportClosedError naming what the client was doing', async () => {
    const { client, pair } = scriptedClient(async () => {});
    setTimeout(() => void pair.device.close(), 50);
    const err = await client.getvar('product').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportClosedError);
    expect((err as Error).message).toMatch(/reply to 'getvar:product'/);
  });
});

describe('FastbootClient over TCP', () => {
  it('talks to the emulator over a socket', async () => {
    const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, serial: 'TCP123' });
    const t = await openTcpTransport(emu.address, { timeoutMs: 2000 });
    const client = new FastbootClient(t, { timeoutMs: 2000 });
    try {
      expect(await client.getvar('serialno')).toBe('TCP123');
      const image = pattern(2 * 1024 * 1024 + 5, 3);
      await client.download(image);
      await client.flash('boot');
      expect(emu.log).toContain(`download ${image.length} ${sha(image)}`);
    } finally {
      await client.close();
      await emu.close();
    }
  });

  it('a stalled TCP device times out; a dropped one reports the close', async () => {
    const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, faults: { stallOn: 2, dropAfterBytes: 64 * 1024 } });
    try {
      const c1 = new FastbootClient(await openTcpTransport(emu.address, { timeoutMs: 500 }), { timeoutMs: 500 });
      await c1.getvar('product');
      await expect(c1.getvar('product')).rejects.toBeInstanceOf(TransportTimeoutError);
      await c1.close();
    } finally {
      await emu.close();
    }
    const emu2 = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, faults: { dropAfterBytes: 64 * 1024 } });
    try {
      const c2 = new FastbootClient(await openTcpTransport(emu2.address, { timeoutMs: 500 }), { timeoutMs: 500 });
      await expect(c2.download(pattern(1024 * 1024))).rejects.toBeInstanceOf(TransportError);
      await c2.close();
    } finally {
      await emu2.close();
    }
  });
});
