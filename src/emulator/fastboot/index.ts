// Public API of the emulated fastboot device (`miflash emulate`, tests, bench).
//
// What it answers (README "The emulated device" has the full table):
//   both modes   getvar (version product serialno secure unlocked max-download-size current-slot
//                slot-count has-slot: partition-size: partition-type: is-logical: is-userspace
//                snapshot-update-status slot-successful: slot-unbootable: slot-retry-count: all,
//                plus --var extras), download, flash, erase, set_active, fetch, oem, reboot,
//                reboot-bootloader, reboot-fastboot, reboot-recovery, shutdown
//   bootloader   boot, continue, upload (returns the last download: stage / get_staged),
//                flashing lock|unlock|..., reboot-edl, snapshot-update[:cancel];
//                logical partitions are unknown here
//   fastbootd    (after reboot-fastboot; is-userspace: yes) super-partition-name,
//                create-/delete-/resize-logical-partition, update-super:NAME[:wipe],
//                snapshot-update[:cancel|:merge], gsi, fetch of vendor_boot only;
//                anything else is "Unrecognized command X", as on a phone
// Logical partitions live in DIR/super.img with real LP metadata (src/lp reads it back).
import type { Transport } from '../../transport/transport.js';
import { EmulatedFastbootDevice, type FastbootEmulatorOptions } from './device.js';
import { listenTcp, serveTransport } from './server.js';

export { EmulatedFastbootDevice, FastbootCommandError } from './device.js';
export type { FastbootEmulatorOptions, FaultOptions, Download, DeviceMode, SnapshotStatus } from './device.js';
export { DYNAMIC_PARTITIONS } from './device.js';
export { DynamicPartitions } from './logical.js';
export { FastbootDeviceSession, MAX_COMMAND, MAX_RESPONSE } from './session.js';
export type { SessionIo } from './session.js';

export interface RunningFastbootEmulator {
  /** 'tcp:127.0.0.1:PORT' */
  address: string;
  port: number;
  /** One line per command received (downloads as `download SIZE SHA256`, or `download SIZE -` without hashing). */
  log: string[];
  /** The device state (partitions, vars, slots); readPartition() for tests. */
  device: EmulatedFastbootDevice;
  close(): Promise<void>;
}

/**
 * Start an emulated device listening on `listen`: 'tcp:127.0.0.1:0' or
 * 'udp:127.0.0.1:0' (port 0 picks a free port).
 */
export async function startFastbootEmulator(listen: string, opts: FastbootEmulatorOptions): Promise<RunningFastbootEmulator> {
  const device = new EmulatedFastbootDevice(opts);
  const server = listen.startsWith('udp:') ? await listenUdp(listen, device) : await listenTcp(listen, device);
  return { address: server.address, port: server.port, log: device.log, device, close: server.close };
}

/** Network fastboot over UDP: each host session (init packet) gets the same device. */
async function listenUdp(listen: string, device: EmulatedFastbootDevice): Promise<{ address: string; port: number; close(): Promise<void> }> {
  const { listenUdpDevice } = await import('../../transport/udp-server.js');
  const sessions = new Set<Promise<void>>();
  const server = await listenUdpDevice(listen, (transport) => {
    const run = serveTransport(device, transport).catch(() => undefined);
    sessions.add(run);
    void run.finally(() => sessions.delete(run));
  });
  return {
    address: server.address,
    port: server.port,
    close: async () => {
      await server.close();
      await Promise.allSettled([...sessions]);
    },
  };
}

/**
 * Serve one host connection over any device-side Transport (e.g. the `device`
 * end of createMemoryTransportPair()). Resolves when the link closes. Pass the
 * same device again to model a reboot ("the device comes back").
 */
export function runFastbootDevice(transport: Transport, device: EmulatedFastbootDevice): Promise<void> {
  return serveTransport(device, transport);
}
