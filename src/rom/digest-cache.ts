// Digests of images already read (hash.ts), remembered across runs so that
// checking the same ROM again reads nothing. An entry is used only while the
// file is provably unchanged: same real path, device, inode, size, mtime and
// ctime (ctime cannot be set back by touch/tar/rsync, so a rewritten file that
// kept its size and mtime still misses). Stored as one JSON file in
// $MIFLASH_CACHE_DIR, else $XDG_CACHE_HOME/miflash, else ~/.cache/miflash;
// any failure to read or write it only costs the re-read.
import type { Stats } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from '../zod.js';
import { cacheDir } from './cache-dir.js';
import type { FileDigest } from './hash.js';

export { cacheDir };

const VERSION = 1;
/** Entries kept (least recently used dropped first): a few dozen ROMs' worth. */
const MAX_ENTRIES = 4096;

const SparseDigestSchema = z.union([
  z.object({ valid: z.literal(true), crc: z.number(), blockSize: z.number(), totalBlocks: z.number(), chunks: z.number() }),
  z.object({ valid: z.literal(false), error: z.string() }),
]);
const EntrySchema = z.object({
  dev: z.number(),
  ino: z.number(),
  size: z.number(),
  mtimeNs: z.string(),
  ctimeNs: z.string(),
  usedAt: z.number(),
  digest: z.object({ size: z.number(), md5: z.string(), crc32: z.number(), sparse: SparseDigestSchema.optional() }),
});
const FileSchema = z.object({ version: z.literal(VERSION), entries: z.record(z.string(), EntrySchema) });
type Entry = z.infer<typeof EntrySchema>;

/** `stat(path, { bigint: true })` fields that identify one version of a file. */
export interface FileIdentity {
  dev: number | bigint;
  ino: number | bigint;
  size: number | bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function identityOf(st: Stats | import('node:fs').BigIntStats): FileIdentity {
  if ('mtimeNs' in st) return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  // Without nanoseconds, milliseconds scaled (a coarser key, still never a false hit across rewrites: ctime moves).
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: BigInt(Math.round(st.mtimeMs * 1e6)), ctimeNs: BigInt(Math.round(st.ctimeMs * 1e6)) };
}

function matches(e: Entry, id: FileIdentity): boolean {
  return e.dev === Number(id.dev) && e.ino === Number(id.ino) && e.size === Number(id.size) && e.mtimeNs === String(id.mtimeNs) && e.ctimeNs === String(id.ctimeNs);
}

export class DigestCache {
  private entries: Record<string, Entry> | undefined;
  private readonly added = new Map<string, Entry>();
  private dirty = false;
  private loading: Promise<void> | undefined;

  constructor(private readonly dir: string = cacheDir()) {}

  private get file(): string {
    return join(this.dir, `digests-v${VERSION}.json`);
  }

  private async read(): Promise<Record<string, Entry>> {
    try {
      const parsed = FileSchema.safeParse(JSON.parse(await readFile(this.file, 'utf8')));
      return parsed.success ? parsed.data.entries : {};
    } catch {
      return {};
    }
  }

  private load(): Promise<void> {
    this.loading ??= this.read().then((e) => {
      this.entries = e;
    });
    return this.loading;
  }

  /** The digest of the file at `realPath` if this exact version of it was digested before. */
  async get(realPath: string, id: FileIdentity): Promise<FileDigest | undefined> {
    const own = this.added.get(realPath);
    if (own && matches(own, id)) return own.digest as FileDigest;
    await this.load();
    const e = this.entries![realPath];
    if (!e || !matches(e, id)) return undefined;
    e.usedAt = Date.now();
    this.added.set(realPath, e); // refreshes its place in the LRU on save
    return e.digest as FileDigest;
  }

  put(realPath: string, id: FileIdentity, digest: FileDigest): void {
    if (Number(id.size) !== digest.size) return; // the file changed while it was read
    this.dirty = true;
    this.added.set(realPath, {
      dev: Number(id.dev),
      ino: Number(id.ino),
      size: Number(id.size),
      mtimeNs: String(id.mtimeNs),
      ctimeNs: String(id.ctimeNs),
      usedAt: Date.now(),
      digest,
    });
  }

  /** Merges what this run learnt into the file (re-read first: another miflash may have written meanwhile). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    try {
      const entries = { ...(await this.read()), ...Object.fromEntries(this.added) };
      const keep = Object.entries(entries)
        .sort(([, a], [, b]) => b.usedAt - a.usedAt)
        .slice(0, MAX_ENTRIES);
      await mkdir(this.dir, { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify({ version: VERSION, entries: Object.fromEntries(keep) }));
      await rename(tmp, this.file);
      this.dirty = false;
    } catch {
      // A read-only home or a full disk: the next run digests again, nothing worse.
    }
  }
}
