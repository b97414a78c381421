// Opening a ROM: a folder (or its one nested `<name>/` level, as Xiaomi
// archives have), a .tgz/.tar.gz/.tar or a .zip (extracted into a cache beside
// it, or under --cache DIR, and reused when complete). Finds the flash scripts
// of every variant and the side-car files.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, realpath, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from '../zod.js';
import { BadInputError } from '../errors.js';
import type { PlanMode } from '../plan/schema.js';
// archive.ts (zlib, crypto, tar) loads only when an archive is opened: a folder needs none of it.
import type { ProgressFn } from './archive.js';
import type { FileDigest } from './hash.js';
import { modeFromName } from './script/common.js';
import {
  parseAntiVersion,
  parseCrcList,
  parseMd5Xml,
  parseMisc,
  parseSparseCrcList,
  type AndroidInfo,
  parseAndroidInfo,
  type SparseCrcEntry,
} from './sidecar.js';

export interface RomScript {
  /** Absolute path. */
  path: string;
  /** File name relative to the ROM root (`flash_all_lock.bat`). */
  name: string;
  dialect: 'sh' | 'bat';
  mode: PlanMode;
  /** Base name without extension (`flash_all_except_storage`): twins share it. */
  variant: string;
}

export interface Rom {
  /** Absolute folder holding the scripts (and images/). */
  root: string;
  imagesDir: string;
  scripts: RomScript[];
  misc?: Record<string, string>;
  /** md5sum.xml: bare file name → hex digest. */
  md5?: Map<string, string>;
  /** images/crclist.txt: partition → CRC-32 of the whole file. */
  crcList?: Map<string, number>;
  /** images/sparsecrclist.txt: partition → sparse CRC + piece count (or per-piece CRCs). */
  sparseCrcList?: Map<string, SparseCrcEntry>;
  /** images/anti_version.txt. */
  antiVersion?: number;
  /** md5sum.xml PLATFORM_SECURITY_PATCH. */
  securityPatchLevel?: string;
  /** android-info.txt next to the scripts (Google images inside update zips are read at plan time). */
  androidInfo?: AndroidInfo;
  source: { kind: 'folder' | 'tgz' | 'tar' | 'zip'; input: string; cache?: string; reused?: boolean };
}

export interface OpenRomOptions {
  /** Folder under which archives are extracted (default: beside the archive). */
  cache?: string;
  onProgress?: ProgressFn;
}

const SCRIPT_RE = /^(flash_all[A-Za-z0-9_]*|flash-all|flash-base)\.(sh|bat|cmd)$/i;

export async function openRom(input: string, opts: OpenRomOptions = {}): Promise<Rom> {
  const abs = resolve(input);
  const st = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    throw new BadInputError(`${input}: ${err.code === 'ENOENT' ? 'no such file or folder' : err.message}`, { code: 'rom.not-found' });
  });
  if (st.isDirectory()) return readRomFolder(await findRoot(abs, input), { kind: 'folder', input: abs });
  const kind = archiveKind(abs);
  if (!kind) throw new BadInputError(`${input}: not a folder, .tgz, .tar.gz, .tar or .zip`, { code: 'rom.unknown-format' });
  const { dir, reused } = await extractCached(abs, kind, opts);
  return readRomFolder(await findRoot(dir, input), { kind, input: abs, cache: dir, reused });
}

function archiveKind(path: string): 'tgz' | 'tar' | 'zip' | undefined {
  if (/\.(tgz|tar\.gz)$/i.test(path)) return 'tgz';
  if (/\.tar$/i.test(path)) return 'tar';
  if (/\.zip$/i.test(path)) return 'zip';
  return undefined;
}

function archiveBase(path: string): string {
  return basename(path).replace(/\.(tgz|tar\.gz|tar|zip)$/i, '');
}

const MarkerSchema = z.object({
  archive: z.string(),
  size: z.number(),
  mtimeMs: z.number(),
  md5Checked: z.boolean(),
});
const MARKER = '.miflash-extracted.json';

/**
 * Extract into `<cache or archive dir>/<archive name>.miflash/`, through a
 * temporary sibling renamed on success, so a folder with the marker is always
 * complete. A marker matching the archive's name, size and mtime is reused.
 */
async function extractCached(archive: string, kind: 'tgz' | 'tar' | 'zip', opts: OpenRomOptions): Promise<{ dir: string; reused: boolean }> {
  const { estimateExtractedSize, extractTar, extractZip, md5PrefixFromName } = await import('./archive.js');
  const base = archiveBase(archive);
  const dir = join(opts.cache ? resolve(opts.cache) : dirname(archive), `${base}.miflash`);
  const st = await stat(archive);
  const md5Prefix = md5PrefixFromName(archive);
  const marker = await readFile(join(dir, MARKER), 'utf8')
    .then((t) => MarkerSchema.safeParse(JSON.parse(t)))
    .catch(() => undefined);
  if (
    marker?.success &&
    marker.data.archive === basename(archive) &&
    marker.data.size === st.size &&
    marker.data.mtimeMs === st.mtimeMs &&
    (marker.data.md5Checked || !md5Prefix)
  ) {
    return { dir, reused: true };
  }
  await rm(dir, { recursive: true, force: true });
  const need = await estimateExtractedSize(archive);
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const free = await statfs(parent).then((s) => s.bavail * s.bsize);
  if (need > free) {
    throw new BadInputError(
      `${archive}: extracting needs about ${mib(need)} but ${parent} has ${mib(free)} free`,
      { code: 'rom.no-space', hint: 'free some space or extract elsewhere with --cache DIR' },
    );
  }
  const tmp = `${dir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    const xo = { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(md5Prefix ? { md5Prefix } : {}) };
    let digests: Map<string, FileDigest> | undefined;
    if (kind === 'zip') await extractZip(archive, tmp, xo);
    else ({ digests } = await extractTar(archive, tmp, xo));
    await writeFile(
      join(tmp, MARKER),
      JSON.stringify({ archive: basename(archive), size: st.size, mtimeMs: st.mtimeMs, md5Checked: md5Prefix !== undefined }) + '\n',
    );
    await rename(tmp, dir);
    if (digests) await rememberDigests(dir, digests);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { dir, reused: false };
}

/** The files were hashed as they were written: checking them before a flash need not read them again. */
async function rememberDigests(dir: string, digests: Map<string, FileDigest>): Promise<void> {
  const { DigestCache, identityOf } = await import('./digest-cache.js');
  const cache = new DigestCache();
  const real = await realpath(dir);
  await Promise.all(
    [...digests].map(async ([rel, digest]) => {
      const path = join(real, rel);
      cache.put(path, identityOf(await stat(path, { bigint: true })), digest);
    }),
  );
  await cache.save();
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Synchronous, like the side-car reads: a ROM folder lists in microseconds, a thread-pool round trip costs more. */
function listDir(dir: string): Array<{ name: string; dir: boolean }> {
  return readdirSync(dir, { withFileTypes: true }).map((e) => ({ name: e.name, dir: e.isDirectory() }));
}

function looksLikeRoot(ents: Array<{ name: string; dir: boolean }>): boolean {
  return ents.some((e) => !e.dir && SCRIPT_RE.test(e.name)) || ents.some((e) => e.dir && e.name === 'images');
}

/** The folder itself, or its single child folder that looks like a ROM (`<name>/images`). */
async function findRoot(dir: string, input: string): Promise<string> {
  const ents = listDir(dir);
  if (looksLikeRoot(ents)) return dir;
  const candidates: string[] = [];
  for (const e of ents) {
    if (!e.dir || e.name.startsWith('.')) continue;
    if (looksLikeRoot(listDir(join(dir, e.name)))) candidates.push(join(dir, e.name));
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length > 1) {
    throw new BadInputError(`${input}: several ROMs inside (${candidates.map((c) => basename(c)).join(', ')}); pass one of them`, {
      code: 'rom.ambiguous',
    });
  }
  throw new BadInputError(`${input}: no flash_all*.sh/.bat/.cmd script or images/ folder here or one level down`, {
    code: 'rom.not-a-rom',
    hint: 'pass the folder that contains flash_all.sh and images/',
  });
}

/** A side-car file (a few KiB): read synchronously, as a thread-pool round trip each costs more than the read. */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BadInputError(`${path}: cannot read (${(err as Error).message})`, { code: 'rom.unreadable' });
  }
}

async function readRomFolder(root: string, source: Rom['source']): Promise<Rom> {
  const ents = listDir(root);
  const scripts: RomScript[] = ents
    .filter((e) => !e.dir && SCRIPT_RE.test(e.name))
    .map((e) => {
      const dialect = /\.sh$/i.test(e.name) ? ('sh' as const) : ('bat' as const);
      return { path: join(root, e.name), name: e.name, dialect, mode: modeFromName(e.name), variant: e.name.replace(/\.(sh|bat|cmd)$/i, '') };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const imagesDir = join(root, 'images');
  const rom: Rom = { root, imagesDir, scripts, source };
  const misc = readOptional(join(root, 'misc.txt'));
  if (misc !== undefined) rom.misc = parseMisc(misc, join(root, 'misc.txt'));
  const md5 = readOptional(join(root, 'md5sum.xml'));
  if (md5 !== undefined) {
    const m = parseMd5Xml(md5, join(root, 'md5sum.xml'));
    rom.md5 = m.digests;
    if (m.securityPatchLevel) rom.securityPatchLevel = m.securityPatchLevel;
  }
  const crc = readOptional(join(imagesDir, 'crclist.txt'));
  if (crc !== undefined) rom.crcList = parseCrcList(crc, join(imagesDir, 'crclist.txt'));
  const scrc = readOptional(join(imagesDir, 'sparsecrclist.txt'));
  if (scrc !== undefined) rom.sparseCrcList = parseSparseCrcList(scrc, join(imagesDir, 'sparsecrclist.txt'));
  const anti = readOptional(join(imagesDir, 'anti_version.txt'));
  if (anti !== undefined) rom.antiVersion = parseAntiVersion(anti, join(imagesDir, 'anti_version.txt'));
  const info = readOptional(join(root, 'android-info.txt'));
  if (info !== undefined) rom.androidInfo = parseAndroidInfo(info);
  return rom;
}

/** android-info.txt inside a Google `image-*.zip` (undefined when the zip has none). */
export async function readAndroidInfoFromZip(zipPath: string): Promise<AndroidInfo | undefined> {
  const yauzl = (await import('yauzl')).default;
  let zip: import('yauzl').ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true });
  } catch (err) {
    throw new BadInputError(`${zipPath}: not a readable zip (${(err as Error).message})`, { code: 'rom.archive-corrupt' });
  }
  try {
    return await new Promise<AndroidInfo | undefined>((res, rej) => {
      zip.on('entry', (e: import('yauzl').Entry) => {
        if (e.fileName !== 'android-info.txt') return zip.readEntry();
        if (e.uncompressedSize > 65536) return rej(new BadInputError(`${zipPath}: android-info.txt is implausibly large`));
        zip.openReadStream(e, (err, s) => {
          if (err) return rej(err);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => res(parseAndroidInfo(Buffer.concat(chunks).toString('utf8'))));
          s.on('error', rej);
        });
      });
      zip.once('end', () => res(undefined));
      zip.once('error', rej);
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}
