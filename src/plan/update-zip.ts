// `fastboot update image-*.zip` (Google factory images), AOSP flashall style
// (fastboot v35 FlashAllTool, task list in flashall.ts):
//  - phase 1 (host only): list the zip; read super_empty.img (dynamic
//    partitions) and fastboot-info.txt when present; require boot.img,
//    system.img and every partition-exists image; stream every image once to
//    check the zip CRC-32 and, for sparse images, their structure;
//  - phase 2: on an A/B device set the slot active (AOSP does, so the right
//    recovery boots), work out the secondary slot, cancel a pending snapshot
//    merge, then run the task list: boot-critical images, update-super (into
//    fastbootd when the zip has super_empty.img), logical partitions shrunk to
//    0, then the OS images, each extracted to a temp file first (streamed,
//    bounded memory) so flashImage splits it exactly like AOSP. The caller
//    does --set-active, -w and the final reboot.
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, BadInputError, DeviceFailError } from '../errors.js';
import { step, type EventSink } from '../fastboot/events.js';
import { flashImage } from '../fastboot/flash-image.js';
import type { DeviceLink } from '../fastboot/link.js';
import { resizeLogicalPartition } from '../fastboot/logical.js';
import { currentSlot, getvarOrUndefined, resolveSlotOption, slotCount } from '../fastboot/slots.js';
import { bufferReader, LP_PARTITION_ATTR_SLOT_SUFFIXED, LpFormatError, readEmptyImage } from '../lp/index.js';
import { collectTasks, FLASHALL_IMAGES, shouldFlashInUserspace, type DynamicPartition, type FlashAllImage, type FlashAllTask } from './flashall.js';
import { openImageSource, openZip, type ImageSource } from './image-source.js';
import { wipePartition } from './wipe.js';

export { StreamCheck } from './image-source.js';

export const SUPER_EMPTY = 'super_empty.img';
export const FASTBOOT_INFO = 'fastboot-info.txt';

export interface ZipEntryInfo {
  name: string;
  size: number;
  compressedSize: number;
  crc32: number;
}

/** The zip's central directory (names, sizes, CRCs; nothing is decompressed), or a product folder's files (CRC 0). */
export async function listZip(zipPath: string, label = zipPath): Promise<Map<string, ZipEntryInfo>> {
  if ((await stat(zipPath).catch(() => undefined))?.isDirectory()) {
    const src = await openImageSource(zipPath, label);
    return new Map([...src.sizes].map(([n, size]) => [n, { name: n, size, compressedSize: size, crc32: 0 }]));
  }
  const { zip, entries } = await openZip(zipPath, label);
  zip.close();
  return entryInfo(entries);
}

function entryInfo(entries: Map<string, import('yauzl').Entry>): Map<string, ZipEntryInfo> {
  return new Map([...entries].map(([n, e]) => [n, { name: n, size: e.uncompressedSize, compressedSize: e.compressedSize, crc32: e.crc32 }]));
}

export interface PlannedImage {
  image: string;
  partition: string;
  size: number;
}

/** The images of the zip an update may flash (AOSP's table, secondaries included; fastboot-info.txt may name more), in table order. */
export function imagesInZip(entries: ReadonlyMap<string, { size: number }>): PlannedImage[] {
  const seen = new Set<string>();
  return FLASHALL_IMAGES.flatMap((i: FlashAllImage) => {
    const e = entries.get(i.image);
    if (i.type === 'extra' || !e || seen.has(i.image)) return [];
    seen.add(i.image);
    return [{ image: i.image, partition: i.partition, size: e.size }];
  });
}

export interface UpdateZipCheck {
  /** Relative to the ROM root. */
  file: string;
  images: Array<PlannedImage & { sparse: boolean }>;
  /** super_empty.img's partitions: the update reboots into fastbootd for update-super. */
  dynamic?: DynamicPartition[];
  /** fastboot-info.txt drives the task list. */
  fastbootInfo?: string[];
}

export interface CheckUpdateZipOptions {
  /** Partitions android-info.txt requires with `partition-exists` (their images become mandatory, as in AOSP). */
  requiredPartitions?: string[];
  onProgress?: (p: { file: string; done: number; total: number }) => void;
  /** Where images will be extracted (free-space check); default os.tmpdir(). */
  tmpDir?: string;
  /** --disable-fastboot-info: use the image table even when the zip has fastboot-info.txt. */
  disableFastbootInfo?: boolean;
  /** --exclude-dynamic-partitions: only the images of partitions outside super are needed (and checked). */
  excludeDynamic?: boolean;
}

/** Phase 1: everything about the zip (or product folder) that can be checked without the device. Throws BadInputError naming the entry. */
export async function checkUpdateZip(zipPath: string, file: string, opts: CheckUpdateZipOptions = {}): Promise<UpdateZipCheck> {
  const src = await openImageSource(zipPath, file);
  try {
    const refuse = (why: string, code = 'rom.update-zip') =>
      new BadInputError(`${file}: ${why}`, { code, hint: 'nothing has been written to the device' });
    const { dynamic, fastbootInfo } = await readControlFiles(src, Boolean(opts.disableFastbootInfo));
    for (const p of opts.requiredPartitions ?? []) {
      const known = FLASHALL_IMAGES.find((i) => i.partition === p && !i.secondary);
      if (!known) throw refuse(`android-info.txt requires partition ${p}, which fastboot update does not know how to flash`);
      if (!src.sizes.has(known.image)) throw refuse(`android-info.txt requires partition ${p} but ${known.image} is not in the zip`, 'rom.image-missing');
    }
    // Which images the task list will flash, whatever the device's slots: a missing required one stops us now.
    const names = new Set<string>();
    try {
      for (const wipe of [false, true]) {
        const tasks = collectTasks({
          slotOverride: '',
          secondarySlot: 'b',
          skipSecondary: false,
          currentSlot: 'a',
          wantsWipe: wipe,
          has: (n) => src.sizes.has(n),
          required: opts.requiredPartitions ?? [],
          ...(dynamic ? { dynamic } : {}),
          ...(fastbootInfo ? { fastbootInfo } : {}),
          ...(opts.excludeDynamic ? { excludeDynamic: true } : {}),
        });
        for (const t of tasks) if (t.kind === 'flash') names.add(t.image);
        checkRebootTasks(tasks, file);
      }
    } catch (err) {
      if (err instanceof BadInputError) throw refuse(err.message, err.code);
      throw err;
    }
    for (const n of names) if (!src.sizes.has(n)) throw refuse(`${n} is missing (${fastbootInfo ? 'fastboot-info.txt names it' : 'fastboot update requires it'})`, 'rom.image-missing');
    const listed = imagesInZip(new Map([...src.sizes].map(([n, size]) => [n, { size }])));
    const extra = [...names].filter((n) => !listed.some((i) => i.image === n)).map((n) => ({ image: n, partition: n.replace(/\.img$/, ''), size: src.sizes.get(n)! }));
    // --exclude-dynamic-partitions: the images left out are neither flashed nor read.
    const list = [...listed, ...extra].filter((i) => !opts.excludeDynamic || names.has(i.image));
    if (src.extracts) await checkFreeSpace(opts.tmpDir ?? tmpdir(), Math.max(0, ...list.map((i) => i.size)), file);
    const images: UpdateZipCheck['images'] = [];
    for (const i of list) {
      const name = `${file}/${i.image}`;
      const sparse = await src.check(i.image, (done) => opts.onProgress?.({ file: name, done, total: i.size }));
      images.push({ ...i, sparse });
    }
    return { file, images, ...(dynamic ? { dynamic } : {}), ...(fastbootInfo ? { fastbootInfo } : {}) };
  } finally {
    src.close();
  }
}

/** super_empty.img (read with the LP library) and fastboot-info.txt, when present. */
async function readControlFiles(src: ImageSource, disableFastbootInfo: boolean): Promise<{ dynamic?: DynamicPartition[]; fastbootInfo?: string[] }> {
  const out: { dynamic?: DynamicPartition[]; fastbootInfo?: string[] } = {};
  if (src.sizes.has(SUPER_EMPTY)) out.dynamic = parseDynamicPartitions(await src.readSmall(SUPER_EMPTY), `${src.label}/${SUPER_EMPTY}`);
  if (src.sizes.has(FASTBOOT_INFO) && !disableFastbootInfo) out.fastbootInfo = (await src.readSmall(FASTBOOT_INFO)).toString('utf8').split('\n');
  return out;
}

/** A reboot out of fastboot (Android, recovery) with more tasks after it would strand them: refused before anything is sent. */
function checkRebootTasks(tasks: FlashAllTask[], file: string): void {
  tasks.forEach((t, i) => {
    if (t.kind !== 'reboot' || t.target === 'fastboot' || t.target === 'bootloader' || i === tasks.length - 1) return;
    throw new BadInputError(`${file}: fastboot-info.txt reboots into ${t.target || 'Android'} with more tasks after it; miflash cannot follow the device there`, { code: 'rom.fastboot-info' });
  });
}

/** super_empty.img's partition names (an invalid image is refused before anything is sent). */
function parseDynamicPartitions(data: Buffer, name: string): DynamicPartition[] {
  try {
    const m = readEmptyImage(bufferReader(data), name);
    return m.partitions.map((p) => ({ name: p.name, slotSuffixed: (p.attributes & LP_PARTITION_ATTR_SLOT_SUFFIXED) !== 0 }));
  } catch (err) {
    if (err instanceof LpFormatError) throw new BadInputError(`${name}: not a valid super_empty image: ${err.message}`, { code: 'rom.image-invalid', hint: 'nothing has been written to the device' });
    throw err;
  }
}

async function checkFreeSpace(dir: string, need: number, file: string): Promise<void> {
  let free: number;
  try {
    const st = await statfs(dir);
    free = st.bavail * st.bsize;
  } catch {
    return; // cannot tell: the extraction itself will report ENOSPC
  }
  if (free < need) {
    throw new BadInputError(`${file}: the largest image needs ${need} bytes of temporary space in ${dir}, only ${free} are free`, {
      code: 'host.no-space',
      hint: 'free some disk space or point TMPDIR at a larger disk; nothing has been written to the device',
    });
  }
}

export interface RunUpdateOptions {
  onEvent?: EventSink;
  signal?: AbortSignal;
  sparseLimit?: number;
  /** Directory for extracted images (default: a fresh one under os.tmpdir()). */
  tmpDir?: string;
  /** -w: update-super gets ":wipe", fastboot-info `if-wipe` lines run. (The caller wipes userdata afterwards.) */
  wipe?: boolean;
  /** --slot a|b|all|other (default: the current slot). */
  slot?: string;
  /** --skip-secondary: no *_other images. */
  skipSecondary?: boolean;
  /** --force: flash a dynamic partition from the bootloader when told to. */
  force?: boolean;
  disableFastbootInfo?: boolean;
  /** --exclude-dynamic-partitions (v35): flash only what the bootloader can; no update-super, resizes or reboots into fastbootd. */
  excludeDynamicPartitions?: boolean;
  /** Partitions android-info.txt requires (partition-exists). */
  requiredPartitions?: string[];
}

/** Phase 2 of an update: slots, snapshot cancel and the task list, in AOSP flashall order. Returns the partitions written. */
export async function runUpdate(link: DeviceLink, zipPath: string, file: string, opts: RunUpdateOptions = {}): Promise<string[]> {
  const src = await openImageSource(zipPath, file);
  const tmp = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'miflash-update-'));
  const written: string[] = [];
  const ev = opts.onEvent;
  try {
    const override = opts.slot ? await resolveSlotOption(link.client, opts.slot) : '';
    // AOSP set_active: on an A/B device make the slot being flashed active first, so the matching recovery / fastbootd boots.
    if ((await slotCount(link.client)) >= 2) {
      const target = override === 'all' ? 'a' : override !== '' ? override : await currentSlot(link.client);
      if (target !== '') await step(ev, `Setting current slot to '${target}'`, () => link.client.setActive(target));
    }
    // AOSP DetermineSlot: the secondary slot gets the *_other images.
    let skipSecondary = Boolean(opts.skipSecondary);
    let secondary = '';
    if (!skipSecondary) {
      secondary = await otherSlot(link, override !== '' && override !== 'all' ? override : undefined);
      if (secondary === '') {
        if ((await slotCount(link.client)) >= 2) ev?.({ type: 'warning', message: 'could not determine the slot for secondary images; they are skipped' });
        skipSecondary = true;
      }
    }
    // As AOSP: a pending Virtual A/B merge would fight the new images; cancel it first.
    const merge = (await getvarOrUndefined(link.client, 'snapshot-update-status'))?.trim();
    if (merge !== undefined && merge !== '' && merge !== 'none') {
      await step(ev, `Snapshot cancel (status: ${merge})`, () => link.client.command('snapshot-update:cancel'));
    }
    const { dynamic, fastbootInfo } = await readControlFiles(src, Boolean(opts.disableFastbootInfo));
    const tasks = collectTasks({
      slotOverride: override,
      secondarySlot: secondary,
      skipSecondary,
      currentSlot: await currentSlot(link.client),
      wantsWipe: Boolean(opts.wipe),
      has: (n) => src.sizes.has(n),
      required: opts.requiredPartitions ?? [],
      ...(dynamic ? { dynamic } : {}),
      ...(fastbootInfo ? { fastbootInfo } : {}),
      ...(opts.excludeDynamicPartitions ? { excludeDynamic: true } : {}),
    });
    const extract = async (image: string): Promise<{ path: string; release(): Promise<void> }> => {
      if (opts.signal?.aborted) throw new AbortedError(`aborted before flashing ${image}`);
      if (!src.extracts) return src.materialize(image, tmp, opts.signal);
      const mb = Math.floor((src.sizes.get(image) ?? 0) / (1024 * 1024));
      return step(ev, `Extracting ${image} (${mb} MB) to disk`, () => src.materialize(image, tmp, opts.signal));
    };
    for (const t of tasks) {
      if (opts.signal?.aborted) throw new AbortedError('aborted by the user');
      switch (t.kind) {
        case 'flash': {
          const image = await extract(t.image);
          written.push(
            ...(await flashImage(link.client, t.partition, image.path, {
              ...(opts.sparseLimit !== undefined ? { sparseLimit: opts.sparseLimit } : {}),
              ...(t.slot !== '' ? { slot: t.slot } : {}),
              ...(ev ? { onEvent: ev } : {}),
              ...(opts.signal ? { signal: opts.signal } : {}),
              // v35 FlashTask → flash_buf → copy_avb_footer, for update too: never for a partition super_empty.img
              // lists (nor a logical or a split / sparse one: flashImage checks those).
              copyAvbFooter: (name) => !shouldFlashInUserspace(dynamic, name),
              beforeEach: async (name) => {
                // AOSP FlashTask: a dynamic partition is only flashed from fastbootd, unless --force.
                if (shouldFlashInUserspace(dynamic, name) && !(await link.isUserspace()) && !opts.force) {
                  throw new DeviceFailError(`${name} is a dynamic partition and must be flashed from fastbootd, but the device is in the bootloader`, {
                    code: 'fastboot.needs-fastbootd',
                    hint: 'run `miflash reboot fastboot` and try again; to overwrite a fixed partition of that name on purpose, use --force',
                  });
                }
              },
            })),
          );
          await image.release();
          break;
        }
        case 'update-super':
          if (!dynamic) break;
          await updateSuper(link, await src.readSmall(SUPER_EMPTY), Boolean(opts.wipe), ev);
          break;
        case 'resize':
          await resizeLogicalPartition(link.client, t.partition, t.size, { ...(t.slot !== '' ? { slot: t.slot } : {}), ...(ev ? { onEvent: ev } : {}) });
          break;
        case 'reboot':
          if (t.target === 'fastboot') {
            if (!(await link.isUserspace())) await link.rebootToUserspace();
          } else if (t.target === 'bootloader') {
            await link.rebootToBootloader();
          } else {
            await step(ev, t.target ? `Rebooting into ${t.target}` : 'Rebooting', () => link.client.reboot(t.target === 'recovery' ? 'recovery' : undefined));
          }
          break;
        case 'wipe':
          await wipePartition(link.client, t.partition, { ...(ev ? { onEvent: ev } : {}), ...(opts.sparseLimit !== undefined ? { sparseLimit: opts.sparseLimit } : {}) });
          break;
      }
    }
  } finally {
    src.close();
    await rm(tmp, { recursive: true, force: true });
  }
  return written;
}

/** AOSP get_other_slot: the slot after `from` (default: the current one), '' without slots. */
async function otherSlot(link: DeviceLink, from?: string): Promise<string> {
  const count = await slotCount(link.client);
  if (count === 0) return '';
  const cur = from ?? (await currentSlot(link.client));
  if (cur.length !== 1) return '';
  return String.fromCharCode('a'.charCodeAt(0) + ((cur.charCodeAt(0) - 'a'.charCodeAt(0) + 1) % count));
}

/** AOSP UpdateSuperTask: into fastbootd if needed, download super_empty.img, update-super:SUPER[:wipe]. */
async function updateSuper(link: DeviceLink, data: Buffer, wipe: boolean, ev?: EventSink): Promise<void> {
  if (!(await link.isUserspace())) await link.rebootToUserspace();
  const name = (await getvarOrUndefined(link.client, 'super-partition-name'))?.trim() || 'super';
  await step(ev, `Sending '${name}' (${Math.floor(data.length / 1024)} KB)`, () => link.client.download(data), data.length);
  await step(ev, 'Updating super partition', () => link.client.command(`update-super:${name}${wipe ? ':wipe' : ''}`));
}
