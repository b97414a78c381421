// USB discovery and opening (fastboot and EDL) on top of the `usb` package.
//
// Discovery reads only descriptors that need no device handle (interface
// signature) plus, on Linux, the serial from sysfs, so listing never disturbs a
// device that another program is flashing (AOSP does the same). Opening claims
// the matched interface and returns a pipelined bulk Transport (usb-transport.ts).

import { readFile } from 'node:fs/promises';
import { BadInputError, TransportError } from '../errors.js';
import { DEFAULT_IO_TIMEOUT_MS } from './transport.js';
import { mapUsbError, UsbPermissionError, type UsbTarget } from './usb-errors.js';
import {
  LIBUSB,
  loadUsbModule,
  usbUnavailable,
  type UsbDeviceLike,
  type UsbEndpointDescriptorLike,
  type UsbEndpointLike,
  type UsbInterfaceDescriptorLike,
  type UsbModuleLike,
} from './usb-module.js';
import { UsbTransport } from './usb-transport.js';

export type { UsbModuleLike } from './usb-module.js';
export { UsbBusyError, UsbDisconnectedError, UsbPermissionError } from './usb-errors.js';
export { UsbTransport } from './usb-transport.js';

export interface UsbInterfaceMatch {
  interfaceClass: number;
  interfaceSubclass: number;
  interfaceProtocols: number[];
  vendorId?: number;
  productId?: number;
}

/** AOSP `match_fastboot_with_serial`: any vendor, interface ff/42/03. */
export const FASTBOOT_USB_MATCH: UsbInterfaceMatch = {
  interfaceClass: 0xff,
  interfaceSubclass: 0x42,
  interfaceProtocols: [0x03],
};

/** Qualcomm EDL (Sahara/Firehose), edl.md §2.1–2.2. */
export const EDL_USB_MATCH: UsbInterfaceMatch = {
  vendorId: 0x05c6,
  productId: 0x9008,
  interfaceClass: 0xff,
  interfaceSubclass: 0xff,
  interfaceProtocols: [0xff, 0x10, 0x11, 0x13],
};

/** Qualcomm crash-dump (memory debug) mode: same interface, not flashable. */
const QUALCOMM_CRASHDUMP_PID = 0x900e;

export interface UsbDeviceInfo {
  serial: string | null;
  /** bus-ports, e.g. '1-4.2' (the user names it `usb:1-4.2`). */
  portPath: string;
  vendorId: number;
  productId: number;
  product?: string;
  /** Why the device could not be queried (e.g. permission denied), if it could not. */
  problem?: string;
}

export interface UsbOpenOptions {
  usb?: UsbModuleLike;
  /** Bytes per bulk OUT transfer; default 256 KiB (fastboot) or 1 MiB (EDL). */
  writeSize?: number;
  /** Bulk OUT transfers kept in flight; default 4 (fastboot) or 2 (EDL). */
  inFlight?: number;
  /** Default per-transfer timeout (ms). */
  timeoutMs?: number;
  /** Default: 'edl' for EDL_USB_MATCH-like matches, else 'never'. */
  zlp?: 'never' | 'edl';
  /** Where to read serials without opening devices; default /sys/bus/usb/devices on Linux with the real package, false otherwise. */
  sysfsRoot?: string | false;
}

export interface UsbListOptions {
  usb?: UsbModuleLike;
  sysfsRoot?: string | false;
}

export const FASTBOOT_USB_WRITE_SIZE = 256 * 1024;
export const EDL_USB_WRITE_SIZE = 1024 * 1024;
/** AOSP keeps 2 URBs in flight from C; JS callbacks are less punctual, so keep a little more queued. */
const FASTBOOT_IN_FLIGHT = 4;
const EDL_IN_FLIGHT = 2;
const STRING_DESCRIPTOR_TIMEOUT_MS = 2_000;

// ---- matching -----------------------------------------------------------

interface InterfaceChoice {
  iface: UsbInterfaceDescriptorLike;
  inEp: UsbEndpointDescriptorLike;
  outEp: UsbEndpointDescriptorLike;
}

interface Candidate {
  device: UsbDeviceLike;
  portPath: string;
  choice: InterfaceChoice;
}

const isBulk = (ep: UsbEndpointDescriptorLike): boolean => (ep.bmAttributes & 0x03) === LIBUSB.TRANSFER_TYPE_BULK;
const isIn = (ep: UsbEndpointDescriptorLike): boolean => (ep.bEndpointAddress & LIBUSB.ENDPOINT_IN) !== 0;

/** First interface (any alt setting) with the class triple and one bulk IN + one bulk OUT endpoint. */
export function matchInterface(device: UsbDeviceLike, match: UsbInterfaceMatch): InterfaceChoice | undefined {
  let config;
  try {
    config = device.configDescriptor;
  } catch {
    return undefined; // unconfigured or vanished device: not ours
  }
  for (const alts of config?.interfaces ?? []) {
    for (const d of alts) {
      if (d.bInterfaceClass !== match.interfaceClass || d.bInterfaceSubClass !== match.interfaceSubclass) continue;
      if (!match.interfaceProtocols.includes(d.bInterfaceProtocol)) continue;
      const inEp = d.endpoints.find((e) => isBulk(e) && isIn(e));
      const outEp = d.endpoints.find((e) => isBulk(e) && !isIn(e));
      if (inEp && outEp) return { iface: d, inEp, outEp };
    }
  }
  return undefined;
}

export function usbPortPath(device: UsbDeviceLike): string {
  const ports = device.portNumbers;
  if (ports && ports.length > 0) return `${device.busNumber}-${ports.join('.')}`;
  return `${device.busNumber}-addr${device.deviceAddress}`;
}

function deviceMatches(device: UsbDeviceLike, match: UsbInterfaceMatch): boolean {
  const d = device.deviceDescriptor;
  if (match.vendorId !== undefined && d.idVendor !== match.vendorId) return false;
  if (match.productId !== undefined && d.idProduct !== match.productId) return false;
  return true;
}

function listDevices(usb: UsbModuleLike): UsbDeviceLike[] {
  try {
    return usb.getDeviceList();
  } catch (e) {
    throw usbUnavailable(`listing USB devices failed: ${(e as Error).message}`, e);
  }
}

function candidates(usb: UsbModuleLike, match: UsbInterfaceMatch): Candidate[] {
  const out: Candidate[] = [];
  for (const device of listDevices(usb)) {
    if (!deviceMatches(device, match)) continue;
    const choice = matchInterface(device, match);
    if (choice) out.push({ device, portPath: usbPortPath(device), choice });
  }
  return out.sort((a, b) => a.portPath.localeCompare(b.portPath, 'en', { numeric: true }));
}

const isEdl = (match: UsbInterfaceMatch): boolean => match.interfaceSubclass === 0xff && match.vendorId === 0x05c6;
const flavourOf = (match: UsbInterfaceMatch): UsbTarget['flavour'] => (isEdl(match) ? 'edl' : 'fastboot');
const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

// ---- serials ------------------------------------------------------------

interface Strings {
  serial: string | null;
  product?: string;
}

/** qdl: the EDL serial is the token after `_SN:` in iProduct, up to a space or `_`. */
export function edlSerialFromProduct(product: string | undefined): string | null {
  const m = product ? /_SN:([^ _]+)/.exec(product) : null;
  return m ? m[1]! : null;
}

async function readSysfs(root: string, portPath: string, file: string): Promise<string | undefined> {
  try {
    const v = (await readFile(`${root}/${portPath}/${file}`, 'utf8')).trim();
    return v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

function stringDescriptor(device: UsbDeviceLike, index: number): Promise<string | undefined> {
  if (!index) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(undefined), STRING_DESCRIPTOR_TIMEOUT_MS);
    try {
      device.getStringDescriptor(index, (err, value) => {
        clearTimeout(t);
        if (err) reject(err);
        else resolve(value);
      });
    } catch (e) {
      clearTimeout(t);
      reject(e);
    }
  });
}

/** Read serial and product from an already opened device. */
async function readStringsOpen(device: UsbDeviceLike, match: UsbInterfaceMatch): Promise<Strings> {
  const dd = device.deviceDescriptor;
  const product = await stringDescriptor(device, dd.iProduct).catch(() => undefined);
  if (isEdl(match)) return { serial: edlSerialFromProduct(product), product };
  const serial = await stringDescriptor(device, dd.iSerialNumber).catch(() => undefined);
  return { serial: serial ?? null, product };
}

/** Serial and product: sysfs first (no device I/O), else open the device briefly. Throws libusb errors. */
async function readStrings(c: Candidate, match: UsbInterfaceMatch, sysfsRoot: string | false): Promise<Strings> {
  if (sysfsRoot) {
    const product = await readSysfs(sysfsRoot, c.portPath, 'product');
    const serial = isEdl(match) ? edlSerialFromProduct(product) : ((await readSysfs(sysfsRoot, c.portPath, 'serial')) ?? null);
    if (serial !== null) return { serial, product };
  }
  c.device.open();
  try {
    return await readStringsOpen(c.device, match);
  } finally {
    try {
      c.device.close();
    } catch {
      // ignore: the device may have gone away meanwhile
    }
  }
}

function defaultSysfs(opts: { usb?: UsbModuleLike; sysfsRoot?: string | false }): string | false {
  if (opts.sysfsRoot !== undefined) return opts.sysfsRoot;
  return !opts.usb && process.platform === 'linux' ? '/sys/bus/usb/devices' : false;
}

function infoOf(c: Candidate, s: Strings, problem?: string): UsbDeviceInfo {
  const d = c.device.deviceDescriptor;
  const info: UsbDeviceInfo = { serial: s.serial, portPath: c.portPath, vendorId: d.idVendor, productId: d.idProduct };
  if (s.product !== undefined) info.product = s.product;
  if (problem !== undefined) info.problem = problem;
  return info;
}

// ---- public API -----------------------------------------------------------

/** Devices exposing an interface that matches. Devices we may not open are listed with `problem`. */
export async function listUsbDevices(match: UsbInterfaceMatch, opts: UsbListOptions = {}): Promise<UsbDeviceInfo[]> {
  const usb = opts.usb ?? (await loadUsbModule());
  const sysfs = defaultSysfs(opts);
  const out: UsbDeviceInfo[] = [];
  for (const c of candidates(usb, match)) {
    try {
      out.push(infoOf(c, await readStrings(c, match, sysfs)));
    } catch (e) {
      const err = mapUsbError(e, 'open', targetOf(c, match));
      out.push(infoOf(c, { serial: null }, err instanceof UsbPermissionError ? 'permission denied' : err.message));
    }
  }
  return out;
}

/** Normalise the user's selector: 'usb:1-4.2' given as a serial is a port path. */
function normaliseSelect(select: { serial?: string; portPath?: string }): { serial?: string; portPath?: string } {
  let { serial, portPath } = select;
  if (serial?.startsWith('usb:')) {
    portPath ??= serial;
    serial = undefined;
  }
  if (portPath?.startsWith('usb:')) portPath = portPath.slice(4);
  return { serial, portPath };
}

function targetOf(c: Candidate, match: UsbInterfaceMatch): UsbTarget {
  return { what: `usb:${c.portPath}`, vendorId: c.device.deviceDescriptor.idVendor, flavour: flavourOf(match) };
}

async function selectCandidate(
  usb: UsbModuleLike,
  match: UsbInterfaceMatch,
  select: { serial?: string; portPath?: string },
  sysfs: string | false,
): Promise<{ c: Candidate; strings?: Strings }> {
  const kind = flavourOf(match) === 'edl' ? 'EDL (Qualcomm 9008)' : 'fastboot';
  let list = candidates(usb, match);
  if (select.portPath !== undefined) list = list.filter((c) => c.portPath === select.portPath);
  if (select.serial !== undefined) {
    const found: { c: Candidate; strings: Strings }[] = [];
    let denied: Candidate | undefined;
    for (const c of list) {
      try {
        const s = await readStrings(c, match, sysfs);
        if (s.serial === select.serial) found.push({ c, strings: s });
      } catch (e) {
        if (mapUsbError(e, 'open', targetOf(c, match)) instanceof UsbPermissionError) denied ??= c;
      }
    }
    if (found.length === 0 && denied) throw new UsbPermissionError(targetOf(denied, match));
    if (found.length > 0) return found[0]!;
    list = [];
  }
  if (list.length === 1) return { c: list[0]! };
  if (list.length > 1) {
    throw new BadInputError(`${list.length} ${kind} devices on USB (${list.map((c) => `usb:${c.portPath}`).join(', ')}): choose one`, {
      code: 'usb.ambiguous',
      hint: 'Pass -s SERIAL or -s usb:PORTPATH (see `miflash devices`), or --all.',
    });
  }
  throw noDevice(usb, match, select, kind);
}

function noDevice(usb: UsbModuleLike, match: UsbInterfaceMatch, select: { serial?: string; portPath?: string }, kind: string): TransportError {
  if (isEdl(match)) {
    const crash = listDevices(usb).find(
      (d) => d.deviceDescriptor.idVendor === 0x05c6 && d.deviceDescriptor.idProduct === QUALCOMM_CRASHDUMP_PID,
    );
    if (crash) {
      return new TransportError(`usb:${usbPortPath(crash)}: Qualcomm device is in crash-dump mode (05c6:900e), not EDL (05c6:9008)`, {
        code: 'usb.edl-crashdump',
        hint: 'Hold power + volume down ~10 s to leave crash-dump mode, then enter EDL again (test points or `adb reboot edl`).',
      });
    }
  }
  const where = select.portPath !== undefined ? ` at usb:${select.portPath}` : select.serial !== undefined ? ` with serial ${select.serial}` : ' on USB';
  const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
  const want =
    `interface ${hex2(match.interfaceClass)}/${hex2(match.interfaceSubclass)}/${match.interfaceProtocols.map(hex2).join('|')}` +
    (match.vendorId !== undefined ? ` on ${hex4(match.vendorId)}:${match.productId !== undefined ? hex4(match.productId) : '*'}` : '');
  return new TransportError(`no ${kind} device found${where} (looked for USB ${want})`, {
    code: 'usb.no-device',
    hint:
      kind === 'fastboot'
        ? 'Check the cable, that the phone shows the FASTBOOT screen (volume down + power), and `miflash devices`.'
        : 'Check the cable and that the phone is in EDL mode (black screen; lsusb shows 05c6:9008).',
  });
}

/** Open the selected device, claim the matched interface and return a bulk transport. */
export async function openUsbTransport(
  match: UsbInterfaceMatch,
  select: { serial?: string; portPath?: string } = {},
  opts: UsbOpenOptions = {},
): Promise<UsbTransport> {
  const usb = opts.usb ?? (await loadUsbModule());
  const edl = isEdl(match);
  const { c, strings } = await selectCandidate(usb, match, normaliseSelect(select), defaultSysfs(opts));
  const target = targetOf(c, match);
  const { device, choice } = c;

  try {
    device.open();
  } catch (e) {
    throw mapUsbError(e, 'open', target);
  }
  let claimed = false;
  try {
    const iface = device.interface(choice.iface.bInterfaceNumber);
    detachKernelDriver(iface, target);
    try {
      iface.claim();
    } catch (e) {
      throw mapUsbError(e, `claim interface ${choice.iface.bInterfaceNumber}`, target);
    }
    claimed = true;
    if (choice.iface.bAlternateSetting !== 0) await setAltSetting(iface, choice.iface.bAlternateSetting, target);
    const inEp = findEndpoint(iface.endpoints, choice.inEp.bEndpointAddress, target);
    const outEp = findEndpoint(iface.endpoints, choice.outEp.bEndpointAddress, target);
    const s = strings ?? (await readStringsOpen(device, match).catch((): Strings => ({ serial: null })));
    const mps = Math.max(1, choice.outEp.wMaxPacketSize);
    const writeSize = alignWriteSize(opts.writeSize ?? (edl ? EDL_USB_WRITE_SIZE : FASTBOOT_USB_WRITE_SIZE), mps);
    const inFlight = Math.max(1, Math.floor(opts.inFlight ?? (edl ? EDL_IN_FLIGHT : FASTBOOT_IN_FLIGHT)));
    const d = device.deviceDescriptor;
    const detail = [s.serial ? `serial ${s.serial}` : undefined, `${hex4(d.idVendor)}:${hex4(d.idProduct)}`, s.product].filter(Boolean);
    return new UsbTransport({
      id: target.what,
      description: `${target.what} (${detail.join(', ')})`,
      target,
      device,
      iface,
      inEp,
      outEp,
      writeSize,
      inFlight,
      timeoutMs: opts.timeoutMs ?? DEFAULT_IO_TIMEOUT_MS,
      zlp: opts.zlp ?? (edl ? 'edl' : 'never'),
    });
  } catch (e) {
    if (claimed) {
      try {
        device.interface(choice.iface.bInterfaceNumber).release();
      } catch {
        // closing the device releases it anyway
      }
    }
    try {
      device.close();
    } catch {
      // ignore
    }
    throw e instanceof TransportError || e instanceof BadInputError ? e : mapUsbError(e, 'open', target);
  }
}

/** Whole packets per transfer (qdl requires it for EDL; harmless for fastboot). */
function alignWriteSize(size: number, mps: number): number {
  if (!Number.isFinite(size) || size <= 0) throw new BadInputError(`USB write size must be positive, got ${size}`);
  return Math.max(mps, Math.floor(size / mps) * mps);
}

/** A kernel driver (qcserial, usbfs of another tool) must let go before claim; failures surface at claim. */
function detachKernelDriver(iface: { isKernelDriverActive(): boolean; detachKernelDriver(): void }, target: UsbTarget): void {
  let active = false;
  try {
    active = iface.isKernelDriverActive();
  } catch {
    return; // not supported on this platform
  }
  if (!active) return;
  try {
    iface.detachKernelDriver();
  } catch (e) {
    const err = mapUsbError(e, 'detach kernel driver', target);
    if (err instanceof UsbPermissionError) throw err;
    // Otherwise let claim() report BUSY with the list of likely holders.
  }
}

function setAltSetting(iface: { setAltSetting(n: number, cb: (e?: unknown) => void): void }, alt: number, target: UsbTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new TransportError(`${target.what}: selecting alternate setting ${alt} timed out`, { code: 'usb.alt-setting' })),
      STRING_DESCRIPTOR_TIMEOUT_MS,
    );
    iface.setAltSetting(alt, (e) => {
      clearTimeout(t);
      if (e) reject(mapUsbError(e, `set alternate setting ${alt}`, target));
      else resolve();
    });
  });
}

function findEndpoint(endpoints: UsbEndpointLike[], address: number, target: UsbTarget): UsbEndpointLike {
  const ep = endpoints.find((e) => e.address === address);
  if (!ep) {
    throw new TransportError(`${target.what}: endpoint 0x${address.toString(16)} missing after claim`, { code: 'usb.endpoint-missing' });
  }
  return ep;
}
