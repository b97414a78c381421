// Typed, actionable USB errors and the libusb errno -> error mapping.

import { TransportClosedError, TransportError, TransportTimeoutError } from '../errors.js';
import { LIBUSB, type UsbErrorLike } from './usb-module.js';

/** What the user is trying to reach, for messages and udev rules. */
export interface UsbTarget {
  /** e.g. "usb:1-4.2" or "USB device 18d1:4ee0". */
  what: string;
  vendorId?: number;
  /** 'edl' adds the qcserial / ModemManager advice. */
  flavour: 'fastboot' | 'edl';
}

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

export class UsbPermissionError extends TransportError {
  constructor(target: UsbTarget, cause?: unknown) {
    super(`${target.what}: permission denied opening the USB device`, {
      code: 'usb.permission',
      cause,
      hint: permissionHint(target),
    });
  }
}

export class UsbBusyError extends TransportError {
  constructor(target: UsbTarget, cause?: unknown) {
    super(`${target.what}: USB interface busy: another program has claimed it`, {
      code: 'usb.busy',
      cause,
      hint: busyHint(target),
    });
  }
}

/** The device went away (unplugged, rebooted) while we were talking to it. */
export class UsbDisconnectedError extends TransportClosedError {
  constructor(what: string, cause?: unknown) {
    super(what, {
      cause,
      hint: 'Check the cable and port (avoid hubs and front-panel ports); if the device rebooted on purpose, wait for it to reappear.',
    });
    this.message = `${what}: device disconnected (USB)`;
  }
}

export function permissionHint(target: UsbTarget): string {
  if (process.platform === 'win32') {
    return 'On Windows the interface needs the WinUSB driver: install the Google USB driver (fastboot) or bind WinUSB with Zadig (EDL), then replug.';
  }
  const vid = target.vendorId === undefined ? '' : `ATTR{idVendor}=="${hex4(target.vendorId)}", `;
  const file = target.flavour === 'edl' ? '/etc/udev/rules.d/51-edl.rules' : '/etc/udev/rules.d/51-android.rules';
  return (
    `Add a udev rule and reload: echo 'SUBSYSTEM=="usb", ${vid}MODE="0660", TAG+="uaccess"' | sudo tee -a ${file} ` +
    '&& sudo udevadm control --reload-rules && sudo udevadm trigger, then replug the device ' +
    '(or install your distribution\'s android-udev-rules package). Running miflash as root also works but is not recommended.'
  );
}

export function busyHint(target: UsbTarget): string {
  const holders = [
    'another fastboot or miflash process (close it)',
    'an adb server (adb kill-server)',
    'ModemManager (sudo systemctl stop ModemManager)',
    'fwupd (sudo systemctl stop fwupd)',
    'gvfs / MTP volume monitors (pkill the gvfs-mtp-volume-monitor process you see in ps)',
  ];
  if (target.flavour === 'edl') holders.unshift('the qcserial kernel driver (sudo modprobe -r qcserial, or blacklist it)');
  return `Likely holders: ${holders.join('; ')}. Then retry.`;
}

/** Map a libusb error (sync errno or transfer status) to a typed TransportError. */
export function mapUsbError(err: unknown, op: string, target: UsbTarget, timeoutMs?: number): TransportError {
  if (err instanceof TransportError) return err;
  const errno = (err as UsbErrorLike | undefined)?.errno;
  const what = `${target.what} ${op}`;
  switch (errno) {
    case LIBUSB.ERROR_ACCESS:
      return new UsbPermissionError(target, err);
    case LIBUSB.ERROR_BUSY:
      return new UsbBusyError(target, err);
    case LIBUSB.ERROR_NO_DEVICE:
    case LIBUSB.TRANSFER_NO_DEVICE:
      return new UsbDisconnectedError(what, err);
    case LIBUSB.ERROR_TIMEOUT:
    case LIBUSB.TRANSFER_TIMED_OUT:
      return new TransportTimeoutError(what, timeoutMs ?? 0, { cause: err });
    case LIBUSB.ERROR_PIPE:
    case LIBUSB.TRANSFER_STALL:
      return new TransportError(`${what}: endpoint stalled (the device rejected the transfer)`, {
        code: 'usb.stall',
        cause: err,
        hint: 'Replug the device and retry; if it persists, reboot it into the bootloader again.',
      });
    case LIBUSB.ERROR_OVERFLOW:
    case LIBUSB.TRANSFER_OVERFLOW:
      return new TransportError(`${what}: the device sent more data than requested (overflow)`, { code: 'usb.overflow', cause: err });
    case LIBUSB.ERROR_NO_MEM:
      return new TransportError(`${what}: the kernel refused the transfer buffer (out of memory)`, { code: 'usb.no-mem', cause: err });
    default: {
      const detail = err instanceof Error ? err.message : String(err);
      return new TransportError(`${what}: USB I/O error (${detail}${errno === undefined ? '' : `, errno ${errno}`})`, {
        code: 'usb.io',
        cause: err,
        hint: 'Replug the device, prefer a rear USB port without a hub, and retry.',
      });
    }
  }
}
