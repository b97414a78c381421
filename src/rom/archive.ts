// Safe extraction of ROM archives (.tgz / .tar.gz / .tar and .zip). Every entry
// is checked before anything is written: no absolute paths, no `..`, no links
// whose target leaves the extraction folder, no device nodes. Data is streamed
// (multi-GB Xiaomi ROMs); the archive's MD5 is computed on the way through so
// the `_<10 hex>` name check costs no extra read for .tgz.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, stat, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, posix, relative, resolve, sep } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BadInputError, GateRefusedError } from '../errors.js';

export interface ExtractProgress {
  phase: 'verify' | 'extract';
  /** Bytes of the archive read so far (tgz) or of entry data written (zip). */
  done: number;
  total: number;
  entry?: string;
}
export type ProgressFn = (p: ExtractProgress) => void;

export class UnsafeArchiveError extends BadInputError {
  readonly entry: string;
  constructor(archive: string, entry: string, why: string) {
    super(`${archive}: refusing entry ${JSON.stringify(entry)}: ${why}`, {
      code: 'rom.archive-unsafe',
      hint: 'the archive tries to write outside its folder; it is not a genuine ROM package',
    });
    this.entry = entry;
  }
}

export class CorruptDownloadError extends GateRefusedError {
  constructor(archive: string, expected: string, found: string) {
    super(`${archive}: MD5 ${found} does not start with ${expected} (from the file name): corrupted download`, {
      code: 'rom.archive-md5-mismatch',
      hint: 'download the ROM again',
    });
  }
}

/** Xiaomi archive names end in `_<10 hex digits>`: the start of the archive's MD5. */
export function md5PrefixFromName(file: string): string | undefined {
  const base = file.replace(/^.*[\\/]/, '').replace(/\.(tgz|tar\.gz|tar|zip)$/i, '');
  const m = /_([0-9a-f]{10})$/i.exec(base);
  return m ? m[1]!.toLowerCase() : undefined;
}

/**
 * Validate an entry name and return its normalised relative path ('' for the root).
 * Refuses absolute paths, drive letters, backslash tricks and `..` anywhere.
 */
export function safeEntryPath(archive: string, name: string): string {
  if (name.includes('\0')) throw new UnsafeArchiveError(archive, name, 'NUL byte in the name');
  const n = name.replace(/\\/g, '/');
  if (n.startsWith('/') || /^[A-Za-z]:/.test(n)) throw new UnsafeArchiveError(archive, name, 'absolute path');
  const parts = n.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafeArchiveError(archive, name, 'path contains ".." and would escape the extraction folder');
  return parts.join('/');
}

/** A link at `entry` pointing at `target` must resolve inside the extraction root. */
export function checkLinkTarget(archive: string, entry: string, target: string): void {
  const t = target.replace(/\\/g, '/');
  if (t.startsWith('/') || /^[A-Za-z]:/.test(t)) throw new UnsafeArchiveError(archive, entry, `link to absolute path ${target}`);
  const resolved = posix.normalize(posix.join(posix.dirname(entry), t));
  if (resolved === '..' || resolved.startsWith('../')) throw new UnsafeArchiveError(archive, entry, `link target ${target} points outside the extraction folder`);
}

function inside(root: string, rel: string): string {
  const abs = resolve(root, rel);
  const r = relative(root, abs);
  if (r.startsWith('..') || isAbsolute(r)) throw new Error(`internal: ${rel} escapes ${root}`);
  return abs;
}

/** Counts and hashes bytes passing through. */
class Tap extends Transform {
  done = 0;
  constructor(
    private readonly hash: Hash | undefined,
    private readonly onBytes: (n: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash?.update(chunk);
    this.done += chunk.length;
    this.onBytes(this.done);
    cb(null, chunk);
  }
}

function checkMd5(archive: string, hash: Hash | undefined, expected: string | undefined): void {
  if (!hash || !expected) return;
  const found = hash.digest('hex');
  if (!found.startsWith(expected)) throw new CorruptDownloadError(archive, expected, found);
}

function throttle(fn: ProgressFn | undefined): ProgressFn {
  let last = 0;
  return (p) => {
    if (!fn) return;
    const now = Date.now();
    if (now - last >= 100 || p.done === p.total) {
      last = now;
      fn(p);
    }
  };
}

/** Extract a .tgz/.tar.gz/.tar into `dest` (which must be empty or missing). Returns the archive MD5 when checked. */
export async function extractTar(archive: string, dest: string, opts: { onProgress?: ProgressFn; md5Prefix?: string } = {}): Promise<void> {
  const { Parser } = await import('tar');
  const total = (await stat(archive)).size;
  const progress = throttle(opts.onProgress);
  const hash = opts.md5Prefix ? createHash('md5') : undefined;
  await mkdir(dest, { recursive: true });
  const links: Array<{ kind: 'symlink' | 'hard'; at: string; target: string }> = [];
  let failure: unknown;
  const pending: Promise<void>[] = [];
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      try {
        const rel = safeEntryPath(archive, entry.path);
        switch (entry.type) {
          case 'Directory':
            if (rel !== '') pending.push(mkdir(inside(dest, rel), { recursive: true }).then(() => undefined));
            entry.resume();
            return;
          case 'File':
          case 'OldFile':
          case 'ContiguousFile': {
            if (rel === '') throw new UnsafeArchiveError(archive, entry.path, 'file entry with an empty name');
            const abs = inside(dest, rel);
            const p = mkdir(dirname(abs), { recursive: true }).then(
              () =>
                new Promise<void>((res, rej) => {
                  const out = createWriteStream(abs, { flags: 'wx' });
                  out.on('error', rej);
                  out.on('close', () => res());
                  entry.pipe(out);
                }),
            );
            entry.pause();
            pending.push(p);
            return;
          }
          case 'SymbolicLink':
            checkLinkTarget(archive, rel, entry.linkpath ?? '');
            links.push({ kind: 'symlink', at: rel, target: entry.linkpath ?? '' });
            entry.resume();
            return;
          case 'Link': {
            const target = safeEntryPath(archive, entry.linkpath ?? '');
            links.push({ kind: 'hard', at: rel, target });
            entry.resume();
            return;
          }
          default:
            throw new UnsafeArchiveError(archive, entry.path, `entry type ${entry.type} is not allowed in a ROM`);
        }
      } catch (err) {
        failure ??= err;
        entry.resume();
      }
    },
  });
  parser.on('warn', (_code: string, message: string) => {
    failure ??= new BadInputError(`${archive}: damaged tar archive (${message})`, { code: 'rom.archive-corrupt' });
  });
  const tap = new Tap(hash, (done) => progress({ phase: 'extract', done, total }));
  const gz = /\.(tgz|gz)$/i.test(archive);
  try {
    if (gz) await pipeline(createReadStream(archive), tap, createGunzip(), parser);
    else await pipeline(createReadStream(archive), tap, parser);
  } catch (err) {
    throw failure ?? archiveError(archive, err);
  }
  await Promise.all(pending).catch((err) => {
    throw failure ?? archiveError(archive, err);
  });
  if (failure) throw failure;
  checkMd5(archive, hash, opts.md5Prefix);
  await makeLinks(archive, dest, links);
}

async function makeLinks(archive: string, dest: string, links: Array<{ kind: 'symlink' | 'hard'; at: string; target: string }>): Promise<void> {
  for (const l of links) {
    const abs = inside(dest, l.at);
    await mkdir(dirname(abs), { recursive: true });
    try {
      if (l.kind === 'symlink') await symlink(l.target, abs);
      else await link(inside(dest, l.target), abs);
    } catch (err) {
      throw archiveError(archive, err);
    }
  }
}

function archiveError(archive: string, err: unknown): BadInputError {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') return new BadInputError(`${archive}: disk full while extracting`, { code: 'rom.no-space', cause: err });
  if (err instanceof BadInputError) return err;
  return new BadInputError(`${archive}: cannot extract (${e?.message ?? String(err)})`, { code: 'rom.archive-corrupt', cause: err });
}

/** Extract a .zip (yauzl) into `dest`. Unix symlinks (mode 0120000) are checked like tar links. */
export async function extractZip(archive: string, dest: string, opts: { onProgress?: ProgressFn; md5Prefix?: string } = {}): Promise<void> {
  if (opts.md5Prefix) {
    const found = await md5File(archive, opts.onProgress);
    if (!found.startsWith(opts.md5Prefix)) throw new CorruptDownloadError(archive, opts.md5Prefix, found);
  }
  const progress = throttle(opts.onProgress);
  const { zip, entries } = await openZip(archive);
  // Check every name and link target before writing anything.
  const total = entries.reduce((n, e) => n + e.uncompressedSize, 0);
  const links: Array<{ kind: 'symlink' | 'hard'; at: string; target: string }> = [];
  const files: Array<{ e: import('yauzl').Entry; rel: string }> = [];
  const dirs: string[] = [];
  let done = 0;
  try {
    for (const e of entries) {
      const rel = safeEntryPath(archive, e.fileName);
      const mode = (e.externalFileAttributes >>> 16) & 0o170000;
      if (mode === 0o120000) {
        if (e.uncompressedSize > 4096) throw new UnsafeArchiveError(archive, e.fileName, 'symlink target is implausibly long');
        const chunks: Buffer[] = [];
        for await (const c of await zip.openReadStreamPromise(e)) chunks.push(c as Buffer);
        const target = Buffer.concat(chunks).toString('utf8');
        checkLinkTarget(archive, rel, target);
        links.push({ kind: 'symlink', at: rel, target });
      } else if (e.fileName.endsWith('/') || mode === 0o040000) dirs.push(rel);
      else if (mode === 0 || mode === 0o100000) files.push({ e, rel });
      else throw new UnsafeArchiveError(archive, e.fileName, `unix file type 0${mode.toString(8)} is not allowed in a ROM`);
    }
    await mkdir(dest, { recursive: true });
    for (const d of dirs) if (d !== '') await mkdir(inside(dest, d), { recursive: true });
    for (const f of files) {
      const abs = inside(dest, f.rel);
      await mkdir(dirname(abs), { recursive: true });
      const counter = new Tap(undefined, (n) => progress({ phase: 'extract', done: done + n, total, entry: f.rel }));
      await pipeline(await zip.openReadStreamPromise(f.e), counter, createWriteStream(abs, { flags: 'wx' }));
      done += counter.done;
    }
  } catch (err) {
    throw archiveError(archive, err);
  } finally {
    zip.close();
  }
  await makeLinks(archive, dest, links);
}

/** Streamed MD5 of a file. */
export async function md5File(path: string, onProgress?: ProgressFn): Promise<string> {
  const total = (await stat(path)).size;
  const progress = throttle(onProgress);
  const hash = createHash('md5');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let done = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      done += bytesRead;
      progress({ phase: 'verify', done, total });
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** Uncompressed size of the archive's contents: exact for zip; for gzip an estimate from ISIZE (mod 2^32). */
export async function estimateExtractedSize(archive: string): Promise<number> {
  const size = (await stat(archive)).size;
  if (/\.zip$/i.test(archive)) {
    const { zip, entries } = await openZip(archive);
    zip.close();
    return entries.reduce((n, e) => n + e.uncompressedSize, 0);
  }
  if (!/\.(tgz|gz)$/i.test(archive) || size < 18) return size;
  const fh = await open(archive, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, size - 4);
    // ISIZE is the true size mod 2^32; images compress little, so take the
    // smallest candidate that is not below 90% of the compressed size.
    let est = b.readUInt32LE(0);
    while (est < size * 0.9) est += 2 ** 32;
    return est;
  } finally {
    await fh.close();
  }
}

/** Open a zip and read its central directory; yauzl's own name refusals become UnsafeArchiveError. */
async function openZip(archive: string): Promise<{ zip: import('yauzl').ZipFile; entries: import('yauzl').Entry[] }> {
  const yauzl = (await import('yauzl')).default;
  let zip: import('yauzl').ZipFile;
  try {
    zip = await yauzl.openPromise(archive, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true });
  } catch (err) {
    throw new BadInputError(`${archive}: not a readable zip archive (${(err as Error).message})`, { code: 'rom.archive-corrupt', cause: err });
  }
  try {
    return { zip, entries: await allEntries(zip) };
  } catch (err) {
    zip.close();
    const m = /^(invalid relative path|absolute path): (.*)$/.exec((err as Error).message ?? '');
    if (m) throw new UnsafeArchiveError(archive, m[2]!, m[1] === 'absolute path' ? 'absolute path' : 'path contains ".." and would escape the extraction folder');
    throw archiveError(archive, err);
  }
}

/** Every central-directory entry (lazyEntries mode). */
function allEntries(zip: import('yauzl').ZipFile): Promise<import('yauzl').Entry[]> {
  return new Promise((res, rej) => {
    const out: import('yauzl').Entry[] = [];
    zip.on('entry', (e: import('yauzl').Entry) => {
      out.push(e);
      zip.readEntry();
    });
    zip.once('end', () => res(out));
    zip.once('error', rej);
    zip.readEntry();
  });
}

export { sep };
