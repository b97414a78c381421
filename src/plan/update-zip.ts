// `fastboot update image-*.zip` (Google factory images), AOSP flashall style:
//  - phase 1 (host only): list the zip, refuse what miflash cannot do
//    (super_empty.img = dynamic partitions via fastbootd), require boot.img,
//    system.img and every partition-exists image, and stream every image once
//    to check the zip CRC-32 and, for sparse images, their structure;
//  - phase 2: on an A/B device set the current slot active again (AOSP does,
//    so the right recovery boots), cancel a pending snapshot merge (as AOSP),
//    then flash boot-critical images, then the
//    OS images, each extracted to a temp file first (streamed, bounded memory)
//    so flashImage splits it exactly like AOSP; *_other images go to the other
//    slot. The caller does -w and the final reboot.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, BadInputError } from '../errors.js';
import type { FastbootClient } from '../fastboot/client.js';
import { step, type EventSink } from '../fastboot/events.js';
import { flashImage } from '../fastboot/flash-image.js';
import { currentSlot, getvarOrUndefined, slotCount } from '../fastboot/slots.js';
import { crc32 } from '../rom/hash.js';
import { isSparse, parseSparseSteps, SparseFormatError, type ReadRequest } from '../sparse/index.js';

export interface UpdateImage {
  /** File name inside the zip. */
  image: string;
  /** Partition it is flashed to (the slot is resolved by flashImage). */
  partition: string;
  /** `*_other.img`: goes to the other slot, only on A/B devices. */
  secondary: boolean;
  /** Flashed first (AOSP ImageType::BootCritical). */
  bootCritical: boolean;
  /** AOSP dies when it is missing (optional_if_no_image = false). */
  required: boolean;
}

const img = (partition: string, opts: { bootCritical?: boolean; required?: boolean; image?: string; secondary?: boolean } = {}): UpdateImage => ({
  image: opts.image ?? `${partition}.img`,
  partition,
  secondary: Boolean(opts.secondary),
  bootCritical: Boolean(opts.bootCritical),
  required: Boolean(opts.required),
});

/**
 * AOSP's flashall image table (fastboot.cpp `images[]`, union of v29.0.6 and
 * later releases), kept in table order: boot-critical images are flashed
 * first, then the OS images, each group in this order.
 */
export const UPDATE_IMAGES: readonly UpdateImage[] = [
  img('boot', { bootCritical: true, required: true }),
  img('init_boot', { bootCritical: true }),
  img('boot', { image: 'boot_other.img', secondary: true }),
  img('dtbo', { bootCritical: true }),
  img('dts', { image: 'dt.img', bootCritical: true }),
  img('odm'),
  img('odm_dlkm'),
  img('product'),
  img('product_services'),
  img('pvmfw', { bootCritical: true }),
  img('recovery', { bootCritical: true }),
  img('system', { required: true }),
  img('system_dlkm'),
  img('system_ext'),
  img('system', { image: 'system_other.img', secondary: true }),
  img('vbmeta', { bootCritical: true }),
  img('vbmeta_system', { bootCritical: true }),
  img('vbmeta_vendor', { bootCritical: true }),
  img('vendor'),
  img('vendor_boot', { bootCritical: true }),
  img('vendor_kernel_boot', { bootCritical: true }),
  img('vendor_dlkm'),
  img('vendor', { image: 'vendor_other.img', secondary: true }),
];

/** Flash order: boot-critical images, then the rest, each in table order. */
export function flashOrder(): UpdateImage[] {
  return [...UPDATE_IMAGES.filter((i) => i.bootCritical), ...UPDATE_IMAGES.filter((i) => !i.bootCritical)];
}

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

export interface PlannedImage extends UpdateImage {
  size: number;
}

/** The images of the zip that an update flashes, in flash order (secondaries included; the device decides at run time). */
export function imagesInZip(entries: Map<string, ZipEntryInfo>): PlannedImage[] {
  return flashOrder().flatMap((i) => {
    const e = entries.get(i.image);
    return e ? [{ ...i, size: e.size }] : [];
  });
}

export interface UpdateZipCheck {
  /** Relative to the ROM root. */
  file: string;
  images: Array<PlannedImage & { sparse: boolean }>;
}

export interface CheckUpdateZipOptions {
  /** Partitions android-info.txt requires with `partition-exists` (their images become mandatory, as in AOSP). */
  requiredPartitions?: string[];
  onProgress?: (p: { file: string; done: number; total: number }) => void;
  /** Where images will be extracted (free-space check); default os.tmpdir(). */
  tmpDir?: string;
}

/** Phase 1: everything about the zip that can be checked without the device. Throws BadInputError naming the entry. */
export async function checkUpdateZip(zipPath: string, file: string, opts: CheckUpdateZipOptions = {}): Promise<UpdateZipCheck> {
  const { zip, entries } = await openZip(zipPath, file);
  try {
    const refuse = (why: string, code = 'rom.update-zip') =>
      new BadInputError(`${file}: ${why}`, { code, hint: 'nothing has been written to the device' });
    if (entries.has('super_empty.img')) {
      throw refuse(
        'has super_empty.img (dynamic partitions): flashing it needs update-super in userspace fastboot (fastbootd), which miflash does not do yet',
        'plan.unsupported-step',
      );
    }
    for (const i of UPDATE_IMAGES) {
      if (i.required && !i.secondary && !entries.has(i.image)) throw refuse(`${i.image} is missing (fastboot update requires it)`, 'rom.image-missing');
    }
    for (const p of opts.requiredPartitions ?? []) {
      const known = UPDATE_IMAGES.find((i) => i.partition === p && !i.secondary);
      if (!known) throw refuse(`android-info.txt requires partition ${p}, which fastboot update does not know how to flash`);
      if (!entries.has(known.image)) throw refuse(`android-info.txt requires partition ${p} but ${known.image} is not in the zip`, 'rom.image-missing');
    }
    const list = imagesInZip(entryInfo(entries));
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
    return { file, images };
  } finally {
    zip.close();
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
}

/** Phase 2 of an update: slot re-activation and every image, in AOSP flashall order. Returns the partitions written. */
export async function runUpdate(client: FastbootClient, zipPath: string, file: string, opts: RunUpdateOptions = {}): Promise<string[]> {
  const { zip, entries } = await openZip(zipPath, file);
  const tmp = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'miflash-update-'));
  const written: string[] = [];
  try {
    const ab = (await slotCount(client)) >= 2;
    if (ab) {
      // As AOSP: re-activate the current slot first, so the matching recovery boots.
      const slot = await currentSlot(client);
      if (slot !== '') await step(opts.onEvent, `Setting current slot to '${slot}'`, () => client.setActive(slot));
    }
    // As AOSP: a pending Virtual A/B merge would fight the new images; cancel it first.
    const merge = (await getvarOrUndefined(client, 'snapshot-update-status'))?.trim();
    if (merge !== undefined && merge !== '' && merge !== 'none') {
      await step(opts.onEvent, `Cancelling snapshot update (status: ${merge})`, () => client.command('snapshot-update:cancel'));
    }
    for (const i of flashOrder()) {
      const entry = entries.get(i.image);
      if (!entry) continue;
      if (i.secondary && !ab) continue; // *_other images only exist for A/B devices
      if (opts.signal?.aborted) throw new AbortedError(`aborted before flashing ${i.image}`);
      const out = join(tmp, i.image);
      const mb = Math.floor(entry.uncompressedSize / (1024 * 1024));
      await step(opts.onEvent, `Extracting ${i.image} (${mb} MB) to disk`, async () => {
        const check = new StreamCheck(`${file}/${i.image}`, entry.uncompressedSize);
        await pipeline(await openEntry(zip, entry, `${file}/${i.image}`), check.transform(() => {}), createWriteStream(out), opts.signal ? { signal: opts.signal } : {}).catch((err: unknown) => {
          if (opts.signal?.aborted) throw new AbortedError(`aborted while extracting ${i.image}`);
          throw err;
        });
        check.finish(entry.crc32); // the zip may have changed since phase 1
      });
      written.push(
        ...(await flashImage(client, i.partition, out, {
          ...(opts.sparseLimit !== undefined ? { sparseLimit: opts.sparseLimit } : {}),
          ...(i.secondary ? { slot: 'other' } : {}),
          ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        })),
      );
      await rm(out, { force: true });
    }
  } finally {
    zip.close();
    await rm(tmp, { recursive: true, force: true });
  }
  return written;
}
