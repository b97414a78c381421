// `erase PARTITION` as the AOSP client does it: slot resolution, then a look at
// partition-type (a filesystem partition is usually meant to be formatted, so
// warn), then erase.
import type { FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from './slots.js';

/** Partition types AOSP can generate a filesystem for (fs_get_generator). */
const FORMATTABLE = new Set(['ext4', 'f2fs']);

export async function erasePartition(
  client: FastbootClient,
  partition: string,
  opts: { slot?: string; onEvent?: EventSink } = {},
): Promise<string[]> {
  const slot = await resolveSlotOption(client, opts.slot);
  const erased: string[] = [];
  await forEachPartition(
    client,
    partition,
    slot,
    async (name) => {
      const type = await getvarOrUndefined(client, `partition-type:${name}`);
      if (type !== undefined && FORMATTABLE.has(type)) {
        opts.onEvent?.({ type: 'warning', message: `'${name}' is an ${type} partition; did you mean to format it? (erase leaves no filesystem)` });
      }
      await step(opts.onEvent, `Erasing '${name}'`, () => client.erase(name).then(() => {}));
      erased.push(name);
    },
    { forceSlot: true, onEvent: opts.onEvent },
  );
  return erased;
}
