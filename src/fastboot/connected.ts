// `connect` / `disconnect`: the network devices the AOSP client (v35
// ConnectedDevicesStorage) remembers, in the same file it uses —
// $HOME/.fastboot/devices, one address per line, sorted (a std::set) — so
// both clients see the same list. `devices` lists them with their state, and
// a command run with no -s and no USB device uses them, as AOSP's
// open_device() does (USB first, then the stored devices; the last that
// answers wins). AOSP serialises writers with a lock file; miflash replaces
// the file atomically instead (write to a temporary name, rename).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { BadInputError } from '../errors.js';
import { parseDeviceSpec, type DeviceSpec } from '../transport/open.js';

export function connectedDevicesFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.HOME || homedir(), '.fastboot', 'devices');
}

/** The stored addresses, in AOSP's (sorted) order; none when the file does not exist. */
export function readConnected(file = connectedDevicesFile()): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return [...new Set(text.split(/\s+/).filter(Boolean))].sort();
}

export function writeConnected(devices: Iterable<string>, file = connectedDevicesFile()): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const sorted = [...new Set(devices)].sort();
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, sorted.map((d) => `${d}\n`).join(''));
  renameSync(tmp, file);
}

/** disconnect with no address: AOSP removes the file. */
export function clearConnected(file = connectedDevicesFile()): void {
  rmSync(file, { force: true });
}

/** A network address as `connect` / `disconnect` take it (AOSP ParseNetworkSerial): tcp: or udp: required. */
export function parseNetworkAddress(text: string): DeviceSpec {
  if (!text.startsWith('tcp:') && !text.startsWith('udp:')) {
    throw new BadInputError(`protocol prefix ('tcp:' or 'udp:') is missed: ${text}`, {
      code: 'input.device',
      hint: 'expected address format: <protocol>:<address>:<port> (tcp:localhost:5554)',
    });
  }
  return parseDeviceSpec(text);
}
