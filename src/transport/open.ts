// Device addressing and selection, with the AOSP fastboot conventions:
//  -s SERIAL | usb:PORTPATH | tcp:HOST[:PORT] | udp:HOST[:PORT]; without -s,
//  $FASTBOOT_DEVICE then $ANDROID_SERIAL; without any, the one USB device
//  attached (several = refuse and list them, so a multi-phone bench never
//  flashes the wrong one).
import { BadInputError, TransportError } from '../errors.js';
import { DEFAULT_TCP_PORT, parseNetworkAddress } from './tcp.js';
import type { Transport } from './transport.js';
import type { UsbDeviceInfo } from './usb.js';

export const DEFAULT_UDP_PORT = 5554;

export type DeviceSpec =
  | { kind: 'tcp' | 'udp'; host: string; port: number }
  | { kind: 'usb'; portPath: string; serial?: string }
  | { kind: 'serial'; serial: string };

/** Parses what the user passed to -s (or put in $ANDROID_SERIAL). */
export function parseDeviceSpec(text: string): DeviceSpec {
  const s = text.trim();
  if (s === '') throw new BadInputError('empty device name', { hint: 'use -s SERIAL, -s usb:PORTPATH or -s tcp:HOST[:PORT]' });
  const proto = /^(tcp|udp):/i.exec(s)?.[1]?.toLowerCase() as 'tcp' | 'udp' | undefined;
  if (proto) {
    const { host, port } = parseNetworkAddress(s, proto === 'tcp' ? DEFAULT_TCP_PORT : DEFAULT_UDP_PORT);
    return { kind: proto, host, port };
  }
  if (/^usb:/i.test(s)) {
    const portPath = s.slice(4);
    if (!/^\d+-\d+(\.\d+)*$/.test(portPath)) {
      throw new BadInputError(`bad USB port path "${portPath}" in "${text}": expected BUS-PORT[.PORT…], e.g. usb:1-4.2`, {
        hint: '`miflash devices` lists the port path of every attached device',
      });
    }
    return { kind: 'usb', portPath };
  }
  return { kind: 'serial', serial: s };
}

/** How the user names the device (what -s accepts). */
export function formatDeviceSpec(spec: DeviceSpec): string {
  switch (spec.kind) {
    case 'tcp':
    case 'udp':
      return `${spec.kind}:${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
    case 'usb':
      return `usb:${spec.portPath}`;
    case 'serial':
      return spec.serial;
  }
}

export interface SelectOptions {
  /** -s values, in order. */
  serials?: string[];
  /** --all: every attached USB fastboot device (plus any -s). */
  all?: boolean;
  env?: NodeJS.ProcessEnv;
  /** USB enumeration (tests inject a fake; default: the usb package). */
  listUsb?: () => Promise<UsbDeviceInfo[]>;
}

/** Which devices a command should talk to. */
export async function selectDevices(opts: SelectOptions = {}): Promise<DeviceSpec[]> {
  const env = opts.env ?? process.env;
  const explicit = opts.serials?.length ? opts.serials : envSerial(env);
  const specs = dedupe(explicit.map(parseDeviceSpec));
  if (specs.length > 0 && !opts.all) return specs;

  const found = (await (opts.listUsb ?? defaultListUsb)()).map(usbSpec);
  if (opts.all) {
    const all = dedupe([...specs, ...found]);
    if (all.length === 0) throw noDevice();
    return all;
  }
  if (found.length === 0) throw noDevice();
  if (found.length > 1) {
    const list = found.map((d) => `  ${describeUsb(d)}`).join('\n');
    throw new BadInputError(`${found.length} fastboot devices are attached; choose one with -s (or use --all):\n${list}`, {
      code: 'input.ambiguous-device',
      hint: 'e.g. miflash -s ' + formatDeviceSpec(found[0]!) + ' ...',
    });
  }
  return found;
}

function envSerial(env: NodeJS.ProcessEnv): string[] {
  for (const name of ['FASTBOOT_DEVICE', 'ANDROID_SERIAL']) {
    const v = env[name]?.trim();
    if (v) return [v];
  }
  return [];
}

function usbSpec(d: UsbDeviceInfo): DeviceSpec {
  return { kind: 'usb', portPath: d.portPath, serial: d.serial ?? undefined };
}

function describeUsb(spec: DeviceSpec): string {
  const name = formatDeviceSpec(spec);
  return spec.kind === 'usb' && spec.serial ? `${spec.serial}\t${name}` : `(no serial)\t${name}`;
}

function dedupe(specs: DeviceSpec[]): DeviceSpec[] {
  const seen = new Set<string>();
  return specs.filter((s) => {
    const key = s.kind === 'usb' && s.serial ? s.serial : formatDeviceSpec(s);
    const alt = formatDeviceSpec(s);
    if (seen.has(key) || seen.has(alt)) return false;
    seen.add(key);
    seen.add(alt);
    return true;
  });
}

function noDevice(): TransportError {
  return new TransportError('no fastboot device found', {
    code: 'transport.no-device',
    hint: 'connect the phone in fastboot mode (volume down + power), check the cable, or name a network device with -s tcp:HOST',
  });
}

async function defaultListUsb(): Promise<UsbDeviceInfo[]> {
  const usb = await import('./usb.js');
  return usb.listUsbDevices(usb.FASTBOOT_USB_MATCH);
}

export interface OpenOptions {
  /** Per-operation timeout the transport applies. */
  timeoutMs?: number;
}

/** Opens a fastboot link to the device. */
export async function openDevice(spec: DeviceSpec, opts: OpenOptions = {}): Promise<Transport> {
  switch (spec.kind) {
    case 'tcp': {
      const { openTcpTransport } = await import('./tcp.js');
      return openTcpTransport(formatDeviceSpec(spec), { timeoutMs: opts.timeoutMs });
    }
    case 'udp':
      return openUdp(spec, opts);
    case 'usb':
    case 'serial': {
      const usb = await import('./usb.js');
      const select = spec.kind === 'usb' ? { portPath: spec.portPath } : { serial: spec.serial };
      return usb.openUsbTransport(usb.FASTBOOT_USB_MATCH, select, { timeoutMs: opts.timeoutMs });
    }
  }
}

async function openUdp(spec: DeviceSpec, opts: OpenOptions): Promise<Transport> {
  const { openUdpTransport } = await import('./udp.js');
  return openUdpTransport(formatDeviceSpec(spec), { timeoutMs: opts.timeoutMs });
}
