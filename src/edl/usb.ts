// Opening the EDL link: USB (05c6:9008, vendor interface ff/ff/{ff,10,11,13},
// one bulk IN + one bulk OUT, 1 MiB writes, a ZLP after packet-aligned writes)
// or the emulator over TCP ("tcp:HOST:PORT", length framing, no handshake).
import { BadInputError, TransportTimeoutError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import type { UsbDeviceInfo, UsbModuleLike } from '../transport/usb.js';

export interface OpenEdlOptions {
  timeoutMs?: number;
  /** A `usb` module stand-in (tests). */
  usb?: UsbModuleLike;
}

/** `spec`: undefined (the only EDL device on USB), SERIAL, usb:PORTPATH or tcp:HOST:PORT. */
export async function openEdlTransport(spec: string | undefined, opts: OpenEdlOptions = {}): Promise<Transport> {
  if (spec?.toLowerCase().startsWith('tcp:')) {
    const { openTcpTransport } = await import('../transport/tcp.js');
    return openTcpTransport(spec, { handshake: false, timeoutMs: opts.timeoutMs });
  }
  if (spec?.toLowerCase().startsWith('udp:')) {
    throw new BadInputError(`${spec}: EDL does not run over UDP`, { hint: 'use a USB device or tcp:HOST:PORT (the emulator)' });
  }
  const usb = await import('../transport/usb.js');
  return usb.openUsbTransport(usb.EDL_USB_MATCH, spec === undefined ? {} : { serial: spec }, {
    writeSize: usb.EDL_USB_WRITE_SIZE,
    zlp: 'edl',
    timeoutMs: opts.timeoutMs,
    ...(opts.usb ? { usb: opts.usb, sysfsRoot: false as const } : {}),
  });
}

/** Poll (every 250 ms, as qdl) until an EDL device shows up. */
export async function waitForEdlDevice(opts: { timeoutMs?: number; pollMs?: number; serial?: string; list?: () => Promise<UsbDeviceInfo[]> } = {}): Promise<UsbDeviceInfo> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const list =
    opts.list ??
    (async () => {
      const usb = await import('../transport/usb.js');
      return usb.listUsbDevices(usb.EDL_USB_MATCH);
    });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await list()).find((d) => opts.serial === undefined || d.serial === opts.serial);
    if (found) return found;
    if (Date.now() >= deadline) {
      throw new TransportTimeoutError('waiting for the EDL device (05c6:9008)', timeoutMs, {
        hint: 'the phone did not come back in EDL mode; check the cable, or use an EDL cable / test point',
      });
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}
