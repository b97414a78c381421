// The real `usb` package is loaded lazily: importing the transport must not load
// it, and a package that fails to load is reported as "no USB subsystem".
import { describe, expect, it, vi } from 'vitest';
import { TransportError } from '../../src/errors.js';

const state = vi.hoisted(() => ({ loads: 0 }));
vi.mock('usb', () => {
  state.loads++;
  throw new Error('libusb-1.0.so.0: cannot open shared object file');
});

describe('lazy usb loading', () => {
  it('importing the transport does not load the usb package; using it reports usb.unavailable', async () => {
    const mod = await import('../../src/transport/usb.js');
    expect(state.loads).toBe(0);
    const e = await mod.listUsbDevices(mod.FASTBOOT_USB_MATCH).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(state.loads).toBe(1);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('usb.unavailable');
    expect((e as TransportError).exitCode).toBe(5);
    expect((e as Error).message).toMatch(/^no USB subsystem: the "usb" package \(libusb bindings\) could not be loaded/);
    // a failed load is not cached: a later attempt tries again
    await mod.openUsbTransport(mod.FASTBOOT_USB_MATCH, {}).catch(() => undefined);
    expect(state.loads).toBe(2);
  });
});
