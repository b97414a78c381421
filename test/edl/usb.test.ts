// The EDL USB link: interface matching (05c6:9008, ff/ff/{ff,10,11,13}), 1 MiB
// writes and ZLPs after packet-aligned writes, through the real UsbTransport
// over the fake `usb` module with the emulated device behind it.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EDL_USB_MATCH } from '../../src/transport/usb.js';
import { openEdlTransport, waitForEdlDevice } from '../../src/edl/usb.js';
import { buildEdlPlan } from '../../src/edl/rom-plan.js';
import { loadSaharaImages } from '../../src/edl/programmer.js';
import { flashEdl } from '../../src/edl/flash.js';
import { MemoryDisk } from '../../src/emulator/edl/disk.js';
import { serveOnTransport } from '../../src/emulator/edl/serve.js';
import { TransportError, TransportTimeoutError } from '../../src/errors.js';
import { FakeUsb, edlPhone, edlInterface, fakeUsbDeviceTransport } from '../helpers/fake-usb.js';
import { FAST, bytes, makeElf, tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('EDL over USB', () => {
  it('matches the EDL interface signature of edl.md §2', () => {
    expect(EDL_USB_MATCH).toMatchObject({ vendorId: 0x05c6, productId: 0x9008, interfaceClass: 0xff, interfaceSubclass: 0xff });
    expect([...EDL_USB_MATCH.interfaceProtocols].sort()).toEqual([0x10, 0x11, 0x13, 0xff]);
  });

  it('flashes through the real USB transport: <= 1 MiB bulk writes, a ZLP after every packet-aligned write', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const images = path.join(t.dir, 'images');
    mkdirSync(images);
    const big = bytes(3 * 1024 * 1024 + 1000, 5);
    writeFileSync(path.join(images, 'boot.img'), big);
    writeFileSync(path.join(images, 'prog_emmc_firehose_8953_ddr.mbn'), makeElf({ bits: 32 }));
    writeFileSync(
      path.join(images, 'rawprogram0.xml'),
      `<data><program SECTOR_SIZE_IN_BYTES="512" file_sector_offset="0" filename="boot.img" label="boot" num_partition_sectors="8192" physical_partition_number="0" start_sector="64"/></data>`,
    );
    const plan = await buildEdlPlan([t.dir], { requireFiles: true });
    expect(plan.memory).toBe('emmc');
    const usb = new FakeUsb([edlPhone({ interfaces: [edlInterface(0x10, 512)] })]);
    const disk = new MemoryDisk(512, 16384);
    const served = serveOnTransport(fakeUsbDeviceTransport(usb.devices[0]!), [disk], { memory: 'emmc' });
    const host = await openEdlTransport(undefined, { usb, timeoutMs: 2000 });
    await flashEdl(host, plan, await loadSaharaImages(plan.programmer!), { timeouts: FAST });
    await host.close();
    void served;
    expect(disk.read(64 * 512, big.length).equals(big)).toBe(true);
    const outs = usb.devices[0]!.outRecords;
    expect(Math.max(...outs.map((r) => r.size))).toBeLessThanOrEqual(1024 * 1024);
    const dataWrites = outs.filter((r) => r.size === 1024 * 1024);
    expect(dataWrites.length).toBe(3);
    outs.forEach((r, i) => {
      if (r.size > 0 && r.size % 512 === 0) expect(outs[i + 1]?.size, `ZLP after OUT #${i} (${r.size} bytes)`).toBe(0);
      if (r.size === 0) expect(outs[i - 1]!.size % 512).toBe(0);
    });
  });

  it('does not take a Qualcomm interface with another protocol (0x12) for EDL', async () => {
    const usb = new FakeUsb([edlPhone({ interfaces: [edlInterface(0x12)] })]);
    await expect(openEdlTransport(undefined, { usb })).rejects.toBeInstanceOf(TransportError);
  });

  it('waitForEdlDevice polls until the 9008 device appears, or times out', async () => {
    let calls = 0;
    const dev = { serial: '0AA94EFD', portPath: '1-4', vendorId: 0x05c6, productId: 0x9008 };
    const found = await waitForEdlDevice({ pollMs: 10, timeoutMs: 1000, list: async () => (++calls < 3 ? [] : [dev]) });
    expect(found).toBe(dev);
    expect(calls).toBe(3);
    await expect(waitForEdlDevice({ pollMs: 10, timeoutMs: 50, list: async () => [] })).rejects.toBeInstanceOf(TransportTimeoutError);
    await expect(waitForEdlDevice({ pollMs: 10, timeoutMs: 50, serial: 'OTHER', list: async () => [dev] })).rejects.toThrow(/waiting for the EDL device/);
  });
});
