// `-w` and `format` without a host-side filesystem generator. AOSP erases
// userdata/cache/metadata and then writes a fresh ext4/f2fs image it builds
// with mke2fs/make_f2fs; miflash builds no filesystems, so it erases only and
// says so: Android formats an erased userdata (and metadata/cache) itself on
// the next boot when the fstab marks them `formattable`, as stock fstabs do.
import { DeviceFailError } from '../errors.js';
import type { FastbootClient } from '../fastboot/client.js';
import { step, type EventSink } from '../fastboot/events.js';
import { forEachPartition, getvarOrUndefined } from '../fastboot/slots.js';

/** What AOSP v29 `-w` wipes, in its order, when the device reports a partition-type for it. */
export const WIPE_PARTITIONS = ['userdata', 'cache', 'metadata'] as const;

/** Partitions Android recreates a filesystem on by itself when they are found empty. */
const RECREATED_BY_ANDROID = /^(userdata|cache|metadata)(_[a-z])?$/;

/** `-w`: erase userdata, cache and metadata where they exist. Returns the partitions erased. */
export async function wipeUserData(client: FastbootClient, onEvent?: EventSink): Promise<string[]> {
  const erased: string[] = [];
  for (const p of WIPE_PARTITIONS) {
    const type = await getvarOrUndefined(client, `partition-type:${p}`);
    if (type === undefined || type.trim() === '') continue; // no such partition (AOSP skips it too)
    await step(onEvent, `Erasing '${p}'`, () => client.erase(p));
    erased.push(p);
  }
  return erased;
}

/** `format[:FS] PART`: erase (slot resolved as AOSP does); returns the partitions erased. */
export async function formatByErase(client: FastbootClient, partition: string, onEvent?: EventSink): Promise<string[]> {
  const erased: string[] = [];
  await forEachPartition(client, partition, '', async (name) => {
    const type = await getvarOrUndefined(client, `partition-type:${name}`);
    if (type === undefined) {
      throw new DeviceFailError(`format ${name}: the device reports no partition-type for it (no such partition?)`, { code: 'fastboot.format' });
    }
    await step(onEvent, `Erasing '${name}' (format)`, () => client.erase(name));
    erased.push(name);
  });
  return erased;
}

/** The honest note after an erase that stands in for a format. */
export function noFilesystemNote(partitions: string[], what: string): string {
  if (partitions.length === 0) return `${what}: none of ${WIPE_PARTITIONS.join(', ')} exists on the device; nothing was erased`;
  const recreated = partitions.filter((p) => RECREATED_BY_ANDROID.test(p));
  const others = partitions.filter((p) => !RECREATED_BY_ANDROID.test(p));
  const parts = [
    `${what}: ${partitions.join(', ')} erased, not formatted (miflash builds no ext4/f2fs images on the host, unlike AOSP fastboot)`,
    recreated.length > 0 ? `Android creates the filesystem on ${recreated.join(', ')} itself on the next boot (it formats an empty data partition), so that boot takes longer` : '',
    others.length > 0 ? `${others.join(', ')} ${others.length > 1 ? 'are' : 'is'} left empty with no filesystem` : '',
  ];
  return parts.filter(Boolean).join('; ');
}
