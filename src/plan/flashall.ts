// The AOSP client's flashall / update task list (fastboot v35 FlashAllTool),
// as pure data: which images are flashed in which order, where update-super
// goes, which logical partitions are first shrunk to 0, and the slots. Built
// at run time, once the device's current and secondary slots are known; the
// executor is src/plan/update-zip.ts.
//
// Without fastboot-info.txt (or with --disable-fastboot-info): boot-critical
// images in table order, then update-super (which reboots into fastbootd when
// the zip has super_empty.img), then the OS images in table order; every
// flash of a dynamic partition is preceded, at the first one, by
// resize-logical-partition to 0 of all of them (AddResizeTasks). With
// fastboot-info.txt (version ≤ 1): its lines in order, `if-wipe` lines only
// with -w, then the same resize tasks. miflash never takes the "optimized
// super" path (one `flash super` from the bootloader): it behaves as AOSP with
// --disable-super-optimization, and the image-list path cannot be optimized
// in AOSP either.
import { BadInputError } from '../errors.js';

export interface FlashAllImage {
  /** File name in the zip / product folder. */
  image: string;
  partition: string;
  /** *_other.img: flashed to the secondary slot (AOSP: nickname empty). */
  secondary: boolean;
  type: 'boot-critical' | 'normal' | 'extra';
  /** AOSP optional_if_no_image; android-info.txt `require partition-exists=` clears it. */
  optional: boolean;
}

const img = (partition: string, type: FlashAllImage['type'], o: { image?: string; secondary?: boolean; required?: boolean } = {}): FlashAllImage => ({
  image: o.image ?? `${partition}.img`,
  partition,
  secondary: Boolean(o.secondary),
  type,
  optional: !o.required,
});

/** fastboot v35 `images[]`, in table order. */
export const FLASHALL_IMAGES: readonly FlashAllImage[] = [
  img('boot', 'boot-critical', { required: true }),
  img('bootloader', 'extra'),
  img('init_boot', 'boot-critical'),
  img('boot', 'normal', { image: 'boot_other.img', secondary: true }),
  img('cache', 'extra'),
  img('dtbo', 'boot-critical'),
  img('dts', 'boot-critical', { image: 'dt.img' }),
  img('odm', 'normal'),
  img('odm_dlkm', 'normal'),
  img('product', 'normal'),
  img('pvmfw', 'boot-critical'),
  img('radio', 'extra'),
  img('recovery', 'boot-critical'),
  img('super', 'extra'),
  img('system', 'normal', { required: true }),
  img('system_dlkm', 'normal'),
  img('system_ext', 'normal'),
  img('system', 'normal', { image: 'system_other.img', secondary: true }),
  img('userdata', 'extra'),
  img('vbmeta', 'boot-critical'),
  img('vbmeta_system', 'boot-critical'),
  img('vbmeta_vendor', 'boot-critical'),
  img('vendor', 'normal'),
  img('vendor_boot', 'boot-critical'),
  img('vendor_dlkm', 'normal'),
  img('vendor_kernel_boot', 'boot-critical'),
  img('vendor', 'normal', { image: 'vendor_other.img', secondary: true }),
];

export type FlashAllTask =
  /** slot: '' = current, a letter, or 'all'. */
  | { kind: 'flash'; partition: string; image: string; slot: string; applyVbmeta: boolean }
  | { kind: 'update-super' }
  | { kind: 'resize'; partition: string; size: '0'; slot: string }
  | { kind: 'reboot'; target: string }
  /** fastboot-info `erase PART`: AOSP WipeTask (erase, then format when it can). */
  | { kind: 'wipe'; partition: string };

/** AOSP is_vbmeta_partition. */
export function isVbmetaPartition(p: string): boolean {
  return p.endsWith('vbmeta') || p.endsWith('vbmeta_a') || p.endsWith('vbmeta_b');
}

export interface DynamicPartition {
  name: string;
  /** LP_PARTITION_ATTR_SLOT_SUFFIXED: the name matches with _a and _b (retrofit devices). */
  slotSuffixed: boolean;
}

/** AOSP should_flash_in_userspace: is this partition name (slot included) one of super_empty.img's? */
export function shouldFlashInUserspace(dynamic: readonly DynamicPartition[] | undefined, name: string): boolean {
  if (!dynamic) return false;
  return dynamic.some((p) => (p.slotSuffixed ? name === `${p.name}_a` || name === `${p.name}_b` : name === p.name));
}

export interface CollectOptions {
  /** --slot (already resolved: '', a letter, or 'all'). */
  slotOverride: string;
  /** '' when there is none (no A/B, or --skip-secondary). */
  secondarySlot: string;
  skipSecondary: boolean;
  /** The device's current slot ('' = none), for AOSP GetPartitionAndSlot. */
  currentSlot: string;
  wantsWipe: boolean;
  /** Image names present in the source. */
  has: (image: string) => boolean;
  /** Partitions that android-info.txt requires (partition-exists): their images stop being optional. */
  required?: readonly string[];
  /** super_empty.img's partitions (undefined when the source has no super_empty.img). */
  dynamic?: readonly DynamicPartition[];
  /** fastboot-info.txt lines, when it is used. */
  fastbootInfo?: string[];
  /** --exclude-dynamic-partitions: keep only flashes of partitions super_empty.img does not list. */
  excludeDynamic?: boolean;
}

/** AOSP FlashTask::GetPartitionAndSlot. */
function partitionAndSlot(t: { partition: string; slot: string }, currentSlot: string): string {
  const slot = t.slot === '' ? currentSlot : t.slot;
  if (slot === '') return t.partition;
  if (slot === 'all') throw new BadInputError(`cannot name one partition for ${t.partition} with --slot all`);
  return `${t.partition}_${slot}`;
}

export function collectTasks(o: CollectOptions): FlashAllTask[] {
  const tasks = o.fastbootInfo ? parseFastbootInfo(o.fastbootInfo, o) : tasksFromImageList(o);
  addResizeTasks(tasks, o);
  return o.excludeDynamic ? staticFlashesOnly(tasks, o) : tasks;
}

/**
 * v35 CollectTasks with --exclude-dynamic-partitions: every task that is not a
 * flash of a partition the bootloader can write goes — update-super, the
 * resizes, reboots and erases of fastboot-info.txt, and the flashes of
 * super_empty.img's partitions. Without super_empty.img every flash stays.
 * (With --slot all AOSP aborts naming a partition; partitionAndSlot refuses.)
 */
function staticFlashesOnly(tasks: FlashAllTask[], o: CollectOptions): FlashAllTask[] {
  return tasks.filter((t) => t.kind === 'flash' && !shouldFlashInUserspace(o.dynamic, partitionAndSlot(t, o.currentSlot)));
}

function tasksFromImageList(o: CollectOptions): FlashAllTask[] {
  const boot: FlashAllTask[] = [];
  const os: FlashAllTask[] = [];
  for (const i of FLASHALL_IMAGES) {
    if (i.type === 'extra') continue;
    if (i.secondary && o.skipSecondary) continue;
    const optional = i.optional && !(o.required ?? []).includes(i.partition);
    if (!o.has(i.image)) {
      if (optional) continue;
      throw new BadInputError(`${i.image} is missing (fastboot update requires it)`, { code: 'rom.image-missing', hint: 'nothing has been written to the device' });
    }
    const task: FlashAllTask = { kind: 'flash', partition: i.partition, image: i.image, slot: i.secondary ? o.secondarySlot : o.slotOverride, applyVbmeta: isVbmetaPartition(i.partition) };
    (i.type === 'boot-critical' ? boot : os).push(task);
  }
  return [...boot, { kind: 'update-super' }, ...os];
}

/** AOSP AddResizeTasks: resize every dynamic partition being flashed to 0, just before the first of those flashes. */
function addResizeTasks(tasks: FlashAllTask[], o: CollectOptions): void {
  if (!o.dynamic) return;
  let at = -1;
  const resizes: FlashAllTask[] = [];
  tasks.forEach((t, i) => {
    if (t.kind !== 'flash' || !shouldFlashInUserspace(o.dynamic, partitionAndSlot(t, o.currentSlot))) return;
    if (at < 0) at = i;
    resizes.push({ kind: 'resize', partition: t.partition, size: '0', slot: o.slotOverride });
  });
  if (at >= 0) tasks.splice(at, 0, ...resizes);
}

/** fastboot-info.txt format version this parser understands (AOSP FASTBOOT_INFO_VERSION). */
export const FASTBOOT_INFO_VERSION = 1;

/** AOSP ParseFastbootInfo: one task per line, `#` comments, `version N`, `if-wipe CMD`. Errors name the line. */
export function parseFastbootInfo(lines: string[], o: Pick<CollectOptions, 'slotOverride' | 'secondarySlot' | 'wantsWipe'>): FlashAllTask[] {
  const tasks: FlashAllTask[] = [];
  lines.forEach((text, index) => {
    const where = `fastboot-info.txt line ${index + 1}`;
    let words = text.split(' ').filter((w) => w !== '');
    if (words.length === 0 || words[0]!.startsWith('#')) return;
    if (words.length > 1 && words[0] === 'version') {
      if (words.length !== 2 || !/^\d+$/.test(words[1]!)) throw new BadInputError(`${where}: bad version line '${text}'`, { code: 'rom.fastboot-info' });
      if (Number(words[1]) > FASTBOOT_INFO_VERSION) {
        throw new BadInputError(`${where}: fastboot-info.txt version ${words[1]} is newer than the ${FASTBOOT_INFO_VERSION} miflash understands`, { code: 'rom.fastboot-info' });
      }
      return;
    }
    if (words.length >= 2 && words[0] === 'if-wipe') {
      if (!o.wantsWipe) return;
      words = words.slice(1);
    }
    const [cmd, ...args] = words;
    const bad = () => new BadInputError(`${where}: cannot read '${text}'`, { code: 'rom.fastboot-info', hint: 'nothing has been written to the device' });
    if (cmd === 'flash') {
      let applyVbmeta = false;
      let slot = o.slotOverride;
      let partition = '';
      let image = '';
      for (const a of args) {
        if (a === '--apply-vbmeta') applyVbmeta = true;
        else if (a === '--slot-other') slot = o.secondarySlot;
        else if (partition === '') partition = a;
        else if (image === '') image = a;
        else throw bad();
      }
      if (partition === '') throw bad();
      tasks.push({ kind: 'flash', partition, image: image || `${partition}.img`, slot, applyVbmeta });
    } else if (cmd === 'reboot') {
      if (args.length > 1) throw bad();
      tasks.push({ kind: 'reboot', target: args[0] ?? '' });
    } else if (cmd === 'update-super' && args.length === 0) {
      tasks.push({ kind: 'update-super' });
    } else if (cmd === 'erase' && args.length === 1) {
      tasks.push({ kind: 'wipe', partition: args[0]! });
    } else {
      throw bad();
    }
  });
  return tasks;
}
