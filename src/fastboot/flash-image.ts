// `flash PARTITION IMAGE` with the AOSP client's rules (fastboot v29 do_flash):
//  limit = -S, else the device's max-download-size (asked once per client);
//  split only when the file is larger than the limit, then at min(limit, 1 GiB)
//  (done by prepareForDownload); logical partitions are resized to the image
//  size first; each piece is one download + flash.
import { open } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import { SparseFormatError } from '../sparse/errors.js';
import { parseSparseHeader, isSparse, SPARSE_HEADER_SIZE } from '../sparse/parse.js';
import { prepareForDownload } from '../sparse/prepare.js';
import type { PreparedImage } from '../sparse/descriptor.js';
import { parseFastbootNumber, type FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { forEachPartition, getvarOrUndefined, resolveSlotOption } from './slots.js';

export interface FlashImageOptions {
  /** -S: split images larger than this; undefined or 0 = ask the device (as AOSP). */
  sparseLimit?: number;
  /** --slot a|b|_a|all|other. */
  slot?: string;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** Called with each partition name (slot resolved) before anything is sent for it; may refuse by throwing. */
  beforeEach?: (name: string) => Promise<void>;
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
  const slot = await resolveSlotOption(client, opts.slot);
  const written: string[] = [];
  await forEachPartition(
    client,
    partition,
    slot,
    async (name) => {
      await opts.beforeEach?.(name);
      await flashOne(client, name, imagePath, opts);
      written.push(name);
    },
    { forceSlot: true, onEvent: opts.onEvent },
  );
  return written;
}

async function flashOne(client: FastbootClient, name: string, imagePath: string, opts: FlashImageOptions): Promise<void> {
  const { fileSize, imageSize } = await imageSizes(imagePath);
  const limit = opts.sparseLimit !== undefined && opts.sparseLimit > 0 ? opts.sparseLimit : await deviceSparseLimit(client, opts.onEvent);
  const prepared = await prepareForDownload(imagePath, limit);
  if ((await getvarOrUndefined(client, `is-logical:${name}`)) === 'yes') {
    await step(opts.onEvent, `Resizing '${name}'`, () => client.command(`resize-logical-partition:${name}:${imageSize}`));
  }
  // AOSP labels a download "sparse" only when it split the image; a sparse file
  // within the limit goes out as is, labelled like a raw one.
  const split = limit > 0 && fileSize > limit;
  await sendPieces(client, name, prepared, { ...opts, split });
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
