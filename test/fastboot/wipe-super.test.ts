// wipe-super: the partition table image flashed to super reads back (LP
// library) as the super_empty.img metadata in every slot; retrofit devices get
// `oem allow-flash-super` first; an invalid image sends nothing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { FastbootClient } from '../../src/fastboot/client.js';
import { wipeSuper } from '../../src/fastboot/wipe-super.js';
import { bufferReader, emptyImage, MetadataBuilder, readSuperMetadata } from '../../src/lp/index.js';
import { EmulatedFastbootDevice, runFastbootDevice, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-wipe-super-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

let n = 0;
function memoryClient(opts: Partial<FastbootEmulatorOptions> = {}) {
  const device = new EmulatedFastbootDevice({ store: path.join(dir, `store-${++n}`), ...opts });
  const pair = createMemoryTransportPair({ preferredWriteSize: 64 * 1024, maxInFlight: 2 });
  void runFastbootDevice(pair.device, device);
  return { device, client: new FastbootClient(pair.host, { timeoutMs: 5000 }) };
}

function superEmptyFile(name: string, superName = 'super', size = 32 * MiB): { file: string; metadata: ReturnType<MetadataBuilder['export']> } {
  const b = MetadataBuilder.create([{ partitionName: superName, size, alignment: MiB, alignmentOffset: 0, logicalBlockSize: 4096 }], superName, 65536, 2);
  b.addPartition('system_a');
  b.addPartition('system_b');
  const metadata = b.export();
  const file = path.join(dir, name);
  writeFileSync(file, emptyImage(metadata));
  return { file, metadata };
}

describe('wipe-super', () => {
  it('flashes super with a fresh table that reads back as the super_empty metadata, in both slots', async () => {
    const { file, metadata } = superEmptyFile('se.img');
    const { client, device } = memoryClient({ partitions: { super: 32 * MiB } });
    expect(await wipeSuper(client, file)).toEqual(['super']);
    expect(device.log.filter((l) => !l.startsWith('getvar:')).map((l) => l.split(' ')[0])).toEqual(['download', 'flash:super']);
    const disk = readFileSync(device.partitionPath('super'));
    for (const slot of [0, 1]) {
      expect(readSuperMetadata(bufferReader(disk), slot)).toEqual(metadata);
    }
    // The download is a small sparse image of the whole device: only the table is sent.
    const sent = Number(device.log.find((l) => l.startsWith('download'))!.split(' ')[1]);
    expect(sent).toBeLessThan(1 * MiB);
  });

  it('a super_empty for another super partition name (retrofit): oem allow-flash-super first', async () => {
    const { file } = superEmptyFile('retro.img', 'system', 16 * MiB);
    const { client, device } = memoryClient({ partitions: { system: 16 * MiB } });
    await wipeSuper(client, file);
    const w = device.log.filter((l) => !l.startsWith('getvar:'));
    expect(w[0]).toBe('oem allow-flash-super');
    expect(w.at(-1)).toBe('flash:system');
  });

  it('an image that is not super_empty is refused before anything is sent', async () => {
    const bad = path.join(dir, 'bad.img');
    writeFileSync(bad, Buffer.alloc(8192, 1));
    const { client, device } = memoryClient();
    await expect(wipeSuper(client, bad)).rejects.toBeInstanceOf(BadInputError);
    expect(device.log).toEqual([]);
  });
});
