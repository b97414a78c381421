// Host-side filesystem images for `format` and `-w`, as the AOSP client makes
// them (fastboot v35 fs.cpp): ext4 with mke2fs and AOSP's arguments and
// mke2fs.conf settings, f2fs with the f2fs-tools mkfs and `-g android`.
// AOSP runs its own mke2fs with `-E android_sparse` and make_f2fs with
// `-S SIZE`; Debian's tools have neither, so miflash writes a raw image (a
// file with holes) and turns it into a sparse image itself: the holes (blocks
// the tool never wrote) become DONT_CARE, as in AOSP's sparse output.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BadInputError } from '../errors.js';
import { BlockListBuilder, type BlockImage } from '../sparse/blocks.js';
import { classifyBlocks, RAW_BLOCK_SIZE, readFullySync, yieldToEventLoop } from '../sparse/raw-scan.js';

export type FsType = 'ext4' | 'f2fs';
export const FS_TYPES: readonly FsType[] = ['ext4', 'f2fs'];

/** AOSP --fs-options. */
export interface FsOptions {
  casefold?: boolean;
  projid?: boolean;
  compress?: boolean;
}

/** The tools, in the order they are looked for (AOSP's own names first, then Debian's). */
const TOOLS: Record<FsType, string[]> = {
  ext4: ['mke2fs'],
  f2fs: ['make_f2fs', 'mkfs.f2fs'],
};
const PACKAGES: Record<FsType, string> = { ext4: 'e2fsprogs', f2fs: 'f2fs-tools' };

/**
 * The ext4 defaults of the mke2fs.conf AOSP ships beside fastboot: no
 * orphan_file / metadata_csum (newer e2fsprogs defaults older Android kernels
 * cannot mount), 256-byte inodes, one inode per 16 KiB, 1% reserved.
 */
const MKE2FS_CONF = `[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 1.0

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,64bit,dir_nlink,extra_isize,uninit_bg
\t\tlazy_journal_init = 1
\t\tinode_size = 256
\t}
`;

/** The host tool cannot make the filesystem (missing, or it failed). */
export class FilesystemToolError extends BadInputError {
  constructor(message: string, opts: { hint?: string; code?: string } = {}) {
    super(message, { code: opts.code ?? 'host.mkfs', ...(opts.hint ? { hint: opts.hint } : {}) });
  }
}

/** Where tools are looked for: $PATH, then the sbin folders a non-root PATH often lacks. */
export function defaultSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
}

/** The first of `names` found executable in `dirs`. */
export async function findTool(names: readonly string[], dirs: readonly string[] = defaultSearchPath()): Promise<string | undefined> {
  for (const name of names) {
    for (const dir of dirs) {
      const p = join(dir, name);
      if (await access(p, constants.X_OK).then(() => true, () => false)) return p;
    }
  }
  return undefined;
}

export async function findGenerator(type: string, searchPath?: readonly string[]): Promise<string | undefined> {
  if (!(FS_TYPES as readonly string[]).includes(type)) return undefined;
  return findTool(TOOLS[type as FsType], searchPath);
}

export function missingToolError(type: FsType): FilesystemToolError {
  return new FilesystemToolError(`cannot make a ${type} filesystem: ${TOOLS[type].join(' / ')} is not installed`, {
    code: 'host.mkfs-missing',
    hint: `install ${PACKAGES[type]} (Debian/Ubuntu: apt-get install ${PACKAGES[type]}); nothing has been written to the device`,
  });
}

/** The mke2fs arguments of AOSP generate_ext4_image, minus android_sparse. */
export function mke2fsArgs(file: string, size: number, eraseBlockSize: number, logicalBlockSize: number, o: FsOptions = {}): string[] {
  const blockSize = 4096;
  const args = ['-t', 'ext4', '-b', String(blockSize)];
  const ext: string[] = [];
  if (eraseBlockSize !== 0 && logicalBlockSize !== 0) {
    // stride: the larger of 8 KiB and the logical block size; stripe width at least the stride.
    const stride = (logicalBlockSize < 8192 ? 8192 : logicalBlockSize) / blockSize;
    const stripe = Math.max(eraseBlockSize / blockSize, stride);
    ext.push(`stride=${Math.floor(stride)}`, `stripe-width=${Math.floor(stripe)}`);
  }
  if (o.casefold) ext.push('encoding=utf8');
  if (ext.length > 0) args.push('-E', ext.join(','));
  args.push('-O', 'uninit_bg');
  if (o.projid) args.push('-I', '512');
  if (o.casefold) args.push('-O', 'casefold');
  args.push('-q', '-F', file, String(Math.floor(size / blockSize)));
  return args;
}

/** The mkfs.f2fs arguments of AOSP generate_f2fs_image (the size comes from the file's length instead of -S). */
export function mkf2fsArgs(file: string, o: FsOptions = {}): string[] {
  const args = ['-g', 'android'];
  if (o.projid) args.push('-O', 'project_quota,extra_attr');
  if (o.casefold) args.push('-O', 'casefold', '-C', 'utf8');
  if (o.compress) args.push('-O', 'compression', '-O', 'extra_attr');
  args.push('-q', '-f', file);
  return args;
}

function run(tool: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => reject(new FilesystemToolError(`${tool}: ${err.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new FilesystemToolError(`${tool} ${args.join(' ')} failed with status ${code}: ${out.trim().split('\n').slice(-3).join(' / ')}`));
    });
  });
}

export interface GeneratedImage {
  /** Raw image file (holes where nothing was written). */
  path: string;
  /** The blocks to send: zero blocks left out (DONT_CARE). */
  image: BlockImage;
  /** Removes the temporary folder. */
  cleanup(): Promise<void>;
}

/** AOSP fs_generator_generate: a filesystem of `size` bytes in a temporary file. */
export async function generateFilesystem(
  type: FsType,
  size: number,
  o: { eraseBlockSize?: number; logicalBlockSize?: number; fsOptions?: FsOptions; tmpDir?: string; searchPath?: readonly string[] } = {},
): Promise<GeneratedImage> {
  if (!Number.isSafeInteger(size) || size < RAW_BLOCK_SIZE) throw new BadInputError(`cannot make a ${type} filesystem of ${size} bytes`);
  const tool = await findGenerator(type, o.searchPath);
  if (!tool) throw missingToolError(type);
  const dir = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'miflash-mkfs-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, `${type}.img`);
    const env = { ...process.env };
    if (type === 'ext4') {
      const conf = join(dir, 'mke2fs.conf');
      await writeFile(conf, MKE2FS_CONF);
      env.MKE2FS_CONFIG = conf;
      await run(tool, mke2fsArgs(file, size, o.eraseBlockSize ?? 0, o.logicalBlockSize ?? 0, o.fsOptions), env);
    } else {
      // A file of the partition's size, all holes: mkfs.f2fs sizes the filesystem from it.
      const fh = await open(file, 'w');
      await fh.truncate(size);
      await fh.close();
      await run(tool, mkf2fsArgs(file, o.fsOptions), env);
    }
    return { path: file, image: await blocksSkippingZeros(file, o.searchPath), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Where the file has data, from the extent map `filefrag -e` prints (e2fsprogs,
 * installed wherever mke2fs is): a fresh 100 GiB userdata image is almost all
 * holes, and reading them back as zeros would take minutes. undefined when the
 * map cannot be had (no filefrag, a host filesystem without FIEMAP): then the
 * whole file is scanned.
 */
export async function dataRanges(path: string, size: number, searchPath?: readonly string[]): Promise<Array<[number, number]> | undefined> {
  const tool = await findTool(['filefrag'], searchPath);
  if (!tool) return undefined;
  const out = await new Promise<string | undefined>((resolve) => {
    const child = spawn(tool, ['-e', '-b4096', path], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', () => resolve(undefined));
    child.once('close', (code) => resolve(code === 0 ? text : undefined));
  });
  if (out === undefined || !/blocks of 4096 bytes/.test(out)) return undefined;
  const ranges: Array<[number, number]> = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+\d+\.\.\s*\d+:\s+(\d+):.*?$/.exec(line);
    if (!m) continue;
    const start = Number(m[1]) * RAW_BLOCK_SIZE;
    const end = Math.min(size, (Number(m[2]) + 1) * RAW_BLOCK_SIZE);
    if (start < end) ranges.push([start, end]);
  }
  return ranges.sort((a, b) => a[0] - b[0]);
}

/**
 * The block model of a generated image: holes (never written by the tool) are
 * left out, so they go as DONT_CARE, as in AOSP's sparse output; blocks the
 * tool wrote, zeros included (f2fs zero-fills its SIT and NAT areas on
 * purpose), are kept: FILL for uniform blocks, data otherwise. Without an
 * extent map the whole file counts as written (libsparse's plain import).
 */
export async function blocksSkippingZeros(path: string, searchPath?: readonly string[]): Promise<BlockImage> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const ranges = (await dataRanges(path, size, searchPath)) ?? [[0, size]];
    const builder = new BlockListBuilder(RAW_BLOCK_SIZE);
    const buf = Buffer.allocUnsafe(128 * 1024);
    let sinceYield = 0;
    for (const [start, end] of ranges) {
      for (let offset = start; offset < end; ) {
        const length = readFullySync(fh.fd, buf, Math.min(buf.length, end - offset), offset);
        for (const r of classifyBlocks(buf, length)) {
          const at = offset + r.from;
          if (r.kind === 'fill') builder.addFill(at / RAW_BLOCK_SIZE, r.to - r.from, r.value);
          else builder.addFile(at / RAW_BLOCK_SIZE, r.to - r.from, at);
        }
        offset += length;
        sinceYield += length;
        if (sinceYield >= 16 * 1024 * 1024) {
          sinceYield = 0;
          await yieldToEventLoop();
        }
      }
    }
    return { blockSize: RAW_BLOCK_SIZE, len: size, blocks: builder.blocks };
  } finally {
    await fh.close();
  }
}
