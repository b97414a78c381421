// Logical (dynamic) partitions inside super and snapshot updates, as the AOSP
// client sends them (fastboot v35). These are fastbootd commands; a bootloader
// answers FAIL, and the error says where to run them.
//  create-logical-partition NAME SIZE   create-logical-partition:NAME:SIZE ("Creating 'NAME'")
//  delete-logical-partition NAME        delete-logical-partition:NAME ("Deleting 'NAME'")
//  resize-logical-partition NAME SIZE   per slot (--slot; no slot warning), only where
//                                       getvar is-logical:NAME_x says yes ("Resizing 'NAME_x'")
//  snapshot-update [cancel|merge]       snapshot-update[:ARG] ("Snapshot ARG")
import { BadInputError } from '../errors.js';
import type { FastbootClient } from './client.js';
import { FastbootFailError } from './errors.js';
import { step, type EventSink } from './events.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from './slots.js';

const FASTBOOTD_HINT = 'logical partitions live in super and are managed by userspace fastboot: run `miflash reboot fastboot`, then retry';

/** A FAIL from a bootloader that has never heard of the command gets the fastbootd hint. */
async function fastbootdCommand(client: FastbootClient, cmd: string): Promise<void> {
  try {
    await client.command(cmd);
  } catch (err) {
    if (err instanceof FastbootFailError && (await getvarOrUndefined(client, 'is-userspace').catch(() => undefined))?.trim() !== 'yes') {
      throw new FastbootFailError(err.command, err.deviceMessage, err.info, { hint: FASTBOOTD_HINT });
    }
    throw err;
  }
}

/** SIZE as given on the command line: AOSP passes the string through; miflash insists on a byte count the device can parse. */
export function checkSizeArg(size: string, what: string): string {
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(size)) throw new BadInputError(`${what}: size '${size}' is not a byte count (decimal or 0x hex)`);
  return size;
}

export async function createLogicalPartition(client: FastbootClient, name: string, size: string, onEvent?: EventSink): Promise<void> {
  await step(onEvent, `Creating '${name}'`, () => fastbootdCommand(client, `create-logical-partition:${name}:${checkSizeArg(size, 'create-logical-partition')}`));
}

export async function deleteLogicalPartition(client: FastbootClient, name: string, onEvent?: EventSink): Promise<void> {
  await step(onEvent, `Deleting '${name}'`, () => fastbootdCommand(client, `delete-logical-partition:${name}`));
}

/** AOSP ResizeTask: resizes each slot's partition that the device reports as logical; others are skipped silently. Returns the names resized. */
export async function resizeLogicalPartition(client: FastbootClient, name: string, size: string, opts: { slot?: string; onEvent?: EventSink } = {}): Promise<string[]> {
  checkSizeArg(size, 'resize-logical-partition');
  const slot = await resolveSlotOption(client, opts.slot);
  const resized: string[] = [];
  await forEachPartition(client, name, slot, async (p) => {
    if ((await getvarOrUndefined(client, `is-logical:${p}`))?.trim() !== 'yes') return;
    await step(opts.onEvent, `Resizing '${p}'`, () => client.command(`resize-logical-partition:${p}:${size}`));
    resized.push(p);
  });
  return resized;
}

export const SNAPSHOT_ARGS = ['cancel', 'merge'] as const;

export async function snapshotUpdate(client: FastbootClient, arg: string | undefined, onEvent?: EventSink): Promise<void> {
  if (arg !== undefined && !(SNAPSHOT_ARGS as readonly string[]).includes(arg)) throw new BadInputError(`snapshot-update: expected cancel or merge, not '${arg}'`);
  // AOSP sends "snapshot-update:" with an empty argument when none is given.
  await step(onEvent, `Snapshot ${arg ?? ''}`, () => fastbootdCommand(client, `snapshot-update:${arg ?? ''}`));
}

/** `gsi wipe|disable|status`: gsi:ARG (fastbootd). */
export async function gsiCommand(client: FastbootClient, args: string[], onEvent?: EventSink): Promise<void> {
  if (args.length === 0) throw new BadInputError('gsi: expected wipe, disable or status');
  const cmd = ['gsi', ...args].join(':');
  await step(onEvent, cmd, () => fastbootdCommand(client, cmd));
}

/**
 * v35 CancelSnapshotIfNeeded (`-w --force`, and before `update`): a device
 * reporting a snapshot-update-status other than none (or empty) gets
 * `snapshot-update:cancel`. Returns whether it was cancelled.
 */
export async function cancelSnapshotIfNeeded(client: FastbootClient, onEvent?: EventSink): Promise<boolean> {
  const status = (await getvarOrUndefined(client, 'snapshot-update-status'))?.trim();
  if (status === undefined || status === '' || status === 'none') return false;
  await step(onEvent, 'Snapshot cancel', () => client.command('snapshot-update:cancel'));
  return true;
}
