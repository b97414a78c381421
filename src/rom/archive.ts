// Safe extraction of ROM archives (.tgz / .tar.gz / .tar and .zip). Every entry
// is checked before anything is written: no absolute paths, no `..`, no links
// whose target leaves the extraction folder, no device nodes. Data is streamed
// (multi-GB Xiaomi ROMs); the archive's MD5 is computed on the way through so
// the `_<10 hex>` name check costs no extra read for .tgz.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, createWriteStream, ftruncateSync, mkdirSync, openSync, write, writeSync } from 'node:fs';
import { link, mkdir, open, stat, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, posix, relative, resolve, sep } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import type { FileDigest } from './hash.js';
import type { DigestStream } from './hash-pool.js';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
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

/** Compressed bytes read at a time. */
const READ_SIZE = 512 << 10;
/** Inflated bytes per zlib call: large calls and large writes (16 KiB ones cost a third more time). */
const INFLATE_CHUNK = 512 << 10;
/** Bounds on what may be in flight: file writes, and bytes queued to each hashing worker. */
const MAX_WRITING = 4 << 20;
const MAX_HASHING = 512 << 10;
/** Inflated bytes between two young-generation collections (gc.ts). */
const GC_EVERY = 4 << 20;

export interface ExtractResult {
  /** Digests (hash.ts) of every regular file written, by path relative to `dest`, computed from the bytes as they were written. */
  digests: Map<string, FileDigest>;
}

/**
 * Extract a .tgz/.tar.gz/.tar into `dest` (which must be empty or missing).
 * One pass over the archive: while it is inflated and written (large positional
 * writes; all-zero pieces left as holes), worker threads hash the archive (its
 * name's MD5 prefix) and every file (MD5, CRC-32, sparse checks), so checking
 * the images afterwards reads nothing.
 */
export async function extractTar(archive: string, dest: string, opts: { onProgress?: ProgressFn; md5Prefix?: string } = {}): Promise<ExtractResult> {
  const [{ Parser }, { hashPool }, { garbageMeter }] = await Promise.all([import('tar/parse'), import('./hash-pool.js'), import('./gc.js')]);
  // One worker: it keeps up with the inflater (MD5 runs ~3x faster than inflate), and each costs ~10 MiB.
  const pool = hashPool(1);
  const total = (await stat(archive)).size;
  const progress = throttle(opts.onProgress);
  const archiveMd5 = opts.md5Prefix ? pool.stream(total, { md5Only: true }) : undefined;
  await mkdir(dest, { recursive: true });
  const links: Array<{ kind: 'symlink' | 'hard'; at: string; target: string }> = [];
  const digests = new Map<string, Promise<FileDigest>>();
  const writer = new FileWriter();
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
  };
  let current: DigestStream | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      try {
        const rel = safeEntryPath(archive, entry.path);
        switch (entry.type) {
          case 'Directory':
            if (rel !== '') mkdirSync(inside(dest, rel), { recursive: true });
            entry.resume();
            return;
          case 'File':
          case 'OldFile':
          case 'ContiguousFile': {
            if (rel === '') throw new UnsafeArchiveError(archive, entry.path, 'file entry with an empty name');
            const abs = inside(dest, rel);
            mkdirSync(dirname(abs), { recursive: true });
            const file = writer.open(abs);
            const digest = pool.stream(entry.size ?? 0);
            current = digest;
            entry.on('data', (c: Buffer) => {
              digest.write(c);
              writer.write(file, c);
            });
            entry.on('end', () => {
              digests.set(rel, digest.end());
              writer.close(file);
            });
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
        fail(err);
        entry.resume();
      }
    },
  });
  parser.on('warn', (_code: string, message: string) => {
    fail(new BadInputError(`${archive}: damaged tar archive (${message})`, { code: 'rom.archive-corrupt' }));
  });
  parser.on('error', fail);
  const gz = /\.(tgz|gz)$/i.test(archive);
  const gunzip = gz ? createGunzip({ chunkSize: INFLATE_CHUNK }) : undefined;
  const overloaded = () => writer.inFlight > MAX_WRITING || (current?.inFlight ?? 0) > MAX_HASHING;
  const settle = async () => {
    await writer.below(MAX_WRITING);
    await current?.below(MAX_HASHING);
  };
  // Inflated bytes go straight to the parser; a long run of well-compressed data pauses the inflater
  // until the writes and hashes in flight are back under their bounds.
  const collect = garbageMeter(GC_EVERY);
  gunzip?.on('data', (out: Buffer) => {
    parser.write(out);
    collect(out.length);
    if (!overloaded()) return;
    gunzip.pause();
    settle().then(
      () => gunzip.resume(),
      (err: unknown) => {
        fail(err);
        gunzip.resume();
      },
    );
  });
  gunzip?.on('error', fail);
  const inflated = gunzip ? once(gunzip, 'end').then(() => undefined, fail) : Promise.resolve();
  const feed = (chunk: Buffer) => (gunzip ? new Promise<void>((res) => gunzip.write(chunk, () => res())) : Promise.resolve(void parser.write(chunk)));
  const fh = await open(archive, 'r');
  try {
    // Two read buffers, reused: the next read fills one while the inflater still holds the other
    // (a plain .tar's bytes are written from the read buffer itself: fresh ones then).
    const bufs = [Buffer.allocUnsafe(READ_SIZE), Buffer.allocUnsafe(READ_SIZE)];
    let read = 0;
    let consumed: Promise<void> = Promise.resolve();
    for (let i = 0; ; i ^= 1) {
      const buf = gunzip ? bufs[i]! : Buffer.allocUnsafe(READ_SIZE);
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, null);
      await consumed; // the other buffer's bytes are inside zlib's state now
      if (failure) throw failure;
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      read += bytesRead;
      archiveMd5?.write(chunk);
      progress({ phase: 'extract', done: read, total });
      consumed = feed(chunk);
      await settle();
      await archiveMd5?.below(MAX_HASHING);
    }
    gunzip?.end();
    await inflated;
    if (failure) throw failure;
    parser.end();
    await writer.idle();
    if (failure) throw failure;
  } catch (err) {
    archiveMd5?.cancel();
    gunzip?.destroy();
    await writer.abort();
    throw archiveError(archive, failure ?? err);
  } finally {
    await fh.close();
  }
  const done = new Map<string, FileDigest>();
  for (const [rel, d] of digests) done.set(rel, await d);
  if (archiveMd5 && opts.md5Prefix) {
    const found = (await archiveMd5.end()).md5;
    if (!found.startsWith(opts.md5Prefix)) throw new CorruptDownloadError(archive, opts.md5Prefix, found);
  }
  pool.release();
  await makeLinks(archive, dest, links);
  return { digests: done };
}

/**
 * Positional writes on the thread pool, several in flight, bounded in bytes.
 * A piece that is all zeros is not written (a hole); the final size is set
 * when the file is closed, so the content is the same.
 */
class FileWriter {
  inFlight = 0;
  private waiters: Array<() => void> = [];
  private readonly open_ = new Set<WriterFile>();
  private error: unknown;

  open(path: string): WriterFile {
    const f: WriterFile = { fd: openSync(path, 'wx'), size: 0, pending: 0, holes: false, closed: false, onIdle: [] };
    this.open_.add(f);
    return f;
  }

  write(f: WriterFile, data: Buffer): void {
    const at = f.size;
    f.size += data.length;
    if (data.length >= 4096 && isZero(data)) {
      f.holes = true;
      return;
    }
    this.inFlight += data.length;
    f.pending++;
    write(f.fd, data, 0, data.length, at, (err, n) => {
      if (!err && n !== data.length) this.writeRest(f, data, at, n);
      else this.settle(f, data.length, err);
    });
  }

  /** A short write (rare): the rest, synchronously. */
  private writeRest(f: WriterFile, data: Buffer, at: number, done: number): void {
    let err: unknown;
    try {
      for (let n = done; n < data.length; ) n += writeSync(f.fd, data, n, data.length - n, at + n);
    } catch (e) {
      err = e;
    }
    this.settle(f, data.length, err as NodeJS.ErrnoException | null);
  }

  private settle(f: WriterFile, bytes: number, err: NodeJS.ErrnoException | null | undefined): void {
    this.inFlight -= bytes;
    f.pending--;
    if (err) this.error ??= err;
    if (f.pending === 0) for (const w of f.onIdle.splice(0)) w();
    const ready = this.waiters.splice(0);
    ready.forEach((w) => w());
  }

  /** After the last byte: once its writes are done, the size (for trailing holes) and close. */
  close(f: WriterFile): void {
    const finish = () => {
      try {
        if (f.holes) ftruncateSync(f.fd, f.size);
      } catch (err) {
        this.error ??= err;
      }
      closeSync(f.fd);
      f.closed = true;
      this.open_.delete(f);
      const ready = this.waiters.splice(0);
      ready.forEach((w) => w());
    };
    if (f.pending === 0) finish();
    else f.onIdle.push(finish);
  }

  async below(bytes: number): Promise<void> {
    while (this.inFlight > bytes) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error) throw this.error;
  }

  /** Every write done and every file closed. */
  async idle(): Promise<void> {
    while (this.inFlight > 0 || this.open_.size > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error) throw this.error;
  }

  /** After a failure: let the writes in flight finish, close what is open. */
  async abort(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((r) => this.waiters.push(r));
    for (const f of this.open_) {
      try {
        closeSync(f.fd);
      } catch {
        // already closed
      }
    }
    this.open_.clear();
  }
}

interface WriterFile {
  fd: number;
  size: number;
  pending: number;
  holes: boolean;
  closed: boolean;
  onIdle: Array<() => void>;
}

const ZEROS = Buffer.alloc(64 << 10);

function isZero(b: Buffer): boolean {
  for (let o = 0; o < b.length; o += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - o);
    if (!b.subarray(o, o + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
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
