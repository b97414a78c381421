// `flash PARTITION IMAGE` with the AOSP client's rules (fastboot v29 do_flash):
//  limit = -S, else the device's max-download-size (asked once per client);
//  split only when the file is larger than the limit, then at min(limit, 1 GiB)
//  (done by prepareForDownload); logical partitions are resized to the image
//  size first; each piece is one download + flash.
// And v35 flash_buf's host-side rewrites of an image sent whole (src/fastboot/avb.ts):
//  the AVB footer moved to the end of a larger partition, and the vbmeta flags
//  for --disable-verity / --disable-verification.
import { open } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import { SparseFormatError } from '../sparse/errors.js';
import { parseSparseHeader, isSparse, SPARSE_HEADER_SIZE } from '../sparse/parse.js';
import { prepareForDownload } from '../sparse/prepare.js';
import type { Payload, PreparedImage } from '../sparse/descriptor.js';
import { parseFastbootNumber, type FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from './slots.js';
import { fixNumericVar } from './fetch.js';
import {
  FLAG_DISABLE_VERIFICATION,
  FLAG_DISABLE_VERITY,
  VBMETA_FLAGS_BYTE,
  byteAt,
  isVbmetaPartition,
  paddedWithFooter,
  readAvbFooter,
  vbmetaStructOffset,
  withByte,
} from './avb.js';

export interface FlashImageOptions {
  /** -S: split images larger than this; undefined or 0 = ask the device (as AOSP). */
  sparseLimit?: number;
  /** --slot a|b|_a|all|other. */
  slot?: string;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** Called with each partition name (slot resolved) before anything is sent for it; may refuse by throwing. */
  beforeEach?: (name: string) => Promise<void>;
  /**
   * v35 copy_avb_footer: send a raw image with an AVB footer padded to its
   * partition's size, the footer at the end. Off unless asked for: the CLI's
   * `flash` and update / flashall (v35 FlashTask) ask; ROM-script flash steps
   * keep the v29 behaviour, since Debian's v29 client running the vendor
   * script is their reference (issue 8: send what the AOSP client sends).
   */
  copyAvbFooter?: boolean | ((name: string) => boolean);
  /** --disable-verity: set vbmeta flag 0x01 (v35 flash_buf). */
  disableVerity?: boolean;
  /** --disable-verification: set vbmeta flag 0x02. */
  disableVerification?: boolean;
}

/** The device's max-download-size, asked once per client (AOSP caches it per run). */
const deviceLimits = new WeakMap<FastbootClient, number>();

export async function deviceSparseLimit(client: FastbootClient, onEvent?: EventSink): Promise<number> {
  const cached = deviceLimits.get(client);
  if (cached !== undefined) return cached;
  const raw = await getvarOrUndefined(client, 'max-download-size');
  let limit = 0;
  if (raw !== undefined && raw.trim() !== '') {
    const n = parseFastbootNumber(raw);
    if (n === undefined) onEvent?.({ type: 'warning', message: `couldn't parse max-download-size '${raw}'; sending images unsplit` });
    else limit = n;
  }
  deviceLimits.set(client, limit);
  return limit;
}

/** Forget the cached limit (after reboot-fastboot the userspace limit differs). */
export function forgetDeviceLimit(client: FastbootClient): void {
  deviceLimits.delete(client);
}

/** Flashes one image; returns the partition names written. */
export async function flashImage(
  client: FastbootClient,
  partition: string,
  imagePath: string,
  opts: FlashImageOptions = {},
): Promise<string[]> {
  if (partition === '') throw new BadInputError('flash: empty partition name');
  // v35: whether to patch is decided on the name as given (before the slot suffix).
  const applyVbmeta = isVbmetaPartition(partition);
  if (applyVbmeta && vbmetaFlags(opts) !== 0) await vbmetaStructOffset(imagePath, (await imageSizes(imagePath)).fileSize, false, partition);
  const slot = await resolveSlotOption(client, opts.slot);
  const written: string[] = [];
  await forEachPartition(
    client,
    partition,
    slot,
    async (name) => {
      await opts.beforeEach?.(name);
      await flashOne(client, name, imagePath, { ...opts, applyVbmeta });
      written.push(name);
    },
    { forceSlot: true, onEvent: opts.onEvent },
  );
  return written;
}

function vbmetaFlags(opts: FlashImageOptions): number {
  return (opts.disableVerity ? FLAG_DISABLE_VERITY : 0) | (opts.disableVerification ? FLAG_DISABLE_VERIFICATION : 0);
}

async function flashOne(client: FastbootClient, name: string, imagePath: string, opts: FlashImageOptions & { applyVbmeta: boolean }): Promise<void> {
  const { fileSize, imageSize } = await imageSizes(imagePath);
  const limit = opts.sparseLimit !== undefined && opts.sparseLimit > 0 ? opts.sparseLimit : await deviceSparseLimit(client, opts.onEvent);
  let prepared = await prepareForDownload(imagePath, limit);
  // AOSP labels a download "sparse" only when it split the image; a sparse file
  // within the limit goes out as is, labelled like a raw one.
  const split = limit > 0 && fileSize > limit;
  const whole = prepared.format === 'raw' && prepared.pieces.length === 1;
  if (opts.applyVbmeta && vbmetaFlags(opts) !== 0 && !whole) {
    // AOSP patches its temporary copy but then sends the pieces made before it (or dies on a sparse file): refuse instead.
    throw new BadInputError(`${imagePath} (partition ${name}): --disable-verity/--disable-verification need the vbmeta image sent whole, but it is ${split ? `split at the download limit of ${limit} bytes` : 'a sparse image'}`, {
      code: 'input.vbmeta',
      hint: 'nothing has been sent for this partition',
    });
  }
  const logical = (await getvarOrUndefined(client, `is-logical:${name}`)) === 'yes';
  if (logical) {
    await step(opts.onEvent, `Resizing '${name}'`, () => client.command(`resize-logical-partition:${name}:${imageSize}`));
  }
  if (whole) prepared = { ...prepared, pieces: [await rewriteWhole(client, name, imagePath, prepared.pieces[0]!, logical, opts)] };
  else if (vbmetaFlags(opts) !== 0 && !opts.applyVbmeta && !(await hasVbmetaPartition(client)) && isBootPartition(name)) {
    throw new BadInputError(`${imagePath} (partition ${name}): the vbmeta inside a boot image can only be patched in an image sent whole, not ${split ? 'split' : 'sparse'}`, {
      code: 'input.vbmeta',
    });
  }
  await sendPieces(client, name, prepared, { ...opts, split });
}

const isBootPartition = (name: string): boolean => name === 'boot' || name === 'boot_a' || name === 'boot_b';

/** v35 has_vbmeta_partition: any of partition-type:vbmeta, vbmeta_a, vbmeta_b answered OKAY (asked in that order, stopping at the first). */
async function hasVbmetaPartition(client: FastbootClient): Promise<boolean> {
  for (const p of ['vbmeta', 'vbmeta_a', 'vbmeta_b']) if ((await getvarOrUndefined(client, `partition-type:${p}`)) !== undefined) return true;
  return false;
}

/**
 * v35 flash_buf on an image sent in one download: copy_avb_footer, then
 * rewrite_vbmeta_buffer. v35 asks partition-size for every raw image of 64
 * bytes or more on a non-logical partition; miflash asks only when the image
 * ends in an AVB footer, the one case where the answer changes what is sent.
 */
async function rewriteWhole(
  client: FastbootClient,
  name: string,
  imagePath: string,
  payload: Payload,
  logical: boolean,
  opts: FlashImageOptions & { applyVbmeta: boolean },
): Promise<Payload> {
  const size = payload.size;
  let out = payload;
  const copy = typeof opts.copyAvbFooter === 'function' ? opts.copyAvbFooter(name) : Boolean(opts.copyAvbFooter);
  const footer = logical || !copy ? undefined : await readAvbFooter(imagePath, size);
  if (footer) {
    const raw = await getvarOrUndefined(client, `partition-size:${name}`);
    // A bootloader without partition-size counts as 0 (AOSP get_partition_size).
    const partitionSize = (raw === undefined ? undefined : fixNumericVar(raw)) ?? 0;
    if (partitionSize > size) out = paddedWithFooter(size, partitionSize, footer);
    else if (partitionSize < size) {
      opts.onEvent?.({ type: 'warning', message: `skip copying ${name} image avb footer (${name} partition size: ${partitionSize}, ${name} image size: ${size}).` });
    }
  }
  const flags = vbmetaFlags(opts);
  if (flags === 0) return out;
  let offset: number | undefined;
  if (opts.applyVbmeta) offset = await vbmetaStructOffset(imagePath, size, false, name);
  // AOSP asks has_vbmeta_partition before looking at the name, so for every other partition flashed with the flags.
  else if (!(await hasVbmetaPartition(client)) && isBootPartition(name)) offset = await vbmetaStructOffset(imagePath, size, true, name);
  else return out;
  if (offset === undefined) {
    opts.onEvent?.({ type: 'warning', message: `${imagePath} is smaller than a vbmeta struct (256 bytes): flashed without --disable-verity/--disable-verification, as AOSP does` });
    return out;
  }
  const at = offset + VBMETA_FLAGS_BYTE;
  const patched = withByte(out, at, (await byteAt(imagePath, out, at)) | flags);
  await step(opts.onEvent, `Rewriting vbmeta struct at offset: ${offset}`, async () => {});
  return patched;
}

/** Downloads and flashes every piece with AOSP's status lines. */
export async function sendPieces(
  client: FastbootClient,
  name: string,
  prepared: PreparedImage,
  opts: FlashImageOptions & { split?: boolean },
): Promise<void> {
  const n = prepared.pieces.length;
  const split = opts.split ?? n > 1;
  for (let i = 0; i < n; i++) {
    const payload = prepared.pieces[i]!;
    const kb = Math.floor(payload.size / 1024);
    const label = split ? `Sending sparse '${name}' ${i + 1}/${n} (${kb} KB)` : `Sending '${name}' (${kb} KB)`;
    await step(
      opts.onEvent,
      label,
      (progress) =>
        client.download(
          { path: prepared.path, payload },
          { signal: opts.signal, onProgress: (p) => progress(p.bytesDone, p.bytesTotal, p.rateBytesPerSec) },
        ),
      payload.size,
    );
    await step(opts.onEvent, `Writing '${name}'`, () => client.flash(name));
  }
}

/** File size, and the size once written (total_blocks × block_size for a sparse file). */
export async function imageSizes(path: string): Promise<{ fileSize: number; imageSize: number }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new BadInputError(`cannot open image ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new BadInputError(`${path} is not a regular file`);
    const head = Buffer.alloc(SPARSE_HEADER_SIZE);
    const { bytesRead } = await fh.read(head, 0, SPARSE_HEADER_SIZE, 0);
    if (bytesRead >= 4 && isSparse(head)) {
      let h;
      try {
        h = parseSparseHeader(head.subarray(0, bytesRead), st.size);
      } catch (err) {
        throw err instanceof SparseFormatError ? err.withPath(path) : err;
      }
      return { fileSize: st.size, imageSize: h.blockSize * h.totalBlocks };
    }
    return { fileSize: st.size, imageSize: st.size };
  } finally {
    await fh.close();
  }
}
