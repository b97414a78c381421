// ROM-side checks that must all pass before the first device operation:
// every image the plan sends exists and is readable, sparse images are valid,
// and images match md5sum.xml, crclist.txt and sparsecrclist.txt (CRC and the
// piece count at the download limit that will be used). Files are streamed.
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { BadInputError, GateRefusedError, type MiflashError } from '../errors.js';
import { digestFile, type FileDigest } from '../rom/hash.js';
import type { Rom } from '../rom/rom.js';
import { countPieces, isSparseFile, readSparseFile, sparseCrc } from '../sparse/index.js';
import type { FlashPlan } from './schema.js';

export interface PreflightOptions {
  /** Piece-count limit: the max-download-size (or -S) the runner will use. */
  limit: number;
  onProgress?: (p: { file: string; done: number; total: number }) => void;
  /** Also check images of foreign steps (only when the user opted in to run them). */
  includeForeign?: boolean;
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
 */
export async function assertInsideRom(rom: Rom, file: string, partition?: string): Promise<void> {
  const [root, real] = await Promise.all([realpath(rom.root), realpath(join(rom.root, file))]);
  const rel = relative(root, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new RomImageError(file, partition, `resolves to ${real}, outside the ROM (${root}); miflash only sends files inside the ROM folder`, {
      code: 'rom.image-outside',
    });
  }
}

export async function checkRomImages(rom: Rom, plan: FlashPlan, opts: PreflightOptions): Promise<PreflightResult> {
  const images: ImageCheck[] = [];
  const warnings: string[] = [];
  const failures: MiflashError[] = [];
  for (const [file, partitions] of planImages(plan, opts)) {
    try {
      images.push(await checkOne(rom, file, partitions, opts, warnings));
    } catch (err) {
      if (err instanceof BadInputError || err instanceof GateRefusedError) failures.push(err);
      else throw err;
    }
  }
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
  return { images, warnings };
}

async function checkOne(rom: Rom, file: string, partitions: string[], opts: PreflightOptions, warnings: string[]): Promise<ImageCheck> {
  const path = join(rom.root, file);
  const first = partitions[0];
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new RomImageError(file, first, err.code === 'ENOENT' ? 'missing from the ROM' : `cannot stat (${err.message})`, {
      code: 'rom.image-missing',
      cause: err,
    });
  });
  if (!st.isFile()) throw new RomImageError(file, first, 'not a regular file', { code: 'rom.image-missing' });
  await assertInsideRom(rom, file, first);
  await access(path, constants.R_OK).catch((err: Error) => {
    throw new RomImageError(file, first, `not readable (${err.message})`, { code: 'rom.image-unreadable', cause: err });
  });
  const sparse = await isSparseFile(path);
  if (sparse) await readSparseFile(path); // throws SparseFormatError (bad input) naming the file
  const check: ImageCheck = { file, partitions, size: st.size, sparse };

  const md5Name = file.startsWith('images/') && !file.slice(7).includes('/') ? basename(file) : undefined;
  const wantMd5 = md5Name !== undefined ? rom.md5?.get(md5Name) : undefined;
  const crcParts = partitions.filter((p) => rom.crcList?.has(p));
  let digest: FileDigest | undefined;
  if (wantMd5 !== undefined || crcParts.length > 0) {
    digest = await digestFile(path, (done) => opts.onProgress?.({ file, done, total: st.size }));
  }
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
      const found = await sparseCrc(path);
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
