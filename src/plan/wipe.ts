// `-w`, `format[:FS_TYPE[:SIZE]]` and fastboot-info `erase`, as the AOSP
// client does them (fastboot v35 WipeTask / fb_perform_format): the
// filesystem is generated on the host (src/fastboot/mkfs.ts: mke2fs for ext4,
// mkfs.f2fs for f2fs) at the size the device reports, and flashed.
//
// -w on userdata, cache, metadata: a partition the device does not report a
// type for is skipped; the rest are erased, then formatted when the type has a
// generator. When the generator tool is not installed, -w still erases and
// says so (Android recreates userdata / cache / metadata itself on the next
// boot when the fstab marks them formattable, as stock fstabs do); `format`
// refuses before writing anything.
import { BadInputError } from '../errors.js';
import type { FastbootClient } from '../fastboot/client.js';
import { step, type EventSink } from '../fastboot/events.js';
import { fixNumericVar } from '../fastboot/fetch.js';
import { deviceSparseLimit, sendPieces } from '../fastboot/flash-image.js';
import { findGenerator, FS_TYPES, generateFilesystem, missingToolError, type FsOptions, type FsType } from '../fastboot/mkfs.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from '../fastboot/slots.js';
import { RESPARSE_LIMIT, splitImage } from '../sparse/prepare.js';

/** What AOSP `-w` wipes, in its order. */
export const WIPE_PARTITIONS = ['userdata', 'cache', 'metadata'] as const;

/** Partitions Android recreates a filesystem on by itself when they are found empty. */
const RECREATED_BY_ANDROID = /^(userdata|cache|metadata)(_[a-z])?$/;

export interface WipeResult {
  partition: string;
  /** 'formatted' = erased, then a fresh filesystem flashed; 'erased' = no generator for its type; 'no-tool' = the generator is not installed. */
  outcome: 'formatted' | 'erased' | 'no-tool';
  type: string;
}

export interface FormatOptions {
  onEvent?: EventSink;
  /** -S. */
  sparseLimit?: number;
  fsOptions?: FsOptions;
  tmpDir?: string;
  signal?: AbortSignal;
  /** Where mke2fs / mkfs.f2fs are looked for (default: $PATH and the sbin folders). */
  searchPath?: readonly string[];
}

/** A block size variable (erase-block-size, logical-block-size): 0 when missing, unparsable or not a power of two. */
async function blockSizeVar(client: FastbootClient, name: string, onEvent?: EventSink): Promise<number> {
  const raw = (await getvarOrUndefined(client, name))?.trim();
  if (!raw) return 0;
  const n = fixNumericVar(raw);
  if (n === undefined) {
    onEvent?.({ type: 'warning', message: `couldn't parse ${name} '${raw}'` });
    return 0;
  }
  if ((n & (n - 1)) !== 0) {
    onEvent?.({ type: 'warning', message: `invalid ${name} ${n}: must be a power of 2` });
    return 0;
  }
  return n;
}

/**
 * AOSP fb_perform_format for one partition (slot already resolved). Reads
 * partition-type and partition-size (overridable), generates the filesystem
 * and flashes it. Returns false when the type has no generator and
 * `skipIfNotSupported` (the -w case); otherwise such a type is an error.
 */
export async function formatPartition(
  client: FastbootClient,
  name: string,
  o: FormatOptions & { typeOverride?: string; sizeOverride?: string; skipIfNotSupported?: boolean } = {},
): Promise<boolean> {
  let type = (await getvarOrUndefined(client, `partition-type:${name}`))?.trim();
  if (type === undefined) {
    if (o.skipIfNotSupported) return false;
    throw new BadInputError(`format ${name}: can't determine the partition type (getvar partition-type:${name} failed: no such partition?)`, { code: 'fastboot.format' });
  }
  if (o.typeOverride) {
    if (type !== o.typeOverride) o.onEvent?.({ type: 'warning', message: `${name} type is ${type}, but ${o.typeOverride} was requested for formatting` });
    type = o.typeOverride;
  }
  let sizeText = (await getvarOrUndefined(client, `partition-size:${name}`))?.trim();
  if (sizeText === undefined) {
    if (o.skipIfNotSupported) return false;
    throw new BadInputError(`format ${name}: unable to get the partition size`, { code: 'fastboot.format' });
  }
  if (o.sizeOverride) {
    if (sizeText !== o.sizeOverride) o.onEvent?.({ type: 'warning', message: `${name} size is ${sizeText}, but ${o.sizeOverride} was requested for formatting` });
    sizeText = o.sizeOverride;
  }
  if (!(FS_TYPES as readonly string[]).includes(type)) {
    if (o.skipIfNotSupported) return false;
    throw new BadInputError(`formatting is not supported for file system type '${type}' (miflash, like AOSP, makes ext4 and f2fs)`, { code: 'fastboot.format' });
  }
  const size = fixNumericVar(sizeText);
  if (size === undefined) throw new BadInputError(`format ${name}: couldn't parse partition size '${sizeText}'`, { code: 'fastboot.format' });
  const eraseBlockSize = await blockSizeVar(client, 'erase-block-size', o.onEvent);
  const logicalBlockSize = await blockSizeVar(client, 'logical-block-size', o.onEvent);
  const generated = await step(o.onEvent, `Creating ${type} filesystem for '${name}' (${Math.floor(size / (1024 * 1024))} MB)`, () =>
    generateFilesystem(type as FsType, size, {
      eraseBlockSize,
      logicalBlockSize,
      ...(o.fsOptions ? { fsOptions: o.fsOptions } : {}),
      ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
      ...(o.searchPath ? { searchPath: o.searchPath } : {}),
    }),
  );
  try {
    // As AOSP with its sparse image: sent whole unless it is larger than the limit, then resparsed at min(limit, 1 GiB).
    const whole = splitImage(generated.path, generated.image, 0xffffffff);
    const limit = o.sparseLimit !== undefined && o.sparseLimit > 0 ? o.sparseLimit : await deviceSparseLimit(client, o.onEvent);
    const fileSize = whole.pieces[0]!.size;
    const prepared = limit > 0 && fileSize > limit ? splitImage(generated.path, generated.image, Math.min(limit, RESPARSE_LIMIT)) : whole;
    await sendPieces(client, name, prepared, { ...(o.onEvent ? { onEvent: o.onEvent } : {}), ...(o.signal ? { signal: o.signal } : {}), split: prepared !== whole });
  } finally {
    await generated.cleanup();
  }
  return true;
}

/** AOSP WipeTask for one partition: skipped without a partition-type; erase, then format when the type allows. */
export async function wipePartition(client: FastbootClient, partition: string, o: FormatOptions = {}): Promise<WipeResult | undefined> {
  const type = (await getvarOrUndefined(client, `partition-type:${partition}`))?.trim();
  if (type === undefined || type === '') return undefined; // no such partition (AOSP skips it too)
  const tool = (FS_TYPES as readonly string[]).includes(type) ? await findGenerator(type, o.searchPath) : undefined;
  await step(o.onEvent, `Erasing '${partition}'`, () => client.erase(partition));
  if ((FS_TYPES as readonly string[]).includes(type) && !tool) return { partition, outcome: 'no-tool', type };
  const formatted = await formatPartition(client, partition, { ...o, typeOverride: type, skipIfNotSupported: true });
  return { partition, outcome: formatted ? 'formatted' : 'erased', type };
}

/** `-w`: userdata, cache and metadata where they exist. */
export async function wipeUserData(client: FastbootClient, onEvent?: EventSink, o: FormatOptions = {}): Promise<WipeResult[]> {
  const out: WipeResult[] = [];
  for (const p of WIPE_PARTITIONS) {
    const r = await wipePartition(client, p, { ...o, ...(onEvent ? { onEvent } : {}) });
    if (r) out.push(r);
  }
  return out;
}

/** `format[:FS_TYPE[:SIZE]] PARTITION` (slot resolved as AOSP does, forced). Returns the partitions formatted. */
export async function formatCommand(
  client: FastbootClient,
  partition: string,
  o: FormatOptions & { fsType?: string; size?: string; slot?: string } = {},
): Promise<string[]> {
  if (o.fsType && !(FS_TYPES as readonly string[]).includes(o.fsType)) {
    throw new BadInputError(`format:${o.fsType}: formatting is only supported for ext4 and f2fs`, { code: 'fastboot.format' });
  }
  if (o.size !== undefined && o.size !== '' && fixNumericVar(o.size) === undefined) throw new BadInputError(`format: size '${o.size}' is not a number`);
  // A generator that is not installed is found out before anything is written.
  if (o.fsType && !(await findGenerator(o.fsType, o.searchPath))) throw missingToolError(o.fsType as FsType);
  const slot = await resolveSlotOption(client, o.slot);
  const done: string[] = [];
  await forEachPartition(
    client,
    partition,
    slot,
    async (name) => {
      if (!o.fsType) {
        const type = (await getvarOrUndefined(client, `partition-type:${name}`))?.trim();
        if (type && (FS_TYPES as readonly string[]).includes(type) && !(await findGenerator(type, o.searchPath))) throw missingToolError(type as FsType);
      }
      await formatPartition(client, name, { ...o, ...(o.fsType ? { typeOverride: o.fsType } : {}), ...(o.size ? { sizeOverride: o.size } : {}) });
      done.push(name);
    },
    { forceSlot: true, ...(o.onEvent ? { onEvent: o.onEvent } : {}) },
  );
  return done;
}

/** The honest note after a wipe that could not format everything (undefined when every partition got a filesystem). */
export function wipeNote(results: WipeResult[], what: string): string | undefined {
  if (results.length === 0) return `${what}: none of ${WIPE_PARTITIONS.join(', ')} exists on the device; nothing was erased`;
  const bare = results.filter((r) => r.outcome !== 'formatted');
  if (bare.length === 0) return undefined;
  const noTool = bare.filter((r) => r.outcome === 'no-tool');
  const names = bare.map((r) => r.partition);
  const recreated = names.filter((p) => RECREATED_BY_ANDROID.test(p));
  const others = names.filter((p) => !RECREATED_BY_ANDROID.test(p));
  const why =
    noTool.length > 0
      ? `the host has no ${[...new Set(noTool.map((r) => (r.type === 'ext4' ? 'mke2fs (e2fsprogs)' : 'mkfs.f2fs (f2fs-tools)')))].join(' or ')} to build the filesystem`
      : `miflash makes no ${[...new Set(bare.map((r) => r.type))].join('/')} filesystems`;
  return [
    `${what}: ${names.join(', ')} erased, not formatted (${why})`,
    recreated.length > 0 ? `Android creates the filesystem on ${recreated.join(', ')} itself on the next boot (it formats an empty data partition), so that boot takes longer` : '',
    others.length > 0 ? `${others.join(', ')} ${others.length > 1 ? 'are' : 'is'} left empty with no filesystem` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
