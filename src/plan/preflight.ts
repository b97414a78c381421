// ROM-side checks that must all pass before the first device operation:
// every image the plan sends exists and is readable, sparse images are valid,
// and images match md5sum.xml, crclist.txt and sparsecrclist.txt (CRC and the
// piece count at the download limit that will be used). Files are streamed.
import { constants } from 'node:fs';
import { availableParallelism } from 'node:os';
import { access, realpath, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { BadInputError, GateRefusedError, MiflashError } from '../errors.js';
import { DigestCache, identityOf } from '../rom/digest-cache.js';
import { joinDigests, type FileDigest } from '../rom/hash.js';
import { hashPool } from '../rom/hash-pool.js';
import type { Rom } from '../rom/rom.js';
import { countPieces } from '../sparse/prepare.js';
import { isSparseFile, readSparseFile } from '../sparse/file.js';
import type { FlashPlan } from './schema.js';

export interface PreflightOptions {
  /** Piece-count limit: the max-download-size (or -S) the runner will use. */
  limit: number;
  onProgress?: (p: { file: string; done: number; total: number }) => void;
  /** Also check images of foreign steps (only when the user opted in to run them). */
  includeForeign?: boolean;
  /** Digests of images read before (default: the user's cache, digest-cache.ts). */
  digestCache?: DigestCache;
  /** Read every image, listed in a checksum file or not (the resume journal records each flashed image's MD5). */
  digestAll?: boolean;
}

export interface ImageCheck {
  /** Relative to the ROM root. */
  file: string;
  partitions: string[];
  size: number;
  sparse: boolean;
  md5?: 'ok';
  crc?: 'ok';
  sparseCrc?: 'ok';
  /** Pieces at the limit, when sparsecrclist lists a partition of this file. */
  pieces?: number;
  /** The file's MD5 as read now (whenever it was read: a checksum list names it, or digestAll). */
  digest?: { md5: string; size: number };
}

export interface PreflightResult {
  images: ImageCheck[];
  warnings: string[];
}

/** An image is missing, unreadable or not a valid image. */
export class RomImageError extends BadInputError {
  readonly file: string;
  readonly partition?: string;
  constructor(file: string, partition: string | undefined, why: string, opts: { code?: string; cause?: unknown } = {}) {
    super(`${file}${partition ? ` (partition ${partition})` : ''}: ${why}`, {
      code: opts.code ?? 'rom.image-invalid',
      hint: 're-extract or re-download the ROM; nothing has been written to the device',
      cause: opts.cause,
    });
    this.file = file;
    if (partition !== undefined) this.partition = partition;
  }
}

/** An image does not match the package's own checksum lists. */
export class RomChecksumError extends GateRefusedError {
  readonly file: string;
  readonly partition?: string;
  readonly expected: string;
  readonly found: string;
  constructor(code: string, file: string, partition: string | undefined, what: string, expected: string, found: string, hint?: string) {
    super(`${file}${partition ? ` (partition ${partition})` : ''}: ${what} mismatch: expected ${expected}, found ${found}`, {
      code,
      hint: hint ?? 'the ROM is corrupted or was modified; re-download it. Nothing has been written to the device',
    });
    this.file = file;
    if (partition !== undefined) this.partition = partition;
    this.expected = expected;
    this.found = found;
  }
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** Files the plan sends, with the partitions each feeds, in plan order. */
export function planImages(plan: FlashPlan, opts: { includeForeign?: boolean } = {}): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of plan.steps) {
    if (s.kind !== 'flash' && s.kind !== 'update') continue;
    if (s.foreign && !opts.includeForeign) continue;
    const parts = out.get(s.file) ?? [];
    if (s.kind === 'flash' && !parts.includes(s.partition)) parts.push(s.partition);
    out.set(s.file, parts);
  }
  return out;
}

/**
 * The file's real path must stay inside the ROM's real root: the plan's names
 * cannot hold `..`, but a symlink inside the ROM could still point anywhere.
 * Returns the real path.
 */
export async function assertInsideRom(rom: Rom, file: string, partition?: string): Promise<string> {
  const [root, real] = await Promise.all([realpath(rom.root), realpath(join(rom.root, file))]);
  const rel = relative(root, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new RomImageError(file, partition, `resolves to ${real}, outside the ROM (${root}); miflash only sends files inside the ROM folder`, {
      code: 'rom.image-outside',
    });
  }
  return real;
}

/**
 * Every image the plan sends, checked. Images are digested in worker threads,
 * several at once, largest first (the longest read starts at once); a digest
 * remembered from an earlier run of the same unchanged file is not read again.
 */
export async function checkRomImages(rom: Rom, plan: FlashPlan, opts: PreflightOptions): Promise<PreflightResult> {
  const warnings: string[] = [];
  const cache = opts.digestCache ?? new DigestCache();
  const listed = [...planImages(plan, opts)].map(([file, partitions]) => ({ file, partitions, path: join(rom.root, file) }));
  // An update step may name a product folder (flashall): its images are checked by checkUpdateZip.
  const isFolder = await Promise.all(listed.map((f) => (f.partitions.length === 0 ? stat(f.path).then((st) => st.isDirectory(), () => false) : false)));
  const folders: ImageCheck[] = [];
  for (const [i, f] of listed.entries()) {
    if (!isFolder[i]) continue;
    await assertInsideRom(rom, f.file);
    folders.push({ file: f.file, partitions: f.partitions, size: 0, sparse: false });
  }
  const files = listed.filter((_, i) => !isFolder[i]);
  // 1. Cheap checks (exists, inside the ROM, readable), and which files need reading.
  const found = await Promise.allSettled(files.map((f) => locate(rom, f.file, f.partitions[0], f.path)));
  const needs = files.map((f, i) => found[i]!.status === 'fulfilled' && (Boolean(opts.digestAll) || needsDigest(rom, f.file, f.partitions)));
  // 2. Digests: cached, or read by the worker pool in order of decreasing size.
  const digests = new Map<number, Promise<FileDigest>>();
  const order = files.map((_, i) => i).filter((i) => needs[i]);
  const cached = await Promise.all(order.map((i) => located(found[i]!).then((l) => cache.get(l.real, l.id))));
  const misses = order.filter((_, k) => !cached[k]);
  order.forEach((i, k) => cached[k] && digests.set(i, Promise.resolve(cached[k]!)));
  misses.sort((a, b) => Number(located(found[b]!, true).id.size) - Number(located(found[a]!, true).id.size));
  for (const i of misses) {
    const f = files[i]!;
    const l = located(found[i]!, true);
    const total = Number(l.id.size);
    const job = digestSplit(f.path, total, (done) => opts.onProgress?.({ file: f.file, done, total }))
      .then(async (d) => {
        opts.onProgress?.({ file: f.file, done: total, total });
        // Remembered only if the file is still the version that was read.
        const after = identityOf(await stat(f.path, { bigint: true }));
        if (JSON.stringify(after, bigintJson) === JSON.stringify(l.id, bigintJson)) cache.put(l.real, l.id, d);
        return d;
      });
    job.catch(() => {});
    digests.set(i, job);
  }
  // 3. Each file against the lists, in plan order.
  const expected = (err: unknown) => err instanceof BadInputError || err instanceof GateRefusedError;
  const outcomes = await Promise.allSettled(
    files.map(async (f, i) => {
      await located(found[i]!);
      return evaluate(rom, f.file, f.partitions, digests.get(i), opts, warnings).catch((err: unknown) => {
        if (!expected(err)) hashPool().close(); // Ctrl-C or a bug: stop the reads still running, now
        throw err;
      });
    }),
  );
  const unexpected = outcomes.find((o) => o.status === 'rejected' && !expected(o.reason));
  if (unexpected) throw (unexpected as PromiseRejectedResult).reason;
  hashPool().release(); // the flash that follows needs the memory more than idle workers
  await cache.save();
  const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as MiflashError] : []));
  if (failures.length > 0) {
    const first = failures[0]!;
    if (failures.length > 1) {
      first.message = `${first.message} (and ${failures.length - 1} more: ${failures
        .slice(1)
        .map((f) => f.message)
        .join('; ')})`;
    }
    throw first;
  }
  return { images: [...outcomes.map((o) => (o as PromiseFulfilledResult<ImageCheck>).value), ...folders], warnings };
}

/** Files this large are digested by two workers at once: one the MD5 (the slow part), the other the CRCs. */
const SPLIT_AT = 64 << 20;

/**
 * MD5 runs at ~0.6 GB/s on one core and cannot be split within a file; the CRCs
 * (~3 GB/s) can go to another core, so a big image costs its MD5 alone. Progress
 * follows the MD5 half.
 */
function digestSplit(path: string, size: number, onProgress: (done: number) => void): Promise<FileDigest> {
  const pool = hashPool();
  if (size < SPLIT_AT || availableParallelism() < 2) return pool.digestFile(path, { onProgress });
  const md5 = pool.digestFile(path, { md5Only: true, onProgress });
  const rest = pool.digestFile(path, { skipMd5: true });
  rest.catch(() => {});
  return Promise.all([md5, rest]).then(([a, b]) => joinDigests(a, b));
}

const bigintJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? String(v) : v);

interface Located {
  real: string;
  id: ReturnType<typeof identityOf>;
}

function located(r: PromiseSettledResult<Located>): Promise<Located>;
function located(r: PromiseSettledResult<Located>, sync: true): Located;
function located(r: PromiseSettledResult<Located>, sync?: true): Promise<Located> | Located {
  if (sync) return (r as PromiseFulfilledResult<Located>).value;
  return r.status === 'fulfilled' ? Promise.resolve(r.value) : Promise.reject(r.reason as Error);
}

/** Exists, is a regular file inside the ROM, readable. */
async function locate(rom: Rom, file: string, first: string | undefined, path: string): Promise<Located> {
  const st = await stat(path, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw new RomImageError(file, first, err.code === 'ENOENT' ? 'missing from the ROM' : `cannot stat (${err.message})`, {
      code: 'rom.image-missing',
      cause: err,
    });
  });
  if (!st.isFile()) throw new RomImageError(file, first, 'not a regular file', { code: 'rom.image-missing' });
  const real = await assertInsideRom(rom, file, first);
  await access(path, constants.R_OK).catch((err: Error) => {
    throw new RomImageError(file, first, `not readable (${err.message})`, { code: 'rom.image-unreadable', cause: err });
  });
  return { real, id: identityOf(st) };
}

/** md5sum.xml names bare files of images/. */
function md5NameOf(file: string): string | undefined {
  return file.startsWith('images/') && !file.slice(7).includes('/') ? basename(file) : undefined;
}

/** Does any list give this file a checksum (so its bytes must be read)? */
function needsDigest(rom: Rom, file: string, partitions: string[]): boolean {
  const name = md5NameOf(file);
  if (name !== undefined && rom.md5?.has(name)) return true;
  return partitions.some((p) => rom.crcList?.has(p) || (rom.sparseCrcList?.get(p) !== undefined && 'crc' in rom.sparseCrcList.get(p)!));
}

async function evaluate(rom: Rom, file: string, partitions: string[], pending: Promise<FileDigest> | undefined, opts: PreflightOptions, warnings: string[]): Promise<ImageCheck> {
  const path = join(rom.root, file);
  const first = partitions[0];
  const digest = pending ? await pending.catch((err: NodeJS.ErrnoException) => {
    if (err instanceof MiflashError) throw err;
    throw new RomImageError(file, first, `cannot read (${err.message})`, { code: 'rom.image-unreadable', cause: err });
  }) : undefined;
  let sparse: boolean;
  if (digest) {
    sparse = digest.sparse !== undefined;
    if (digest.sparse && !digest.sparse.valid) {
      await readSparseFile(path); // throws SparseFormatError (bad input) naming the file
      throw new RomImageError(file, first, `not a valid sparse image (${digest.sparse.error})`, { code: 'rom.image-invalid' });
    }
  } else {
    sparse = await isSparseFile(path);
    if (sparse) await readSparseFile(path); // throws SparseFormatError (bad input) naming the file
  }
  const check: ImageCheck = { file, partitions, size: digest?.size ?? (await stat(path)).size, sparse };
  if (digest) check.digest = { md5: digest.md5, size: digest.size };

  const md5Name = md5NameOf(file);
  const wantMd5 = md5Name !== undefined ? rom.md5?.get(md5Name) : undefined;
  const crcParts = partitions.filter((p) => rom.crcList?.has(p));
  if (wantMd5 !== undefined && digest) {
    if (digest.md5 !== wantMd5) throw new RomChecksumError('rom.md5-mismatch', file, first, 'MD5 (md5sum.xml)', wantMd5, digest.md5);
    check.md5 = 'ok';
  }
  for (const p of crcParts) {
    const want = rom.crcList!.get(p)!;
    if (digest!.crc32 !== want) throw new RomChecksumError('rom.crc-mismatch', file, p, 'CRC-32 (images/crclist.txt)', hex(want), hex(digest!.crc32));
    check.crc = 'ok';
  }
  for (const p of partitions) {
    const entry = rom.sparseCrcList?.get(p);
    if (!entry) continue;
    if (!sparse) throw new RomChecksumError('rom.sparse-crc-mismatch', file, p, 'format (images/sparsecrclist.txt lists a sparse image)', 'sparse image', 'raw image');
    if ('crc' in entry) {
      const found = digest!.sparse!.valid ? digest!.sparse!.crc : 0;
      if (found !== entry.crc) throw new RomChecksumError('rom.sparse-crc-mismatch', file, p, 'sparse CRC-32 (images/sparsecrclist.txt)', hex(entry.crc), hex(found));
      check.sparseCrc = 'ok';
    } else {
      warnings.push(`${file}: per-piece CRCs in sparsecrclist.txt are not verified on the host; piece count only`);
    }
    check.pieces ??= await countPieces(path, opts.limit);
    if (check.pieces !== entry.count) {
      throw new RomChecksumError(
        'rom.piece-count-mismatch',
        file,
        p,
        `piece count at a ${opts.limit}-byte download limit (images/sparsecrclist.txt)`,
        String(entry.count),
        String(check.pieces),
        // The count depends on the split size: a -S value or a device limit other than the
        // one the ROM was built for (512 MiB) changes it, and the bootloader would refuse the pieces.
        `the bootloader checks that this image arrives as exactly ${entry.count} pieces; with a download limit of ${opts.limit} bytes ` +
          'it would arrive as a different number. If you passed -S, drop it (or use -S 512M, the size Xiaomi ROMs are built for); ' +
          'otherwise the ROM does not match this device or was modified. Nothing has been written to the device',
      );
    }
  }
  return check;
}
