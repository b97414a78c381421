// Commands that move data to or from the device's RAM rather than a partition,
// with the AOSP client's wire behaviour and status lines (fastboot v35):
//  boot       download:SIZE ("Sending 'boot.img'") + boot ("Booting");
//  continue   continue ("Resuming boot");
//  stage      getvar:max-download-size (unless -S) + download:SIZE ("Sending 'FILE'");
//             a file over the limit is refused (AOSP "cannot load": stage never splits);
//  get_staged upload ("Uploading 'OUT'"), the data written to OUT as it arrives;
//  flash:raw  the boot image `boot` would send, flashed to each partition the slot
//             option resolves to: download:SIZE + flash:NAME, never split and no
//             getvar of the download limit (v29 = v35 FlashPartition(name, data));
//  signature  a 256-byte file: download:00000100 + signature ("installing signature").
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import type { Payload } from '../sparse/descriptor.js';
import type { DownloadSource, FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { deviceSparseLimit } from './flash-image.js';
import { forEachPartition, resolveSlotOption } from './slots.js';

/** One download with AOSP's "Sending 'NAME' (N KB)" status line and live progress. */
export async function sendStep(
  client: FastbootClient,
  name: string,
  data: DownloadSource,
  size: number,
  opts: { onEvent?: EventSink; signal?: AbortSignal },
): Promise<void> {
  await step(
    opts.onEvent,
    `Sending '${name}' (${Math.floor(size / 1024)} KB)`,
    (progress) => client.download(data, { ...(opts.signal ? { signal: opts.signal } : {}), onProgress: (p) => progress(p.bytesDone, p.bytesTotal, p.rateBytesPerSec) }),
    size,
  );
}

export async function bootImage(client: FastbootClient, data: Buffer, opts: { onEvent?: EventSink; signal?: AbortSignal } = {}): Promise<void> {
  await sendStep(client, 'boot.img', data, data.length, opts);
  await step(opts.onEvent, 'Booting', () => client.boot());
}

export async function continueBoot(client: FastbootClient, onEvent?: EventSink): Promise<void> {
  await step(onEvent, 'Resuming boot', () => client.continue());
}

export async function stageFile(client: FastbootClient, path: string, opts: { sparseLimit?: number; onEvent?: EventSink; signal?: AbortSignal } = {}): Promise<number> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new BadInputError(`cannot load '${path}': ${(err as Error).message}`, { code: 'input.image' });
  }
  let size: number;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new BadInputError(`cannot load '${path}': not a regular file`, { code: 'input.image' });
    size = st.size;
  } finally {
    closeSync(fd);
  }
  const limit = opts.sparseLimit !== undefined && opts.sparseLimit > 0 ? opts.sparseLimit : await deviceSparseLimit(client, opts.onEvent);
  if (limit > 0 && size > limit) {
    throw new BadInputError(`cannot stage '${path}': ${size} bytes is more than the ${limit}-byte download limit, and staged data is never split`, {
      code: 'input.image',
      hint: 'stage a smaller file (or raise the limit with -S if the device really accepts more)',
    });
  }
  // The bytes as they are, whatever they contain (AOSP sends stage data unparsed).
  const payload: Payload = { size, segments: size === 0 ? [] : [{ kind: 'file', offset: 0, length: size }] };
  await sendStep(client, path, { path, payload }, size, opts);
  return size;
}

/** get_staged OUT: the whole upload is written to OUT (created or truncated first, as AOSP). Returns the byte count. */
export async function getStaged(client: FastbootClient, out: string, onEvent?: EventSink): Promise<number> {
  let fd: number;
  try {
    fd = openSync(out, 'w');
  } catch (err) {
    throw new BadInputError(`cannot write '${out}': ${(err as Error).message}`, { code: 'input.output' });
  }
  let written = 0;
  try {
    await step(onEvent, `Uploading '${out}'`, () =>
      client.upload({
        onData: (chunk) => {
          for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
          written += chunk.length;
        },
      }),
    );
  } finally {
    closeSync(fd);
  }
  return written;
}

/** flash:raw PARTITION KERNEL [RAMDISK [SECOND]]: the built (or given) boot image to PARTITION; returns the names written. */
export async function flashRaw(
  client: FastbootClient,
  partition: string,
  data: Buffer,
  opts: { slot?: string; onEvent?: EventSink; signal?: AbortSignal } = {},
): Promise<string[]> {
  if (partition === '') throw new BadInputError('flash:raw: empty partition name');
  const slot = await resolveSlotOption(client, opts.slot);
  const written: string[] = [];
  await forEachPartition(
    client,
    partition,
    slot,
    async (name) => {
      await sendStep(client, name, data, data.length, opts);
      await step(opts.onEvent, `Writing '${name}'`, () => client.flash(name));
      written.push(name);
    },
    { forceSlot: true, ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) },
  );
  return written;
}

/** The size AOSP requires of a `signature` file. */
export const SIGNATURE_SIZE = 256;

/** signature FILE: checked to be 256 bytes before anything is sent, then download + signature. */
export async function sendSignature(client: FastbootClient, path: string, onEvent?: EventSink): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new BadInputError(`could not load '${path}': ${(err as Error).message}`, { code: 'input.image' });
  }
  if (data.length !== SIGNATURE_SIZE) {
    throw new BadInputError(`signature must be ${SIGNATURE_SIZE} bytes (got ${data.length}): ${path}`, { code: 'input.image', hint: 'nothing has been sent to the device' });
  }
  await step(onEvent, `Sending 'signature' (${Math.floor(data.length / 1024)} KB)`, () => client.download(data), data.length);
  await step(onEvent, 'installing signature', () => client.command('signature'));
}
