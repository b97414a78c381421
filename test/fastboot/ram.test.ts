// boot / continue / stage / get_staged / fetch / logical partitions / reboot
// fastboot, through the client against the in-process emulator (memory pair)
// or a scripted device: the wire sequence each sends, the data it moves, and
// what it refuses before sending anything.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BadInputError, DeviceFailError } from '../../src/errors.js';
import { FastbootClient } from '../../src/fastboot/client.js';
import { FastbootFailError } from '../../src/fastboot/errors.js';
import { fetchPartition, fixNumericVar } from '../../src/fastboot/fetch.js';
import { DeviceLink } from '../../src/fastboot/link.js';
import { createLogicalPartition, deleteLogicalPartition, resizeLogicalPartition, snapshotUpdate } from '../../src/fastboot/logical.js';
import { bootImage, continueBoot, getStaged, stageFile } from '../../src/fastboot/ram.js';
import { EmulatedFastbootDevice, runFastbootDevice, startFastbootEmulator, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import { openTcpTransport } from '../../src/transport/tcp.js';
import { noise } from '../helpers/emulator.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-ram-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function memoryClient(opts: Partial<FastbootEmulatorOptions> = {}) {
  const device = new EmulatedFastbootDevice({ store: path.join(dir, `store-${Math.random().toString(36).slice(2)}`), ...opts });
  const pair = createMemoryTransportPair({ preferredWriteSize: 64 * 1024, maxInFlight: 2 });
  void runFastbootDevice(pair.device, device);
  return { device, client: new FastbootClient(pair.host, { timeoutMs: 2000 }) };
}

/** A device that answers every command from `answer` and records what it got. */
function scripted(answer: (cmd: string) => string) {
  const pair = createMemoryTransportPair();
  const got: string[] = [];
  void (async () => {
    for (;;) {
      let p: Buffer;
      try {
        p = await pair.device.read(4096, { timeoutMs: 60_000 });
      } catch {
        return;
      }
      const cmd = p.toString('latin1');
      got.push(cmd);
      await pair.device.write(Buffer.from(answer(cmd), 'latin1'));
    }
  })();
  return { client: new FastbootClient(pair.host, { timeoutMs: 1000 }), got };
}

describe('boot, continue, stage, get_staged', () => {
  it('boot downloads the image then sends boot; continue sends continue', async () => {
    const { client, device } = memoryClient();
    const img = noise(50_000, 1);
    await bootImage(client, img);
    expect(device.log).toEqual([`download ${img.length} ${sha(img)}`, 'boot']);
    const second = memoryClient();
    await continueBoot(second.client);
    expect(second.device.log).toEqual(['continue']);
  });

  it('stage sends the file unsplit after max-download-size; get_staged writes back exactly those bytes', async () => {
    const { client, device } = memoryClient();
    const data = noise(300_001, 2);
    const file = path.join(dir, 'stage.bin');
    writeFileSync(file, data);
    expect(await stageFile(client, file)).toBe(data.length);
    const out = path.join(dir, 'staged.out');
    writeFileSync(out, 'old contents that must go');
    expect(await getStaged(client, out)).toBe(data.length);
    expect(readFileSync(out).equals(data)).toBe(true);
    expect(device.log).toEqual(['getvar:max-download-size', `download ${data.length} ${sha(data)}`, 'upload']);
    expect(client.stats.commands).toEqual(['getvar:max-download-size', `download:${data.length.toString(16).padStart(8, '0')}`, 'upload']);
  });

  it('stage even sends a file with a broken sparse header as raw bytes (AOSP does not parse it)', async () => {
    const { client, device } = memoryClient();
    const data = Buffer.concat([Buffer.from([0x3a, 0xff, 0x26, 0xed]), noise(1000, 3)]);
    const file = path.join(dir, 'fake-sparse.bin');
    writeFileSync(file, data);
    await stageFile(client, file, { sparseLimit: 4096 });
    expect(device.log).toEqual([`download ${data.length} ${sha(data)}`]);
  });

  it('stage refuses a file over the limit before sending anything (staged data is never split)', async () => {
    const { client, device } = memoryClient({ maxDownloadSize: 64 * 1024 });
    const file = path.join(dir, 'big.bin');
    writeFileSync(file, noise(64 * 1024 + 1, 4));
    await expect(stageFile(client, file)).rejects.toThrow(/never split/);
    expect(device.log).toEqual(['getvar:max-download-size']);
    await expect(stageFile(client, path.join(dir, 'missing.bin'))).rejects.toBeInstanceOf(BadInputError);
  });
});

describe('fetch', () => {
  it('reads the partition in max-fetch-size chunks into OUT', async () => {
    const { client, device } = memoryClient({ partitions: { blob: 10_000 }, vars: { 'max-fetch-size': '0x1000' } });
    const content = noise(10_000, 5);
    writeFileSync(device.partitionPath('blob'), content);
    const out = path.join(dir, 'fetched.img');
    expect(await fetchPartition(client, 'blob', out)).toEqual([{ partition: 'blob', bytes: 10_000 }]);
    expect(readFileSync(out).equals(content)).toBe(true);
    expect(device.log).toEqual([
      'getvar:has-slot:blob',
      'getvar:max-fetch-size',
      'getvar:partition-size:blob',
      'fetch:blob:0x00000000:0x00001000',
      'fetch:blob:0x00001000:0x00001000',
      'fetch:blob:0x00002000:0x00000710',
    ]);
  });

  it('--slot all appends every slot to the one file, as AOSP does', async () => {
    const { client, device } = memoryClient({ slots: ['a', 'b'], partitions: { dtbo_a: 4096, dtbo_b: 4096 } });
    const a = noise(4096, 6);
    const b = noise(4096, 7);
    writeFileSync(device.partitionPath('dtbo_a'), a);
    writeFileSync(device.partitionPath('dtbo_b'), b);
    const out = path.join(dir, 'both.img');
    await fetchPartition(client, 'dtbo', out, { slot: 'all' });
    expect(readFileSync(out).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('a device without max-fetch-size cannot fetch: said before any fetch is sent', async () => {
    const { client, got } = scripted((cmd) => (cmd === 'getvar:max-fetch-size' ? 'FAILunknown variable' : cmd.startsWith('getvar:has-slot') ? 'OKAYno' : 'FAILno'));
    await expect(fetchPartition(client, 'boot', path.join(dir, 'x.img'))).rejects.toThrow(/max-fetch-size/);
    expect(got.some((c) => c.startsWith('fetch:'))).toBe(false);
  });

  it('partition sizes are read as AOSP fb_fix_numeric_var does (implicit hex)', () => {
    expect(fixNumericVar(' 1000 ')).toBe(0x1000);
    expect(fixNumericVar('0x20')).toBe(0x20);
    expect(fixNumericVar('zz')).toBeUndefined();
  });
});

describe('logical partitions and snapshot updates', () => {
  it('sends create / delete / resize / snapshot-update as AOSP spells them', async () => {
    const { client, got } = scripted((cmd) => (cmd === 'getvar:has-slot:system' ? 'OKAYyes' : cmd === 'getvar:current-slot' ? 'OKAYb' : cmd === 'getvar:is-logical:system_b' ? 'OKAYyes' : 'OKAY'));
    await createLogicalPartition(client, 'product_b', '4096');
    await deleteLogicalPartition(client, 'product_b');
    expect(await resizeLogicalPartition(client, 'system', '0x100000')).toEqual(['system_b']);
    await snapshotUpdate(client, 'cancel');
    await snapshotUpdate(client, undefined);
    expect(got).toEqual([
      'create-logical-partition:product_b:4096',
      'delete-logical-partition:product_b',
      'getvar:has-slot:system',
      'getvar:current-slot',
      'getvar:is-logical:system_b',
      'resize-logical-partition:system_b:0x100000',
      'snapshot-update:cancel',
      'snapshot-update:',
    ]);
  });

  it('resize skips a partition the device does not call logical; sizes that are not byte counts are refused unsent', async () => {
    const { client, got } = scripted((cmd) => (cmd.startsWith('getvar:has-slot') ? 'OKAYno' : cmd.startsWith('getvar:is-logical') ? 'OKAYno' : 'OKAY'));
    expect(await resizeLogicalPartition(client, 'boot', '100')).toEqual([]);
    expect(got).toEqual(['getvar:has-slot:boot', 'getvar:is-logical:boot']);
    await expect(createLogicalPartition(client, 'x', '1G')).rejects.toBeInstanceOf(BadInputError);
    await expect(snapshotUpdate(client, 'now')).rejects.toBeInstanceOf(BadInputError);
    expect(got).toHaveLength(2);
  });

  it('a bootloader FAIL says to reboot into fastbootd', async () => {
    const { client } = scripted((cmd) => (cmd === 'getvar:is-userspace' ? 'OKAYno' : 'FAILunknown command'));
    const err = await createLogicalPartition(client, 'x', '4096').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FastbootFailError);
    expect((err as FastbootFailError).hint).toMatch(/reboot fastboot/);
  });
});

describe('reboot fastboot (AOSP reboot_to_userspace_fastboot)', () => {
  it('reboots, waits for the link to drop, reconnects to the same serial and checks is-userspace', async () => {
    const bootloader = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, serial: 'SER1' });
    const fastbootd = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, serial: 'SER1', vars: { 'is-userspace': 'yes' } });
    try {
      const first = new FastbootClient(await openTcpTransport(bootloader.address), { timeoutMs: 2000 });
      const opened: FastbootClient[] = [];
      const link = new DeviceLink(first, {
        deviceId: 'emu',
        reopen: async () => new FastbootClient(await openTcpTransport(fastbootd.address), { timeoutMs: 2000 }),
        reconnectIntervalMs: 50,
        onClient: (c) => opened.push(c),
      });
      expect(await link.isUserspace()).toBe(false);
      await link.rebootToUserspace();
      expect(link.client).toBe(opened[0]);
      expect(bootloader.device.log).toEqual(['getvar:is-userspace', 'getvar:serialno', 'reboot-fastboot']);
      expect(fastbootd.device.log).toEqual(['getvar:serialno', 'getvar:is-userspace']);
      for (const c of [first, ...opened]) await c.close();
    } finally {
      await bootloader.close();
      await fastbootd.close();
    }
  });

  it('a device that comes back in the bootloader is an error (AOSP: "one or more components might be unbootable")', async () => {
    const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, serial: 'SER2', fastbootd: false });
    try {
      const clients: FastbootClient[] = [];
      const open = async () => {
        const c = new FastbootClient(await openTcpTransport(emu.address), { timeoutMs: 2000 });
        clients.push(c);
        return c;
      };
      const link = new DeviceLink(await open(), { deviceId: 'emu', reopen: open, reconnectIntervalMs: 50 });
      await expect(link.rebootToUserspace()).rejects.toThrow(/unbootable/);
      for (const c of clients) await c.close();
    } finally {
      await emu.close();
    }
  });

  it('without a way to reconnect, a reboot into fastbootd is refused before anything is sent', async () => {
    const { client, got } = scripted(() => 'OKAY');
    const link = new DeviceLink(client, { deviceId: 'x' });
    await expect(link.rebootToUserspace()).rejects.toBeInstanceOf(DeviceFailError);
    expect(got).toEqual([]);
  });
});
