// The slice of the `usb` package (v2, legacy libusb API) that the USB transport
// uses. Tests inject a fake with the same shape (test/helpers/fake-usb.ts), so
// nothing here may rely on more than these members.

import { TransportError } from '../errors.js';

/** A libusb error: `errno` is a negative LIBUSB_ERROR_* for synchronous calls
 *  (open, claim, submit) and a positive LIBUSB_TRANSFER_* status in transfer callbacks. */
export interface UsbErrorLike extends Error {
  errno?: number;
}

export interface UsbEndpointDescriptorLike {
  bEndpointAddress: number;
  bmAttributes: number;
  wMaxPacketSize: number;
}

export interface UsbInterfaceDescriptorLike {
  bInterfaceNumber: number;
  bAlternateSetting: number;
  bInterfaceClass: number;
  bInterfaceSubClass: number;
  bInterfaceProtocol: number;
  endpoints: UsbEndpointDescriptorLike[];
}

export interface UsbConfigDescriptorLike {
  /** interfaces[i][alt] */
  interfaces: UsbInterfaceDescriptorLike[][];
}

export interface UsbDeviceDescriptorLike {
  idVendor: number;
  idProduct: number;
  iSerialNumber: number;
  iProduct: number;
}

export interface UsbTransferLike {
  submit(buffer: Buffer, callback?: (error: UsbErrorLike | undefined, buffer: Buffer, actualLength: number) => void): unknown;
  /** false when the transfer was not pending. May throw (e.g. device gone). */
  cancel(): boolean;
}

export interface UsbEndpointLike {
  direction: 'in' | 'out';
  transferType: number;
  /** The package's own default is 0 = wait forever; we never rely on it. */
  timeout: number;
  address: number;
  descriptor: UsbEndpointDescriptorLike;
  makeTransfer(timeout: number, callback: (error: UsbErrorLike | undefined, buffer: Buffer, actualLength: number) => void): UsbTransferLike;
}

export interface UsbInterfaceLike {
  interfaceNumber: number;
  altSetting: number;
  descriptor: UsbInterfaceDescriptorLike;
  endpoints: UsbEndpointLike[];
  claim(): void;
  release(callback?: (error?: UsbErrorLike) => void): void;
  isKernelDriverActive(): boolean;
  detachKernelDriver(): void;
  setAltSetting(altSetting: number, callback?: (error: UsbErrorLike | undefined) => void): void;
}

export interface UsbDeviceLike {
  busNumber: number;
  deviceAddress: number;
  /** undefined when the platform cannot tell. */
  portNumbers: number[] | undefined;
  deviceDescriptor: UsbDeviceDescriptorLike;
  /** Active configuration; readable without opening the device. */
  readonly configDescriptor: UsbConfigDescriptorLike | undefined;
  interfaces: UsbInterfaceLike[] | undefined;
  /** Control-transfer timeout (string descriptors). */
  timeout: number;
  open(defaultConfig?: boolean): void;
  close(): void;
  interface(addr: number): UsbInterfaceLike;
  getStringDescriptor(descIndex: number, callback: (error?: UsbErrorLike, value?: string) => void): void;
}

export interface UsbModuleLike {
  getDeviceList(): UsbDeviceLike[];
  /** libusb_init() result (negative = failed); absent in fakes. */
  INIT_ERROR?: number;
}

/** libusb ABI constants (stable across versions; libusb.h). */
export const LIBUSB = {
  ERROR_IO: -1,
  ERROR_INVALID_PARAM: -2,
  ERROR_ACCESS: -3,
  ERROR_NO_DEVICE: -4,
  ERROR_NOT_FOUND: -5,
  ERROR_BUSY: -6,
  ERROR_TIMEOUT: -7,
  ERROR_OVERFLOW: -8,
  ERROR_PIPE: -9,
  ERROR_INTERRUPTED: -10,
  ERROR_NO_MEM: -11,
  ERROR_NOT_SUPPORTED: -12,
  ERROR_OTHER: -99,
  TRANSFER_ERROR: 1,
  TRANSFER_TIMED_OUT: 2,
  TRANSFER_CANCELLED: 3,
  TRANSFER_STALL: 4,
  TRANSFER_NO_DEVICE: 5,
  TRANSFER_OVERFLOW: 6,
  TRANSFER_TYPE_BULK: 2,
  ENDPOINT_IN: 0x80,
} as const;

let cached: Promise<UsbModuleLike> | undefined;

/**
 * Load the real `usb` package on first use. Loaded lazily so that commands
 * which never touch USB (`--version`, `rom inspect`) do not start libusb.
 */
export function loadUsbModule(): Promise<UsbModuleLike> {
  cached ??= (async () => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import('usb')) as unknown as Record<string, unknown>;
    } catch (e) {
      throw usbUnavailable(`the "usb" package (libusb bindings) could not be loaded: ${(e as Error).message}`, e);
    }
    const legacy = (mod.usb ?? (mod.default as Record<string, unknown> | undefined)?.usb ?? mod.default) as UsbModuleLike | undefined;
    if (!legacy || typeof legacy.getDeviceList !== 'function') {
      throw usbUnavailable('the "usb" package does not expose getDeviceList() (unexpected version)');
    }
    if (typeof legacy.INIT_ERROR === 'number' && legacy.INIT_ERROR < 0) {
      throw usbUnavailable(`libusb_init() failed (error ${legacy.INIT_ERROR})`);
    }
    return legacy;
  })();
  // A failed load may be fixed (e.g. /dev/bus/usb mounted later in a container): don't cache failures.
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}

export function usbUnavailable(detail: string, cause?: unknown): TransportError {
  return new TransportError(`no USB subsystem: ${detail}`, {
    code: 'usb.unavailable',
    cause,
    hint:
      process.platform === 'linux'
        ? 'Check that /dev/bus/usb exists (in a container: pass --device=/dev/bus/usb or --privileged) and that the usb package has a prebuilt binary for this platform; TCP/UDP fastboot (tcp:HOST, udp:HOST) works without USB.'
        : 'Reinstall miflash so that the usb package gets a prebuilt libusb binary for this platform; TCP/UDP fastboot (tcp:HOST, udp:HOST) works without USB.',
  });
}

// Compile-time proof that the real package fits the slice (type-only: loads nothing).
type Fits<T extends UsbModuleLike> = T;
export type RealUsbModuleFits = Fits<typeof import('usb').usb>;
