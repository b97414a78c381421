import { describe, expect, it } from 'vitest';
import { BadInputError, TransportError } from '../../src/errors.js';
import { formatDeviceSpec, parseDeviceSpec, selectDevices } from '../../src/transport/open.js';
import type { UsbDeviceInfo } from '../../src/transport/usb.js';

const usb = (serial: string | null, portPath: string): UsbDeviceInfo => ({ serial, portPath, vendorId: 0x18d1, productId: 0xd00d });
const lister = (list: UsbDeviceInfo[]) => {
  const calls = { n: 0 };
  return { calls, listUsb: async () => (calls.n++, list) };
};

describe('parseDeviceSpec', () => {
  it('understands tcp/udp addresses with default ports, usb port paths and serials', () => {
    expect(parseDeviceSpec('tcp:192.168.1.5')).toEqual({ kind: 'tcp', host: '192.168.1.5', port: 5554 });
    expect(parseDeviceSpec('tcp:localhost:6000')).toEqual({ kind: 'tcp', host: 'localhost', port: 6000 });
    expect(parseDeviceSpec('udp:[fe80::1]:7')).toEqual({ kind: 'udp', host: 'fe80::1', port: 7 });
    expect(parseDeviceSpec('usb:1-4.2')).toEqual({ kind: 'usb', portPath: '1-4.2' });
    expect(parseDeviceSpec('a1b2c3d4')).toEqual({ kind: 'serial', serial: 'a1b2c3d4' });
    expect(formatDeviceSpec(parseDeviceSpec('tcp:[::1]:5554'))).toBe('tcp:[::1]:5554');
  });

  it('refuses malformed specs with a usable message', () => {
    expect(() => parseDeviceSpec('usb:')).toThrow(BadInputError);
    expect(() => parseDeviceSpec('usb:front-port')).toThrow(/expected BUS-PORT/);
    expect(() => parseDeviceSpec('tcp:host:99999')).toThrow(/port "99999"/);
    expect(() => parseDeviceSpec('  ')).toThrow(/empty device name/);
  });
});

describe('selectDevices', () => {
  it('uses -s without scanning USB', async () => {
    const l = lister([usb('X', '1-1')]);
    expect(await selectDevices({ serials: ['tcp:h', 'ABC'], env: {}, listUsb: l.listUsb })).toEqual([
      { kind: 'tcp', host: 'h', port: 5554 },
      { kind: 'serial', serial: 'ABC' },
    ]);
    expect(l.calls.n).toBe(0);
  });

  it('falls back to $FASTBOOT_DEVICE then $ANDROID_SERIAL; -s wins over both', async () => {
    const l = lister([]);
    expect(await selectDevices({ env: { ANDROID_SERIAL: 'ENV1' }, listUsb: l.listUsb })).toEqual([{ kind: 'serial', serial: 'ENV1' }]);
    expect(await selectDevices({ env: { ANDROID_SERIAL: 'ENV1', FASTBOOT_DEVICE: 'tcp:h:1' }, listUsb: l.listUsb })).toEqual([
      { kind: 'tcp', host: 'h', port: 1 },
    ]);
    expect(await selectDevices({ serials: ['S'], env: { ANDROID_SERIAL: 'ENV1' }, listUsb: l.listUsb })).toEqual([{ kind: 'serial', serial: 'S' }]);
    expect(l.calls.n).toBe(0);
  });

  it('picks the only USB device, refuses several (listing them), reports none', async () => {
    expect(await selectDevices({ env: {}, listUsb: lister([usb('ONE', '1-2')]).listUsb })).toEqual([{ kind: 'usb', portPath: '1-2', serial: 'ONE' }]);
    const err = await selectDevices({ env: {}, listUsb: lister([usb('ONE', '1-2'), usb(null, '3-1.4')]).listUsb }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(/2 fastboot devices are attached/);
    expect((err as Error).message).toContain('ONE\tusb:1-2');
    expect((err as Error).message).toContain('(no serial)\tusb:3-1.4');
    const none = await selectDevices({ env: {}, listUsb: lister([]).listUsb }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(TransportError);
    expect((none as Error).message).toBe('no fastboot device found');
  });

  it('--all takes every USB device plus any -s, without duplicates', async () => {
    const l = lister([usb('ONE', '1-2'), usb('TWO', '1-3')]);
    const got = await selectDevices({ serials: ['ONE', 'tcp:h'], all: true, env: {}, listUsb: l.listUsb });
    expect(got.map(formatDeviceSpec)).toEqual(['ONE', 'tcp:h:5554', 'usb:1-3']);
    await expect(selectDevices({ all: true, env: {}, listUsb: lister([]).listUsb })).rejects.toBeInstanceOf(TransportError);
  });
});
