// `flash vendor_boot:RAMDISK FILE [--dtb DTB]` (fastboot v35 repack_ramdisk +
// vendor_boot_img_utils replace_vendor_ramdisk): the device's vendor_boot is
// fetched whole, one vendor ramdisk (or, for "default", the whole ramdisk
// section) and optionally the DTB are replaced on the host, and the result —
// as large as the partition, the rest zeros, the AVB footer kept at the end —
// is flashed back.
//
// Layout (bootimg.h): header (v3 2112 bytes, v4 2128) padded to page_size (O),
// vendor ramdisk section (P), dtb (Q), then for v4 the ramdisk table (R, entries
// of 108 bytes: size, offset, type, name[32], board_id[16 × u32]) and
// bootconfig (S), each padded to page_size. All fields little-endian.
import { readFile } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import type { FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { fetchPartitionData } from './fetch.js';
import { sendStep } from './ram.js';
import { deviceSparseLimit } from './flash-image.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from './slots.js';

const MAGIC = 'VNDRBOOT';
const HDR_V3_SIZE = 2112;
const HDR_V4_SIZE = 2128;
const ENTRY_V4_SIZE = 108;
const NAME_SIZE = 32;
const AVB_FOOTER_SIZE = 64;

// Header field offsets.
const OFF_VERSION = 8;
const OFF_PAGE_SIZE = 12;
const OFF_RAMDISK_SIZE = 24;
const OFF_DTB_SIZE = 2100;
const OFF_TABLE_SIZE = 2112;
const OFF_TABLE_NUM = 2116;
const OFF_TABLE_ENTRY_SIZE = 2120;
const OFF_BOOTCONFIG_SIZE = 2124;

/** The error AOSP's repack reports (die), as a typed input error: nothing has been flashed yet. */
function fail(message: string): never {
  throw new BadInputError(`vendor_boot repack: ${message}`, { code: 'input.vendor-boot', hint: 'nothing has been flashed' });
}

const roundUp = (v: number, page: number): number => Math.ceil(v / page) * page;

/**
 * DataUpdater: copies from the old image to a new zero-filled image of the
 * same size, with replacements; every move is bounds-checked on both sides.
 */
class Updater {
  readonly out: Buffer;
  private o = 0;
  private n = 0;
  constructor(private readonly old: Buffer) {
    this.out = Buffer.alloc(old.length);
  }
  private check(at: number, len: number, what: string): void {
    if (len < 0 || at + len > this.old.length) fail(`${what}: boundary overflow (0x${at.toString(16)} + 0x${len.toString(16)} > 0x${this.old.length.toString(16)})`);
  }
  copy(len: number): void {
    if (len === 0) return;
    this.check(this.o, len, 'Copy');
    this.check(this.n, len, 'Copy');
    this.old.copy(this.out, this.n, this.o, this.o + len);
    this.o += len;
    this.n += len;
  }
  replace(oldLen: number, data: Buffer): void {
    this.check(this.o, oldLen, 'Replace');
    this.o += oldLen;
    if (data.length === 0) return;
    this.check(this.n, data.length, 'Replace');
    data.copy(this.out, this.n);
    this.n += data.length;
  }
  skip(oldLen: number, newLen: number): void {
    this.check(this.o, oldLen, 'Skip');
    this.o += oldLen;
    this.check(this.n, newLen, 'Skip');
    this.n += newLen;
  }
  seek(offset: number): void {
    if (offset > this.old.length) fail(`cannot seek 0x${offset.toString(16)}, size is 0x${this.old.length.toString(16)}`);
    this.o = offset;
    this.n = offset;
  }
  checkOffset(oldAt: number, newAt: number): void {
    if (this.o !== oldAt) fail(`old offset mismatch: expected 0x${oldAt.toString(16)}, actual 0x${this.o.toString(16)}`);
    if (this.n !== newAt) fail(`new offset mismatch: expected 0x${newAt.toString(16)}, actual 0x${this.n.toString(16)}`);
  }
  get newAt(): number {
    return this.n;
  }
  get oldAt(): number {
    return this.o;
  }
  /** The footer is copied only when the old image's last 64 bytes are one. */
  copyAvbFooter(): void {
    if (this.old.length < AVB_FOOTER_SIZE) return;
    this.seek(this.old.length - AVB_FOOTER_SIZE);
    if (this.old.toString('latin1', this.o, this.o + 4) !== 'AVBf') return;
    this.copy(AVB_FOOTER_SIZE);
  }
}

function checkHeader(img: Buffer, minVersion: number): { version: number; headerSize: number; page: number } {
  if (img.length < HDR_V3_SIZE) fail(`size of vendor boot is 0x${img.length.toString(16)}, less than size of V3 header: 0x${HDR_V3_SIZE.toString(16)}`);
  const version = img.readUInt32LE(OFF_VERSION);
  const headerSize = version === 3 ? HDR_V3_SIZE : version === 4 ? HDR_V4_SIZE : fail(`unrecognized vendor boot header version ${version}`);
  if (img.length < headerSize) fail(`size of vendor boot is 0x${img.length.toString(16)}, less than size of V${version} header: 0x${headerSize.toString(16)}`);
  if (img.toString('latin1', 0, 8) !== MAGIC) fail('vendor boot image magic mismatch');
  const page = img.readUInt32LE(OFF_PAGE_SIZE);
  if (page === 0) fail('page size cannot be zero');
  if (version < minVersion) fail(`require vendor boot header V${minVersion} but is V${version}`);
  return { version, headerSize, page };
}

/** "default": the whole vendor ramdisk section becomes `ramdisk`; a v4 table is reduced to one unnamed entry. */
function replaceDefault(img: Buffer, ramdisk: Buffer, dtb: Buffer | undefined): Buffer {
  const { version, headerSize, page } = checkHeader(img, 3);
  const ramdiskSize = img.readUInt32LE(OFF_RAMDISK_SIZE);
  const dtbSize = img.readUInt32LE(OFF_DTB_SIZE);
  const o = roundUp(headerSize, page);
  const p = roundUp(ramdiskSize, page);
  const q = roundUp(dtbSize, page);
  const u = new Updater(img);
  u.copy(o);
  const h = u.out;
  h.writeUInt32LE(ramdisk.length, OFF_RAMDISK_SIZE);
  if (version >= 4) {
    h.writeUInt32LE(ENTRY_V4_SIZE, OFF_TABLE_ENTRY_SIZE);
    h.writeUInt32LE(1, OFF_TABLE_NUM);
    h.writeUInt32LE(ENTRY_V4_SIZE, OFF_TABLE_SIZE);
  }
  u.replace(ramdiskSize, ramdisk);
  const newP = roundUp(ramdisk.length, page);
  u.skip(p - ramdiskSize, newP - ramdisk.length);
  u.checkOffset(o + p, o + newP);
  const newQ = copyOrReplaceDtb(u, dtb, dtbSize, page);
  u.checkOffset(o + p + q, o + newP + newQ);
  if (version >= 4) {
    const r = roundUp(img.readUInt32LE(OFF_TABLE_SIZE), page);
    const s = roundUp(img.readUInt32LE(OFF_BOOTCONFIG_SIZE), page);
    const entryAt = u.newAt;
    const newR = roundUp(ENTRY_V4_SIZE, page);
    u.skip(r, newR);
    u.checkOffset(o + p + q + r, o + newP + newQ + newR);
    // The one entry: the new ramdisk at offset 0, type NONE, no name, no board id (the skipped bytes are zeros).
    h.writeUInt32LE(ramdisk.length, entryAt);
    h.writeUInt32LE(0, entryAt + 4);
    h.writeUInt32LE(0, entryAt + 8);
    u.copy(s);
  }
  u.copyAvbFooter();
  return u.out;
}

/** The dtb section copied, or replaced by `dtb` (header size updated); returns its new page-rounded size. */
function copyOrReplaceDtb(u: Updater, dtb: Buffer | undefined, dtbSize: number, page: number): number {
  const newDtbSize = dtb ? dtb.length : dtbSize;
  u.out.writeUInt32LE(newDtbSize, OFF_DTB_SIZE);
  const newQ = roundUp(newDtbSize, page);
  if (!dtb) u.copy(roundUp(dtbSize, page));
  else {
    u.replace(dtbSize, dtb);
    u.skip(roundUp(dtbSize, page) - dtbSize, newQ - dtb.length);
  }
  return newQ;
}

/** A named v4 ramdisk fragment replaced; the table's sizes and offsets follow. */
function replaceFragment(name: string, img: Buffer, ramdisk: Buffer, dtb: Buffer | undefined): Buffer {
  const { headerSize, page } = checkHeader(img, 4);
  const ramdiskSize = img.readUInt32LE(OFF_RAMDISK_SIZE);
  const dtbSize = img.readUInt32LE(OFF_DTB_SIZE);
  const tableSize = img.readUInt32LE(OFF_TABLE_SIZE);
  const num = img.readUInt32LE(OFF_TABLE_NUM);
  const entrySize = img.readUInt32LE(OFF_TABLE_ENTRY_SIZE);
  const o = roundUp(headerSize, page);
  const p = roundUp(ramdiskSize, page);
  const q = roundUp(dtbSize, page);
  const r = roundUp(tableSize, page);
  const s = roundUp(img.readUInt32LE(OFF_BOOTCONFIG_SIZE), page);
  if (o + p + q + r + s > img.length) fail('vendor boot image size is too small, overflow');
  if (num * ENTRY_V4_SIZE > o + p + q + r) fail('too many vendor ramdisk entries in table, overflow');
  const tableAt = o + p + q;
  const entry = (i: number) => tableAt + i * ENTRY_V4_SIZE;
  let index = -1;
  for (let i = 0; i < num; i++) {
    const raw = img.subarray(entry(i) + 12, entry(i) + 12 + NAME_SIZE);
    const end = raw.indexOf(0);
    if (raw.toString('latin1', 0, end < 0 ? NAME_SIZE : end) !== name) continue;
    if (index >= 0) fail(`multiple vendor ramdisk '${name}' found, name should be unique`);
    index = i;
  }
  if (index < 0) fail(`vendor ramdisk '${name}' not found`);

  const u = new Updater(img);
  u.copy(o);
  const h = u.out;
  let total = 0;
  for (let i = 0; i < num; i++) {
    const size = img.readUInt32LE(entry(i));
    if (i === index) {
      u.replace(size, ramdisk);
      total += ramdisk.length;
    } else {
      u.copy(size);
      total += size;
    }
  }
  h.writeUInt32LE(total, OFF_RAMDISK_SIZE);
  const newP = roundUp(total, page);
  u.skip(p - ramdiskSize, newP - total);
  u.checkOffset(o + p, o + newP);
  const newQ = copyOrReplaceDtb(u, dtb, dtbSize, page);
  u.checkOffset(o + p + q, o + newP + newQ);
  for (let i = 0, offset = 0; i < num; i++) {
    const at = u.newAt;
    u.copy(entrySize);
    h.writeUInt32LE(offset, at + 4);
    if (i === index) h.writeUInt32LE(ramdisk.length, at);
    offset += h.readUInt32LE(at);
  }
  u.copy(r - num * entrySize);
  u.checkOffset(o + p + q + r, o + newP + newQ + r);
  u.copy(s);
  u.copyAvbFooter();
  return u.out;
}

/**
 * replace_vendor_ramdisk: `vendorBoot` is the whole partition as fetched;
 * the result has the same size. Throws BadInputError with AOSP's reasons.
 */
export function replaceVendorRamdisk(vendorBoot: Buffer, ramdiskName: string, ramdisk: Buffer, dtb?: Buffer): Buffer {
  if (ramdisk.length > 0xffffffff) fail('new vendor ramdisk is too big');
  return ramdiskName === 'default' ? replaceDefault(vendorBoot, ramdisk, dtb) : replaceFragment(ramdiskName, vendorBoot, ramdisk, dtb);
}

/** `vendor_boot:NAME`, `vendor_boot_a:NAME`, `vendor_boot_b:NAME` → the partition and the ramdisk name; undefined for any other partition. */
export function parseVendorRamdiskTarget(target: string): { partition: string; ramdisk: string } | undefined {
  const m = /^(vendor_boot(?:_a|_b)?):(.*)$/.exec(target);
  return m ? { partition: m[1]!, ramdisk: m[2]! } : undefined;
}

export interface FlashVendorRamdiskOptions {
  slot?: string;
  /** --dtb: replace the DTB too. */
  dtbPath?: string;
  sparseLimit?: number;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

/**
 * The whole `flash vendor_boot[_x]:RAMDISK FILE` with v35's conversation: per
 * slot-resolved name the ramdisk's download limit and is-logical of the
 * "vendor_boot_a:RAMDISK" name as AOSP asks them, the partition fetched
 * (fastbootd: max-fetch-size, partition-size, fetch:…), repacked, then
 * is-logical / partition-size again (copy_avb_footer; the image already has
 * the partition's size) and one download + flash of the whole partition.
 */
export async function flashVendorRamdisk(client: FastbootClient, target: string, ramdiskPath: string, opts: FlashVendorRamdiskOptions = {}): Promise<string[]> {
  const parsed = parseVendorRamdiskTarget(target);
  if (!parsed) throw new BadInputError(`'${target}' is not vendor_boot:RAMDISK`);
  const ramdisk = await readInput(ramdiskPath, 'vendor ramdisk');
  const dtb = opts.dtbPath === undefined ? undefined : await readInput(opts.dtbPath, 'dtb');
  if (dtb && dtb.length === 0) throw new BadInputError(`--dtb ${opts.dtbPath}: the file is empty`, { code: 'input.image' });
  const slot = await resolveSlotOption(client, opts.slot);
  const written: string[] = [];
  await forEachPartition(
    client,
    target,
    slot,
    async (pname) => {
      const limit = opts.sparseLimit !== undefined && opts.sparseLimit > 0 ? opts.sparseLimit : await deviceSparseLimit(client, opts.onEvent);
      if (limit > 0 && ramdisk.length > limit) {
        // AOSP would have to split it and refuses ("Flashing sparse vendor ramdisk image is not supported").
        throw new BadInputError(`${ramdiskPath}: ${ramdisk.length} bytes is over the download limit of ${limit}; a vendor ramdisk cannot be sent in pieces`, { code: 'input.vendor-boot' });
      }
      await getvarOrUndefined(client, `is-logical:${pname}`);
      const partition = pname.slice(0, pname.indexOf(':'));
      const chunks: Buffer[] = [];
      await fetchPartitionData(client, partition, (data) => chunks.push(Buffer.from(data)), opts.onEvent);
      const repacked = replaceVendorRamdisk(Buffer.concat(chunks), parsed.ramdisk, ramdisk, dtb);
      // copy_avb_footer's questions; the repacked image is exactly the partition's size, so nothing moves.
      await getvarOrUndefined(client, `is-logical:${partition}`);
      await getvarOrUndefined(client, `partition-size:${partition}`);
      await sendStep(client, partition, repacked, repacked.length, opts);
      await step(opts.onEvent, `Writing '${partition}'`, () => client.flash(partition));
      written.push(partition);
    },
    { forceSlot: true, ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) },
  );
  return written;
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new BadInputError(`cannot load ${what} '${path}': ${(err as Error).message}`, { code: 'input.image' });
  }
}
