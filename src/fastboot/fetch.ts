// `fetch PARTITION OUT` as the AOSP client does it (fastboot v35 do_fetch /
// fetch_partition): OUT is created (truncated) once; for each partition the
// slot option resolves to (no slot warning: force_slot is false), read
// max-fetch-size and partition-size, then `fetch:NAME:0xOFFSET:0xSIZE` in
// chunks of at most max-fetch-size, each appended to OUT as it arrives.
import { closeSync, openSync, writeSync } from 'node:fs';
import { BadInputError, DeviceFailError } from '../errors.js';
import { parseFastbootNumber, type FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from './slots.js';

/** AOSP fb_fix_numeric_var: trimmed, and hex even without the 0x (hammerhead's implicit hex). */
export function fixNumericVar(value: string): number | undefined {
  const s = value.trim();
  return parseFastbootNumber(s.startsWith('0x') ? s : `0x${s}`);
}

export interface FetchResult {
  partition: string;
  bytes: number;
}

export async function fetchPartition(client: FastbootClient, partition: string, out: string, opts: { slot?: string; onEvent?: EventSink } = {}): Promise<FetchResult[]> {
  const slot = await resolveSlotOption(client, opts.slot);
  let fd: number;
  try {
    fd = openSync(out, 'w', 0o644);
  } catch (err) {
    throw new BadInputError(`cannot write '${out}': ${(err as Error).message}`, { code: 'input.output' });
  }
  const done: FetchResult[] = [];
  try {
    await forEachPartition(client, partition, slot, async (name) => {
      done.push({
        partition: name,
        bytes: await fetchPartitionData(
          client,
          name,
          (data) => {
            for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
          },
          opts.onEvent,
        ),
      });
    });
  } finally {
    closeSync(fd);
  }
  return done;
}

/** One partition (slot already resolved), every chunk handed to `onData` in order; returns the partition size. */
export async function fetchPartitionData(client: FastbootClient, name: string, onData: (data: Uint8Array) => void, onEvent?: EventSink): Promise<number> {
  const maxRaw = (await getvarOrUndefined(client, 'max-fetch-size'))?.trim();
  const max = maxRaw ? parseFastbootNumber(maxRaw) : undefined;
  if (!max) {
    throw new DeviceFailError('unable to get max-fetch-size: the device does not support the fetch command (fastbootd on Android 11 or later does)', {
      code: 'fastboot.no-fetch',
      hint: 'reboot into fastbootd first: miflash reboot fastboot',
    });
  }
  const sizeRaw = await getvarOrUndefined(client, `partition-size:${name}`);
  const size = sizeRaw === undefined ? undefined : fixNumericVar(sizeRaw);
  if (!size) throw new DeviceFailError(`invalid partition size for partition ${name}: ${sizeRaw ?? '(no answer)'}`, { code: 'fastboot.partition-size' });
  for (let offset = 0; offset < size; ) {
    const chunk = Math.min(max, size - offset);
    await step(onEvent, `Fetching ${name} (offset=${offset.toString(16)}, size=${chunk.toString(16)})`, () =>
      client.fetch(name, offset, chunk, { onData }),
    );
    offset += chunk;
  }
  return size;
}
