import { describe, expect, it } from 'vitest';
import { BadInputError, ShortWriteError, TransportClosedError, TransportError, TransportTimeoutError } from '../../src/errors.js';
import {
  EDL_USB_MATCH,
  FASTBOOT_USB_MATCH,
  listUsbDevices,
  openUsbTransport,
  UsbBusyError,
  UsbDisconnectedError,
  UsbPermissionError,
  type UsbDeviceInfo,
} from '../../src/transport/usb.js';
import { LIBUSB } from '../../src/transport/usb-module.js';
import {
  adbInterface,
  edlInterface,
  edlPhone,
  fastbootInterface,
  fastbootPhone,
  FakeUsb,
  type FakeDeviceSpec,
} from '../helpers/fake-usb.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

async function open(spec: Partial<FakeDeviceSpec> = {}, opts: Parameters<typeof openUsbTransport>[2] = {}) {
  const usb = new FakeUsb([fastbootPhone(spec)]);
  const t = await openUsbTransport(FASTBOOT_USB_MATCH, {}, { usb, ...opts });
  return { usb, dev: usb.devices[0]!, t };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('USB interface matching', () => {
  it('lists only devices with a ff/42/03 interface that has bulk IN and OUT', async () => {
    const usb = new FakeUsb([
      fastbootPhone({ ports: [4, 2], serial: 'PHONE1' }),
      fastbootPhone({ ports: [3], serial: 'ADBONLY', interfaces: [adbInterface()] }),
      // right class triple but interrupt endpoints: not a fastboot pipe
      fastbootPhone({
        ports: [5],
        serial: 'INTR',
        interfaces: [{ ...fastbootInterface(), endpoints: [{ address: 0x81, type: 'interrupt' }, { address: 0x01, type: 'interrupt' }] }],
      }),
      // only an IN endpoint
      fastbootPhone({ ports: [6], serial: 'HALF', interfaces: [{ ...fastbootInterface(), endpoints: [{ address: 0x81 }] }] }),
      { vendorId: 0x0781, productId: 0x5581, serial: 'STICK', ports: [7], interfaces: [{ number: 0, class: 8, subclass: 6, protocol: 0x50, endpoints: [{ address: 0x81 }, { address: 0x02 }] }] },
      // composite: adb on 0, fastboot on 1
      fastbootPhone({ bus: 2, ports: [1], serial: 'COMPOSITE', interfaces: [adbInterface(0), fastbootInterface(1)] }),
    ]);
    const list = await listUsbDevices(FASTBOOT_USB_MATCH, { usb });
    expect(list.map((d: UsbDeviceInfo) => [d.portPath, d.serial])).toEqual([
      ['1-4.2', 'PHONE1'],
      ['2-1', 'COMPOSITE'],
    ]);
    expect(list[0]).toMatchObject({ vendorId: 0x18d1, productId: 0x4ee0, product: 'Android' });
  });

  it('claims the fastboot interface of a composite device, not interface 0', async () => {
    const usb = new FakeUsb([fastbootPhone({ interfaces: [adbInterface(0), { ...fastbootInterface(1), endpoints: [{ address: 0x83 }, { address: 0x03 }] }] })]);
    const t = await openUsbTransport(FASTBOOT_USB_MATCH, {}, { usb });
    const dev = usb.devices[0]!;
    expect(dev.interface(1).claimed).toBe(true);
    expect(dev.interface(0).claimed).toBe(false);
    await t.write(Buffer.from('getvar:product'));
    expect(dev.outRecords.map((r) => r.data.toString())).toEqual(['getvar:product']);
    await t.close();
  });

  it('EDL: 05c6:9008 with protocol ff/10/11/13 matches, others do not; serial comes from iProduct _SN:', async () => {
    const usb = new FakeUsb([
      edlPhone({ ports: [1], product: 'QUSB__BULK_SN:AAAA0001' }),
      edlPhone({ ports: [2], interfaces: [edlInterface(0x10)], product: 'QUSB__BULK_SN:BBBB0002_extra' }),
      edlPhone({ ports: [3], interfaces: [edlInterface(0x11)], product: 'QUSB__BULK' }),
      edlPhone({ ports: [4], interfaces: [edlInterface(0x13)], product: 'QUSB__BULK_SN:DDDD0004 more' }),
      edlPhone({ ports: [5], interfaces: [edlInterface(0x12)] }), // unknown protocol
      edlPhone({ ports: [6], vendorId: 0x18d1 }), // wrong vendor
      edlPhone({ ports: [7], productId: 0x900e }), // crash-dump mode
      edlPhone({ ports: [8], interfaces: [fastbootInterface()] }), // 9008 without EDL interface
    ]);
    const list = await listUsbDevices(EDL_USB_MATCH, { usb });
    expect(list.map((d) => [d.portPath, d.serial])).toEqual([
      ['1-1', 'AAAA0001'],
      ['1-2', 'BBBB0002'],
      ['1-3', null],
      ['1-4', 'DDDD0004'],
    ]);
  });

  it('selects by serial and by port path (with or without the usb: prefix)', async () => {
    const mk = () =>
      new FakeUsb([fastbootPhone({ ports: [4, 2], serial: 'AAA' }), fastbootPhone({ ports: [3], serial: 'BBB' }), fastbootPhone({ bus: 3, ports: [1, 1], serial: 'CCC' })]);
    let usb = mk();
    let t = await openUsbTransport(FASTBOOT_USB_MATCH, { serial: 'BBB' }, { usb });
    expect(t.id).toBe('usb:1-3');
    expect(t.description).toContain('serial BBB');
    expect(usb.devices.map((d) => d.interfaces?.[0]?.claimed ?? false)).toEqual([false, true, false]);
    await t.close();

    usb = mk();
    t = await openUsbTransport(FASTBOOT_USB_MATCH, { portPath: 'usb:1-4.2' }, { usb });
    expect(t.id).toBe('usb:1-4.2');
    expect(t.description).toContain('serial AAA');
    await t.close();

    usb = mk();
    t = await openUsbTransport(FASTBOOT_USB_MATCH, { portPath: '3-1.1' }, { usb });
    expect(t.id).toBe('usb:3-1.1');
    await t.close();

    // a "serial" that is really a port path (from -s usb:1-3)
    usb = mk();
    t = await openUsbTransport(FASTBOOT_USB_MATCH, { serial: 'usb:1-3' }, { usb });
    expect(t.description).toContain('serial BBB');
    await t.close();
  });

  it('refuses to guess between several devices and names missing ones precisely', async () => {
    const usb = new FakeUsb([fastbootPhone({ ports: [1], serial: 'AAA' }), fastbootPhone({ ports: [2], serial: 'BBB' })]);
    const amb = await rejection(openUsbTransport(FASTBOOT_USB_MATCH, {}, { usb }));
    expect(amb).toBeInstanceOf(BadInputError);
    expect((amb as BadInputError).code).toBe('usb.ambiguous');
    expect((amb as Error).message).toContain('usb:1-1, usb:1-2');

    const noSerial = await rejection(openUsbTransport(FASTBOOT_USB_MATCH, { serial: 'ZZZ' }, { usb }));
    expect(noSerial).toBeInstanceOf(TransportError);
    expect((noSerial as TransportError).code).toBe('usb.no-device');
    expect((noSerial as Error).message).toContain('serial ZZZ');

    const noPort = await rejection(openUsbTransport(FASTBOOT_USB_MATCH, { portPath: '1-9' }, { usb }));
    expect((noPort as Error).message).toContain('usb:1-9');
    // nothing was left open
    expect(usb.devices.every((d) => !d.isOpen)).toBe(true);
  });

  it('EDL: a 05c6:900e device gets a crash-dump message instead of "not found"', async () => {
    const usb = new FakeUsb([edlPhone({ productId: 0x900e })]);
    const e = await rejection(openUsbTransport(EDL_USB_MATCH, {}, { usb }));
    expect((e as TransportError).code).toBe('usb.edl-crashdump');
    expect((e as Error).message).toContain('crash-dump');
  });
});

describe('USB writes', () => {
  it('splits a big write into exact 256 KiB transfers and keeps >= 2 in flight', async () => {
    const { dev, t } = await open({ latencyMs: 2 });
    expect(t.preferredWriteSize).toBe(256 * KiB);
    expect(t.maxInFlight).toBeGreaterThanOrEqual(2);
    const data = pattern(MiB + 100);
    await t.write(data);
    expect(dev.outRecords.map((r) => r.size)).toEqual([256 * KiB, 256 * KiB, 256 * KiB, 256 * KiB, 100]);
    expect(dev.written.equals(data)).toBe(true);
    expect(dev.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(dev.maxInFlight).toBeLessThanOrEqual(t.maxInFlight);
    await t.close();
  });

  it('honours the in-flight limit exactly', async () => {
    for (const inFlight of [1, 3]) {
      const { dev, t } = await open({ latencyMs: 1 }, { inFlight, writeSize: 64 * KiB });
      await t.write(pattern(640 * KiB));
      expect(dev.outRecords).toHaveLength(10);
      expect(dev.maxInFlight).toBe(inFlight);
      await t.close();
    }
  });

  it('pipelines across concurrent write() calls and resolves them in call order', async () => {
    const { dev, t } = await open({ latencyMs: 1 }, { writeSize: 128 * KiB, inFlight: 4 });
    const pieces = [pattern(300 * KiB, 1), pattern(128 * KiB, 2), pattern(5, 3), pattern(200 * KiB, 4)];
    const order: number[] = [];
    await Promise.all(pieces.map((p, i) => t.write(p).then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3]);
    expect(dev.written.equals(Buffer.concat(pieces))).toBe(true);
    expect(dev.outRecords.map((r) => r.size)).toEqual([128 * KiB, 128 * KiB, 44 * KiB, 128 * KiB, 5, 128 * KiB, 72 * KiB]);
    expect(dev.maxInFlight).toBe(4);
    await t.close();
  });

  it('fastboot never sends a zero-length packet', async () => {
    const { dev, t } = await open();
    await t.write(new Uint8Array(0));
    await t.write(pattern(1024));
    expect(dev.outRecords.map((r) => r.size)).toEqual([1024]);
    await t.close();
  });

  it('rounds the write size to whole packets', async () => {
    const { dev, t } = await open({}, { writeSize: 1000 });
    expect(t.preferredWriteSize).toBe(512);
    await t.write(pattern(1500));
    expect(dev.outRecords.map((r) => r.size)).toEqual([512, 512, 476]);
    await t.close();
  });

  it('halves the transfer size when the kernel refuses big buffers (ENOMEM), as AOSP does', async () => {
    const { dev, t } = await open({ submitError: (n) => (n > 64 * KiB ? LIBUSB.ERROR_NO_MEM : undefined) });
    const data = pattern(300 * KiB);
    await t.write(data);
    expect(dev.written.equals(data)).toBe(true);
    expect(Math.max(...dev.outRecords.map((r) => r.size))).toBe(64 * KiB);
    expect(t.preferredWriteSize).toBe(64 * KiB);
  });

  it('EDL: 1 MiB transfers and a ZLP after packet-aligned writes only', async () => {
    const usb = new FakeUsb([edlPhone()]);
    const t = await openUsbTransport(EDL_USB_MATCH, {}, { usb });
    const dev = usb.devices[0]!;
    expect(t.preferredWriteSize).toBe(MiB);
    await t.write(pattern(3 * MiB));
    expect(dev.outRecords.map((r) => r.size)).toEqual([MiB, MiB, MiB, 0]);
    dev.outRecords.length = 0;
    await t.write(Buffer.from('<?xml version="1.0" ?><data><nop /></data>'));
    expect(dev.outRecords.map((r) => r.size)).toEqual([42]);
    dev.outRecords.length = 0;
    await t.write(pattern(1024));
    expect(dev.outRecords.map((r) => r.size)).toEqual([1024, 0]);
    dev.outRecords.length = 0;
    await t.write(new Uint8Array(0)); // explicit ZLP (what edl.py sends after a data chunk)
    expect(dev.outRecords.map((r) => r.size)).toEqual([0]);
    await t.close();
  });
});

describe('USB reads', () => {
  it('reads one reply per read, asking for whole packets', async () => {
    const { dev, t } = await open({ interfaces: [fastbootInterface(0, 512)] });
    dev.pushIn('INFOhello');
    dev.pushIn('OKAY');
    expect((await t.read(256)).toString()).toBe('INFOhello');
    expect((await t.read(256)).toString()).toBe('OKAY');
    expect(dev.inRequests).toEqual([512, 512]);
    await t.close();
  });

  it('never loses bytes when the device sends more than asked', async () => {
    const { dev, t } = await open();
    const big = pattern(700);
    dev.pushIn(big);
    const a = await t.read(256);
    const b = await t.read(256);
    const c = await t.read(1024);
    expect(a.length).toBe(256);
    expect(Buffer.concat([a, b, c]).equals(big)).toBe(true);
  });

  it('fastboot skips stray zero-length packets', async () => {
    const { dev, t } = await open();
    dev.pushIn('');
    dev.pushIn('OKAY');
    expect((await t.read(256)).toString()).toBe('OKAY');
  });

  it('EDL consumes the ZLP after a full packet-aligned read, not after a short one', async () => {
    const usb = new FakeUsb([edlPhone()]);
    const t = await openUsbTransport(EDL_USB_MATCH, {}, { usb });
    const dev = usb.devices[0]!;
    dev.pushIn(pattern(512));
    dev.pushIn(''); // ZLP from a ZlpAwareHost programmer
    dev.pushIn('<?xml version="1.0"?><data><response value="ACK"/></data>');
    expect((await t.read(512)).length).toBe(512);
    expect((await t.read(4096)).toString()).toContain('ACK');
    expect(dev.inRequests).toEqual([512, 0, 4096]);
    await t.close();
  });
});

describe('USB timeouts and failures', () => {
  it('a write the stack never completes times out within the timeout, cancels, and poisons later writes', async () => {
    const { dev, t } = await open({ honorTimeouts: false, outBehaviour: () => 'hang' });
    const start = Date.now();
    const e = await rejection(t.write(pattern(600 * KiB), { timeoutMs: 100 }));
    const took = Date.now() - start;
    expect(e).toBeInstanceOf(TransportTimeoutError);
    expect((e as Error).message).toContain('100 ms');
    expect(took).toBeGreaterThanOrEqual(90);
    expect(took).toBeLessThan(1000);
    expect(dev.cancels).toBeGreaterThanOrEqual(1);
    const again = await rejection(t.write(Buffer.from('getvar:x')));
    expect(again).toBeInstanceOf(TransportTimeoutError);
    await t.close();
  });

  it('uses a finite default timeout (not libusb\'s infinite 0) on every transfer', async () => {
    const { dev, t } = await open({ outBehaviour: () => 'hang' }, { timeoutMs: 60 });
    const ep = dev.interface(0).endpoints;
    expect(ep.every((x) => x.timeout === 60)).toBe(true);
    const e = await rejection(t.write(Buffer.from('reboot')));
    expect(e).toBeInstanceOf(TransportTimeoutError);
  });

  it('a libusb-reported timeout (TRANSFER_TIMED_OUT) maps to TransportTimeoutError', async () => {
    const { t } = await open({ outBehaviour: () => ({ errno: LIBUSB.TRANSFER_TIMED_OUT, actual: 100 }) });
    const e = await rejection(t.write(pattern(4096), { timeoutMs: 5000 }));
    expect(e).toBeInstanceOf(TransportTimeoutError);
    expect((e as Error).message).toContain('100 of 4096 bytes');
  });

  it('a read timeout is typed, cancels the transfer, and the link stays usable', async () => {
    const { dev, t } = await open({ honorTimeouts: false });
    const e = await rejection(t.read(256, { timeoutMs: 80 }));
    expect(e).toBeInstanceOf(TransportTimeoutError);
    expect(dev.cancels).toBe(1);
    dev.pushIn('OKAY');
    expect((await t.read(256)).toString()).toBe('OKAY');
    await t.write(Buffer.from('getvar:product'));
    expect(dev.written.toString()).toBe('getvar:product');
  });

  it('disconnect in the middle of a pipelined write rejects with a typed "device disconnected"', async () => {
    const { dev, t } = await open({ latencyMs: 2 });
    dev.onOut(() => {
      if (dev.outRecords.length >= 2 && !dev.disconnected) dev.disconnect();
    });
    const e = await rejection(t.write(pattern(2 * MiB)));
    expect(e).toBeInstanceOf(UsbDisconnectedError);
    expect(e).toBeInstanceOf(TransportClosedError);
    expect((e as TransportError).code).toBe('transport.closed');
    expect((e as Error).message).toContain('device disconnected');
    expect(dev.written.length).toBeLessThan(2 * MiB);
    expect(await rejection(t.read(256))).toBeInstanceOf(UsbDisconnectedError);
    await t.close(); // must not throw on a vanished device
  });

  it('disconnect while waiting for a reply rejects the read', async () => {
    const { dev, t } = await open();
    const p = t.read(256);
    setTimeout(() => dev.disconnect(), 10);
    expect(await rejection(p)).toBeInstanceOf(UsbDisconnectedError);
  });

  it('short write -> ShortWriteError', async () => {
    const { t } = await open({ outBehaviour: ({ index }) => (index === 1 ? { actual: 1000 } : 'ok') });
    const e = await rejection(t.write(pattern(512 * KiB)));
    expect(e).toBeInstanceOf(ShortWriteError);
    expect((e as Error).message).toContain(`1000 of ${256 * KiB}`);
  });

  it('a stalled endpoint is reported as such', async () => {
    const { t } = await open({ outBehaviour: () => ({ errno: LIBUSB.TRANSFER_STALL }) });
    const e = await rejection(t.write(Buffer.from('flash:boot')));
    expect((e as TransportError).code).toBe('usb.stall');
  });

  it('permission denied names the udev rule that fixes it', async () => {
    const usb = new FakeUsb([fastbootPhone({ openError: LIBUSB.ERROR_ACCESS })]);
    const e = await rejection(openUsbTransport(FASTBOOT_USB_MATCH, {}, { usb }));
    expect(e).toBeInstanceOf(UsbPermissionError);
    const err = e as UsbPermissionError;
    expect(err.code).toBe('usb.permission');
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain('permission denied');
    if (process.platform === 'linux') {
      expect(err.hint).toContain('ATTR{idVendor}=="18d1"');
      expect(err.hint).toContain('/etc/udev/rules.d/51-android.rules');
      expect(err.hint).toContain('udevadm control --reload-rules');
    }
    // listing still shows the device, with the problem instead of a serial
    const list = await listUsbDevices(FASTBOOT_USB_MATCH, { usb });
    expect(list).toEqual([expect.objectContaining({ portPath: '1-4', serial: null, problem: 'permission denied' })]);
  });

  it('permission denied on an EDL device points at the EDL rule and vendor 05c6', async () => {
    const usb = new FakeUsb([edlPhone({ openError: LIBUSB.ERROR_ACCESS })]);
    const e = (await rejection(openUsbTransport(EDL_USB_MATCH, {}, { usb }))) as UsbPermissionError;
    expect(e).toBeInstanceOf(UsbPermissionError);
    if (process.platform === 'linux') expect(e.hint).toMatch(/51-edl\.rules.*05c6|05c6.*51-edl\.rules/s);
  });

  it('interface busy names the likely holders and releases the device', async () => {
    const usb = new FakeUsb([fastbootPhone({ claimError: LIBUSB.ERROR_BUSY })]);
    const e = await rejection(openUsbTransport(FASTBOOT_USB_MATCH, {}, { usb }));
    expect(e).toBeInstanceOf(UsbBusyError);
    const err = e as UsbBusyError;
    expect(err.code).toBe('usb.busy');
    expect(err.message).toContain('busy');
    for (const holder of ['fastboot', 'adb kill-server', 'ModemManager', 'fwupd']) expect(err.hint).toContain(holder);
    expect(usb.devices[0]!.isOpen).toBe(false);
  });

  it('detaches an active kernel driver before claiming; EDL busy mentions qcserial', async () => {
    const usb = new FakeUsb([edlPhone({ kernelDriverActive: true })]);
    const t = await openUsbTransport(EDL_USB_MATCH, {}, { usb });
    const iface = usb.devices[0]!.interface(0);
    expect(iface.detached).toBe(true);
    expect(iface.claimed).toBe(true);
    await t.close();

    const busy = new FakeUsb([edlPhone({ kernelDriverActive: true, detachError: LIBUSB.ERROR_NOT_FOUND, claimError: LIBUSB.ERROR_BUSY })]);
    const e = (await rejection(openUsbTransport(EDL_USB_MATCH, {}, { usb: busy }))) as UsbBusyError;
    expect(e).toBeInstanceOf(UsbBusyError);
    expect(e.hint).toContain('qcserial');

    const denied = new FakeUsb([edlPhone({ kernelDriverActive: true, detachError: LIBUSB.ERROR_ACCESS })]);
    expect(await rejection(openUsbTransport(EDL_USB_MATCH, {}, { usb: denied }))).toBeInstanceOf(UsbPermissionError);
  });

  it('a failing device list is reported as "no USB subsystem"', async () => {
    const usb = new FakeUsb([]);
    usb.listError = LIBUSB.ERROR_OTHER;
    const e = (await rejection(listUsbDevices(FASTBOOT_USB_MATCH, { usb }))) as TransportError;
    expect(e.code).toBe('usb.unavailable');
    expect(e.message).toContain('no USB subsystem');
  });

  it('close() cancels outstanding transfers, releases the interface and closes the device', async () => {
    const { dev, t } = await open({ outBehaviour: () => 'hang' });
    const pending = rejection(t.write(pattern(100)));
    const reading = rejection(t.read(256));
    await new Promise((r) => setTimeout(r, 5)); // both transfers are now submitted
    expect(dev.interface(0).endpoints.map((e) => e.pendingCount)).toEqual([1, 1]);
    await t.close();
    expect(await pending).toBeInstanceOf(TransportError);
    expect(await reading).toBeInstanceOf(TransportError);
    expect(dev.cancels).toBe(2);
    expect(dev.released).toBe(1);
    expect(dev.isOpen).toBe(false);
    expect(await rejection(t.write(Buffer.from('x')))).toBeInstanceOf(TransportError);
  });
});

describe('real usb package', () => {
  it('loads lazily and reports a typed error for a port that does not exist', async () => {
    const e = (await rejection(openUsbTransport(FASTBOOT_USB_MATCH, { portPath: 'usb:99-9.9.9' }))) as TransportError;
    expect(e).toBeInstanceOf(TransportError);
    // no-device where libusb works (this machine has no bus at all), unavailable where it cannot start
    expect(['usb.no-device', 'usb.unavailable']).toContain(e.code);
  });
});
