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
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, BadInputError, DeviceFailError } from '../errors.js';
import { step, type EventSink } from '../fastboot/events.js';
import { flashImage } from '../fastboot/flash-image.js';
import type { DeviceLink } from '../fastboot/link.js';
import { resizeLogicalPartition } from '../fastboot/logical.js';
import { currentSlot, getvarOrUndefined, resolveSlotOption, slotCount } from '../fastboot/slots.js';
import { bufferReader, LP_PARTITION_ATTR_SLOT_SUFFIXED, LpFormatError, readEmptyImage } from '../lp/index.js';
import { collectTasks, FLASHALL_IMAGES, shouldFlashInUserspace, type DynamicPartition, type FlashAllImage, type FlashAllTask } from './flashall.js';
import { wipePartition } from './wipe.js';
import { crc32 } from '../rom/hash.js';
import { isSparse, parseSparseSteps, SparseFormatError, type ReadRequest } from '../sparse/index.js';

export const SUPER_EMPTY = 'super_empty.img';
export const FASTBOOT_INFO = 'fastboot-info.txt';

export interface ZipEntryInfo {
  name: string;
  size: number;
  compressedSize: number;
  crc32: number;
}

type YauzlZip = import('yauzl').ZipFile;
type YauzlEntry = import('yauzl').Entry;

async function openZip(zipPath: string, label: string): Promise<{ zip: YauzlZip; entries: Map<string, YauzlEntry> }> {
  const yauzl = (await import('yauzl')).default;
  let zip: YauzlZip;
  try {
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false });
  } catch (err) {
    throw new BadInputError(`${label}: not a readable zip (${(err as Error).message})`, { code: 'rom.archive-corrupt', hint: 're-download the factory image; nothing has been written to the device' });
  }
  const entries = new Map<string, YauzlEntry>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (e: YauzlEntry) => {
        entries.set(e.fileName, e);
        zip.readEntry();
      });
      zip.once('end', () => resolve());
      zip.once('error', reject);
      zip.readEntry();
    });
  } catch (err) {
    zip.close();
    throw new BadInputError(`${label}: corrupt zip directory (${(err as Error).message})`, { code: 'rom.archive-corrupt' });
  }
  return { zip, entries };
}

/** The zip's central directory (names, sizes, CRCs); nothing is decompressed. */
export async function listZip(zipPath: string, label = zipPath): Promise<Map<string, ZipEntryInfo>> {
  const { zip, entries } = await openZip(zipPath, label);
  zip.close();
  return entryInfo(entries);
}

function entryInfo(entries: Map<string, YauzlEntry>): Map<string, ZipEntryInfo> {
  return new Map([...entries].map(([n, e]) => [n, { name: n, size: e.uncompressedSize, compressedSize: e.compressedSize, crc32: e.crc32 }]));
}

export interface PlannedImage {
  image: string;
  partition: string;
  size: number;
}

/** The images of the zip an update may flash (AOSP's table, secondaries included; fastboot-info.txt may name more), in table order. */
export function imagesInZip(entries: Map<string, ZipEntryInfo>): PlannedImage[] {
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
}

/** Phase 1: everything about the zip that can be checked without the device. Throws BadInputError naming the entry. */
export async function checkUpdateZip(zipPath: string, file: string, opts: CheckUpdateZipOptions = {}): Promise<UpdateZipCheck> {
  const { zip, entries } = await openZip(zipPath, file);
  try {
    const refuse = (why: string, code = 'rom.update-zip') =>
      new BadInputError(`${file}: ${why}`, { code, hint: 'nothing has been written to the device' });
    const dynamic = entries.has(SUPER_EMPTY) ? await readDynamicPartitions(zip, entries.get(SUPER_EMPTY)!, `${file}/${SUPER_EMPTY}`) : undefined;
    const fastbootInfo =
      entries.has(FASTBOOT_INFO) && !opts.disableFastbootInfo ? (await readSmallEntry(zip, entries.get(FASTBOOT_INFO)!, `${file}/${FASTBOOT_INFO}`)).toString('utf8').split('\n') : undefined;
    for (const p of opts.requiredPartitions ?? []) {
      const known = FLASHALL_IMAGES.find((i) => i.partition === p && !i.secondary);
      if (!known) throw refuse(`android-info.txt requires partition ${p}, which fastboot update does not know how to flash`);
      if (!entries.has(known.image)) throw refuse(`android-info.txt requires partition ${p} but ${known.image} is not in the zip`, 'rom.image-missing');
    }
    // Which images the task list will flash, whatever the device's slots: a missing required one stops us now.
    const names = new Set<string>();
    const has = (n: string) => entries.has(n);
    try {
      for (const wipe of [false, true]) {
        const tasks = collectTasks({
          slotOverride: '',
          secondarySlot: 'b',
          skipSecondary: false,
          currentSlot: 'a',
          wantsWipe: wipe,
          has,
          required: opts.requiredPartitions ?? [],
          ...(dynamic ? { dynamic } : {}),
          ...(fastbootInfo ? { fastbootInfo } : {}),
        });
        for (const t of tasks) if (t.kind === 'flash') names.add(t.image);
        checkRebootTasks(tasks, file);
      }
    } catch (err) {
      if (err instanceof BadInputError) throw refuse(err.message, err.code);
      throw err;
    }
    for (const n of names) if (!entries.has(n)) throw refuse(`${n} is missing (${fastbootInfo ? 'fastboot-info.txt names it' : 'fastboot update requires it'})`, 'rom.image-missing');
    const listed = imagesInZip(entryInfo(entries));
    const extra = [...names].filter((n) => !listed.some((i) => i.image === n)).map((n) => ({ image: n, partition: n.replace(/\.img$/, ''), size: entries.get(n)!.uncompressedSize }));
    const list = [...listed, ...extra];
    const largest = Math.max(0, ...list.map((i) => i.size));
    await checkFreeSpace(opts.tmpDir ?? tmpdir(), largest, file);
    const images: UpdateZipCheck['images'] = [];
    for (const i of list) {
      const entry = entries.get(i.image)!;
      const name = `${file}/${i.image}`;
      const sink = new StreamCheck(name, entry.uncompressedSize);
      await pipeline(await openEntry(zip, entry, name), sink.transform((done) => opts.onProgress?.({ file: name, done, total: entry.uncompressedSize })), devNull());
      sink.finish(entry.crc32);
      images.push({ ...i, sparse: sink.sparse });
    }
    return { file, images, ...(dynamic ? { dynamic } : {}), ...(fastbootInfo ? { fastbootInfo } : {}) };
  } finally {
    zip.close();
  }
}

/** A reboot out of fastboot (Android, recovery) with more tasks after it would strand them: refused before anything is sent. */
function checkRebootTasks(tasks: FlashAllTask[], file: string): void {
  tasks.forEach((t, i) => {
    if (t.kind !== 'reboot' || t.target === 'fastboot' || t.target === 'bootloader' || i === tasks.length - 1) return;
    throw new BadInputError(`${file}: fastboot-info.txt reboots into ${t.target || 'Android'} with more tasks after it; miflash cannot follow the device there`, { code: 'rom.fastboot-info' });
  });
}

async function readSmallEntry(zip: YauzlZip, entry: YauzlEntry, name: string): Promise<Buffer> {
  if (entry.uncompressedSize > 64 * 1024 * 1024) throw new BadInputError(`${name}: ${entry.uncompressedSize} bytes is too large for a metadata file`, { code: 'rom.update-zip' });
  const chunks: Buffer[] = [];
  const check = new StreamCheck(name, entry.uncompressedSize);
  await pipeline(await openEntry(zip, entry, name), check.transform(() => {}), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
  check.finish(entry.crc32);
  return Buffer.concat(chunks);
}

/** super_empty.img's partition names, read with the LP library (an invalid one is refused before anything is sent). */
async function readDynamicPartitions(zip: YauzlZip, entry: YauzlEntry, name: string): Promise<DynamicPartition[]> {
  const data = await readSmallEntry(zip, entry, name);
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

function openEntry(zip: YauzlZip, entry: YauzlEntry, name: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) reject(new BadInputError(`${name}: cannot read from the zip (${err?.message ?? 'no stream'})`, { code: 'rom.archive-corrupt' }));
      else resolve(stream);
    });
  });
}

function devNull(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() });
}

/**
 * One pass over an entry's bytes: CRC-32 (against the zip directory), size,
 * and, when it starts with the sparse magic, the strict sparse parser fed
 * forward-only (it asks for headers in increasing offsets; raw data is skipped).
 */
export class StreamCheck {
  private crc = 0;
  private done = 0;
  sparse = false;
  private steps: Generator<ReadRequest, unknown, Uint8Array> | undefined;
  private want: ReadRequest | undefined;
  private got: Buffer[] = [];
  private gotLen = 0;
  private parsed = false;
  private decided = false;
  private readonly head: Buffer[] = [];

  constructor(
    private readonly name: string,
    private readonly size: number,
  ) {}

  transform(onBytes: (done: number) => void): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        try {
          this.feed(chunk);
          onBytes(this.done);
          cb(null, chunk);
        } catch (err) {
          cb(err as Error);
        }
      },
    });
  }

  private feed(chunk: Buffer): void {
    this.crc = crc32(chunk, this.crc);
    const at = this.done;
    this.done += chunk.length;
    if (this.decided) {
      if (this.steps) this.sparseFeed(chunk, at);
      return;
    }
    // Until 4 bytes are in, we cannot tell whether this is a sparse image.
    this.head.push(chunk);
    if (this.done < 4 && this.done < this.size) return;
    this.decided = true;
    const head = Buffer.concat(this.head);
    this.head.length = 0;
    if (!isSparse(head)) return;
    this.sparse = true;
    this.steps = parseSparseSteps(this.size) as Generator<ReadRequest, unknown, Uint8Array>;
    this.advance(undefined);
    this.sparseFeed(head, 0);
  }

  private advance(data: Uint8Array | undefined): void {
    try {
      const next = data === undefined ? this.steps!.next() : this.steps!.next(data);
      if (next.done) {
        this.parsed = true;
        this.want = undefined;
      } else {
        if (this.want && next.value.offset < this.want.offset + this.want.length) {
          throw new Error(`sparse parser read backwards (${next.value.offset})`);
        }
        this.want = next.value;
      }
    } catch (err) {
      if (err instanceof SparseFormatError) throw err.withPath(this.name);
      throw err;
    }
  }

  /** Hands the parser the byte ranges it asks for, out of the chunk at stream offset `at`. */
  private sparseFeed(chunk: Buffer, at: number): void {
    let pos = at;
    let rest = chunk;
    while (this.want && rest.length > 0) {
      const start = this.want.offset + this.gotLen;
      const end = this.want.offset + this.want.length;
      if (pos + rest.length <= start) return; // all before the wanted range
      const from = Math.max(0, start - pos);
      const take = Math.min(rest.length - from, end - start);
      this.got.push(rest.subarray(from, from + take));
      this.gotLen += take;
      rest = rest.subarray(from + take);
      pos = start + take;
      if (this.gotLen === this.want.length) {
        const data = Buffer.concat(this.got);
        this.got = [];
        this.gotLen = 0;
        this.advance(data);
      }
    }
  }

  finish(expectedCrc: number): void {
    if (this.done !== this.size) throw new BadInputError(`${this.name}: ${this.done} bytes read, the zip says ${this.size}`, { code: 'rom.archive-corrupt' });
    if ((this.crc >>> 0) !== (expectedCrc >>> 0)) {
      throw new BadInputError(`${this.name}: CRC-32 mismatch: the zip says 0x${(expectedCrc >>> 0).toString(16)}, the data gives 0x${(this.crc >>> 0).toString(16)}`, {
        code: 'rom.archive-corrupt',
        hint: 're-download the factory image; nothing has been written to the device',
      });
    }
    if (this.steps && !this.parsed) {
      // The parser still wants bytes the entry does not have (cannot happen after the size check; kept as a guard).
      throw new BadInputError(`${this.name}: truncated sparse image`, { code: 'rom.image-invalid' });
    }
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
  /** Partitions android-info.txt requires (partition-exists). */
  requiredPartitions?: string[];
}

/** Phase 2 of an update: slots, snapshot cancel and the task list, in AOSP flashall order. Returns the partitions written. */
export async function runUpdate(link: DeviceLink, zipPath: string, file: string, opts: RunUpdateOptions = {}): Promise<string[]> {
  const { zip, entries } = await openZip(zipPath, file);
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
    const superEmpty = entries.get(SUPER_EMPTY);
    const dynamic = superEmpty ? await readDynamicPartitions(zip, superEmpty, `${file}/${SUPER_EMPTY}`) : undefined;
    const info = entries.get(FASTBOOT_INFO);
    const fastbootInfo = info && !opts.disableFastbootInfo ? (await readSmallEntry(zip, info, `${file}/${FASTBOOT_INFO}`)).toString('utf8').split('\n') : undefined;
    const tasks = collectTasks({
      slotOverride: override,
      secondarySlot: secondary,
      skipSecondary,
      currentSlot: await currentSlot(link.client),
      wantsWipe: Boolean(opts.wipe),
      has: (n) => entries.has(n),
      required: opts.requiredPartitions ?? [],
      ...(dynamic ? { dynamic } : {}),
      ...(fastbootInfo ? { fastbootInfo } : {}),
    });
    const extract = async (image: string): Promise<string> => {
      const entry = entries.get(image);
      if (!entry) throw new BadInputError(`${file}: ${image} is missing`, { code: 'rom.image-missing' });
      if (opts.signal?.aborted) throw new AbortedError(`aborted before flashing ${image}`);
      const out = join(tmp, image.replace(/[/\\]/g, '_'));
      const mb = Math.floor(entry.uncompressedSize / (1024 * 1024));
      await step(ev, `Extracting ${image} (${mb} MB) to disk`, async () => {
        const check = new StreamCheck(`${file}/${image}`, entry.uncompressedSize);
        await pipeline(await openEntry(zip, entry, `${file}/${image}`), check.transform(() => {}), createWriteStream(out), opts.signal ? { signal: opts.signal } : {}).catch((err: unknown) => {
          if (opts.signal?.aborted) throw new AbortedError(`aborted while extracting ${image}`);
          throw err;
        });
        check.finish(entry.crc32); // the zip may have changed since phase 1
      });
      return out;
    };
    for (const t of tasks) {
      if (opts.signal?.aborted) throw new AbortedError('aborted by the user');
      switch (t.kind) {
        case 'flash': {
          const path = await extract(t.image);
          written.push(
            ...(await flashImage(link.client, t.partition, path, {
              ...(opts.sparseLimit !== undefined ? { sparseLimit: opts.sparseLimit } : {}),
              ...(t.slot !== '' ? { slot: t.slot } : {}),
              ...(ev ? { onEvent: ev } : {}),
              ...(opts.signal ? { signal: opts.signal } : {}),
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
          await rm(path, { force: true });
          break;
        }
        case 'update-super':
          if (!superEmpty) break;
          await updateSuper(link, await extract(SUPER_EMPTY), Boolean(opts.wipe), ev);
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
    zip.close();
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
async function updateSuper(link: DeviceLink, superEmptyPath: string, wipe: boolean, ev?: EventSink): Promise<void> {
  if (!(await link.isUserspace())) await link.rebootToUserspace();
  const name = (await getvarOrUndefined(link.client, 'super-partition-name'))?.trim() || 'super';
  const { readFile } = await import('node:fs/promises');
  const data = await readFile(superEmptyPath);
  await step(ev, `Sending '${name}' (${Math.floor(data.length / 1024)} KB)`, () => link.client.download(data), data.length);
  await step(ev, 'Updating super partition', () => link.client.command(`update-super:${name}${wipe ? ':wipe' : ''}`));
}
