// `wipe-super [SUPER_EMPTY]` as the AOSP client does it (fastboot v35
// do_wipe_super / wipe_super): read the LP metadata of super_empty.img, build
// for each block device of it a sparse image of the device's size holding a
// fresh partition table (liblp WriteToImageFile: zeros over the first 4096
// bytes, both geometry copies, every metadata slot twice; the rest
// DONT_CARE), and flash it to that partition (slot-suffixed block devices get
// the slot). On retrofit devices (super is not named "super") AOSP first sends
// `oem allow-flash-super`; so does miflash.
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BadInputError } from '../errors.js';
import {
  bufferReader,
  flashPartitionTable,
  LP_BLOCK_DEVICE_SLOT_SUFFIXED,
  LpFormatError,
  readEmptyImage,
  totalMetadataSize,
  type LpMetadata,
} from '../lp/index.js';
import { BlockListBuilder, type BlockImage } from '../sparse/blocks.js';
import { RESPARSE_LIMIT, splitImage } from '../sparse/prepare.js';
import type { FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { deviceSparseLimit, sendPieces } from './flash-image.js';
import { currentSlot, forEachPartition, resolveSlotOption } from './slots.js';

const BLOCK = 4096;

/** The metadata of a super_empty image file; an unreadable or invalid one is bad input. */
export async function readSuperEmpty(path: string): Promise<LpMetadata> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new BadInputError(`could not read image: ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { code: 'input.image' });
  }
  try {
    return readEmptyImage(bufferReader(data), path);
  } catch (err) {
    if (err instanceof LpFormatError) throw new BadInputError(`could not parse image: ${path}: ${err.message}`, { code: 'input.image' });
    throw err;
  }
}

/** The partition table image for the first (super) block device: a raw file with the table, and its block model. */
async function tableImage(m: LpMetadata, dir: string): Promise<{ path: string; image: BlockImage }> {
  const dev = m.blockDevices[0]!;
  const path = join(dir, 'super-table.raw');
  const end = Math.ceil(totalMetadataSize(m.geometry.metadataMaxSize, m.geometry.metadataSlotCount) / BLOCK) * BLOCK;
  const fh = await open(path, 'w');
  try {
    await fh.truncate(end);
    for (const w of flashPartitionTable(m)) await fh.write(w.data, 0, w.data.length, w.offset);
  } finally {
    await fh.close();
  }
  const b = new BlockListBuilder(BLOCK);
  b.addFill(0, BLOCK, 0);
  b.addFile(1, end - BLOCK, BLOCK);
  return { path, image: { blockSize: BLOCK, len: Math.ceil(dev.size / BLOCK) * BLOCK, blocks: b.blocks } };
}

export interface WipeSuperOptions {
  slot?: string;
  sparseLimit?: number;
  onEvent?: EventSink;
  signal?: AbortSignal;
  tmpDir?: string;
}

/** Returns the partitions flashed. */
export async function wipeSuper(client: FastbootClient, superEmptyPath: string, o: WipeSuperOptions = {}): Promise<string[]> {
  const m = await readSuperEmpty(superEmptyPath);
  // Checked on the host before anything is sent: a table liblp would refuse to write is refused here.
  try {
    flashPartitionTable(m, { slotSuffix: '_a' });
  } catch (err) {
    if (err instanceof LpFormatError) throw new BadInputError(`${superEmptyPath}: ${err.message}`, { code: 'input.image' });
    throw err;
  }
  const override = await resolveSlotOption(client, o.slot);
  const slot = override !== '' ? override : await currentSlot(client);
  const superName = m.blockDevices[0]!.partitionName;
  if (superName !== 'super') {
    // Retrofit devices refuse writes to the partitions that hold super unless told.
    await step(o.onEvent, 'oem allow-flash-super', () => client.oem(['allow-flash-super']));
  }
  const dir = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'miflash-wipe-super-'));
  const flashed: string[] = [];
  try {
    const table = await tableImage(m, dir);
    const limit = o.sparseLimit !== undefined && o.sparseLimit > 0 ? o.sparseLimit : await deviceSparseLimit(client, o.onEvent);
    for (const [i, dev] of m.blockDevices.entries()) {
      // The first device holds the table; the others (retrofit) get an image of their size with nothing in it.
      const image: BlockImage = i === 0 ? table.image : { blockSize: BLOCK, len: Math.ceil(dev.size / BLOCK) * BLOCK, blocks: [] };
      const whole = splitImage(table.path, image, 0xffffffff);
      const prepared = limit > 0 && whole.pieces[0]!.size > limit ? splitImage(table.path, image, Math.min(limit, RESPARSE_LIMIT)) : whole;
      const slotted = (dev.flags & LP_BLOCK_DEVICE_SLOT_SUFFIXED) !== 0;
      await forEachPartition(
        client,
        dev.partitionName,
        slot,
        async (name) => {
          await sendPieces(client, name, prepared, { ...(o.onEvent ? { onEvent: o.onEvent } : {}), ...(o.signal ? { signal: o.signal } : {}), split: prepared !== whole });
          flashed.push(name);
        },
        { forceSlot: slotted, ...(o.onEvent ? { onEvent: o.onEvent } : {}) },
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return flashed;
}
