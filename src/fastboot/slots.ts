// Slot handling as the AOSP client does it: --slot a|b|_a|all|other, has-slot
// queried per partition, current-slot when no slot is given. The sequence of
// getvars mirrors fastboot v29 so the device sees the same conversation.
import { BadInputError, DeviceFailError } from '../errors.js';
import { FastbootFailError } from './errors.js';
import type { FastbootClient } from './client.js';
import { parseFastbootNumber } from './client.js';
import type { EventSink } from './events.js';

/** getvar that treats FAIL as "no answer" (old bootloaders FAIL unknown vars). */
export async function getvarOrUndefined(client: FastbootClient, name: string): Promise<string | undefined> {
  try {
    return await client.getvar(name);
  } catch (err) {
    if (err instanceof FastbootFailError) return undefined;
    throw err;
  }
}

export async function slotCount(client: FastbootClient): Promise<number> {
  const v = await getvarOrUndefined(client, 'slot-count');
  return v === undefined ? 0 : (parseFastbootNumber(v) ?? 0);
}

export async function currentSlot(client: FastbootClient): Promise<string> {
  const v = (await getvarOrUndefined(client, 'current-slot')) ?? '';
  return v.trim().replace(/^_/, '');
}

function slotLetter(i: number): string {
  return String.fromCharCode('a'.charCodeAt(0) + i);
}

/**
 * Normalises a --slot value: '' (none), 'all', or a slot letter that exists.
 * 'other' becomes the slot after the current one.
 */
export async function resolveSlotOption(client: FastbootClient, slot: string | undefined): Promise<string> {
  if (slot === undefined || slot === '') return '';
  if (slot === 'all') return 'all';
  const count = await slotCount(client);
  if (count === 0) throw new DeviceFailError(`--slot ${slot}: the device does not support slots (slot-count is 0 or missing)`, { code: 'fastboot.no-slots' });
  if (slot === 'other') {
    const current = await currentSlot(client);
    const index = current.length === 1 ? current.charCodeAt(0) - 'a'.charCodeAt(0) : -1;
    if (index < 0 || index >= count) {
      throw new DeviceFailError(`--slot other: cannot tell the current slot (current-slot is '${current}')`, { code: 'fastboot.no-slots' });
    }
    return slotLetter((index + 1) % count);
  }
  const letter = slot.replace(/^_/, '');
  const index = letter.length === 1 ? letter.charCodeAt(0) - 'a'.charCodeAt(0) : -1;
  if (index < 0 || index >= count) {
    const known = Array.from({ length: count }, (_, i) => slotLetter(i)).join(', ');
    throw new BadInputError(`slot '${slot}' does not exist; the device has slots: ${known}`);
  }
  return letter;
}

/**
 * Runs `fn` for the partition name(s) `partition` resolves to with `slot`
 * (already normalised by resolveSlotOption): NAME_<slot> when the partition
 * has slots, NAME otherwise; 'all' = every slot.
 */
export async function forEachPartition(
  client: FastbootClient,
  partition: string,
  slot: string,
  fn: (name: string) => Promise<void>,
  opts: { forceSlot?: boolean; onEvent?: EventSink } = {},
): Promise<void> {
  if (slot === 'all') {
    const hasSlot = await client.getvar(`has-slot:${partition}`).catch((err: unknown) => {
      if (err instanceof FastbootFailError) {
        throw new DeviceFailError(`could not check whether partition '${partition}' has slots: ${err.deviceMessage}`, { code: 'fastboot.has-slot' });
      }
      throw err;
    });
    if (hasSlot === 'yes') {
      // AOSP re-reads slot-count on every loop test; so do we, to hold the same conversation.
      for (let i = 0; i < (await slotCount(client)); i++) await forOnePartition(client, partition, slotLetter(i), fn, opts);
    } else {
      await forOnePartition(client, partition, '', fn, opts);
    }
    return;
  }
  await forOnePartition(client, partition, slot, fn, opts);
}

async function forOnePartition(
  client: FastbootClient,
  partition: string,
  slot: string,
  fn: (name: string) => Promise<void>,
  opts: { forceSlot?: boolean; onEvent?: EventSink },
): Promise<void> {
  // "vendor_boot:default": the slot goes on the first token.
  const [base, ...rest] = partition.split(':');
  const hasSlot = (await getvarOrUndefined(client, `has-slot:${base}`)) ?? 'no';
  if (hasSlot === 'yes') {
    let suffix = slot;
    if (suffix === '') {
      suffix = await currentSlot(client);
      if (suffix === '') throw new DeviceFailError(`'${base}' has slots but the device did not report current-slot`, { code: 'fastboot.no-slots' });
    }
    await fn([`${base}_${suffix}`, ...rest].join(':'));
    return;
  }
  if (opts.forceSlot && slot !== '') {
    opts.onEvent?.({ type: 'warning', message: `${base} does not support slots, and slot ${slot} was requested` });
  }
  await fn(partition);
}
