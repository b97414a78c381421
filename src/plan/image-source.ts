// Where `update` and `flashall` take their images from (AOSP ImageSource): a
// zip (entries streamed and CRC-checked, images extracted to a temp file
// before flashing, as AOSP's ZipImageSource) or a product folder
// ($ANDROID_PRODUCT_OUT for flashall: files used in place).
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, BadInputError } from '../errors.js';
import { crc32 } from '../rom/hash.js';
import { isSparse, parseSparseSteps, SparseFormatError, type ReadRequest } from '../sparse/index.js';

export interface ImageSource {
  /** How the source is named in messages (relative to the ROM root). */
  readonly label: string;
  /** Name -> size in bytes. */
  readonly sizes: ReadonlyMap<string, number>;
  /** Small files (android-info.txt, super_empty.img, fastboot-info.txt), checked as they are read. */
  readSmall(name: string): Promise<Buffer>;
  /** One pass over an image: size, zip CRC-32, sparse structure. Returns whether it is sparse. */
  check(name: string, onBytes?: (done: number) => void): Promise<boolean>;
  /** A file holding the image: extracted into `tmp` (zip) or the image itself (folder). `release` removes an extracted copy. */
  materialize(name: string, tmp: string, signal?: AbortSignal): Promise<{ path: string; release(): Promise<void> }>;
  /** Images must be extracted before flashing (free temporary space matters). */
  readonly extracts: boolean;
  close(): void;
}

type YauzlZip = import('yauzl').ZipFile;
type YauzlEntry = import('yauzl').Entry;

const SMALL_LIMIT = 64 * 1024 * 1024;

export async function openImageSource(path: string, label: string): Promise<ImageSource> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory()) return openFolder(path, label);
  return openZipSource(path, label);
}

export async function openZip(zipPath: string, label: string): Promise<{ zip: YauzlZip; entries: Map<string, YauzlEntry> }> {
  const yauzl = (await import('yauzl')).default;
  let zip: YauzlZip;
  try {
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false });
  } catch (err) {
    throw new BadInputError(`${label}: not a readable zip (${(err as Error).message})`, { code: 'rom.archive-corrupt', hint: 're-download the factory image; nothing has been written to the device' });
  }
  const entries = new Map<string, YauzlEntry>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (e: YauzlEntry) => {
        entries.set(e.fileName, e);
        zip.readEntry();
      });
      zip.once('end', () => resolve());
      zip.once('error', reject);
      zip.readEntry();
    });
  } catch (err) {
    zip.close();
    throw new BadInputError(`${label}: corrupt zip directory (${(err as Error).message})`, { code: 'rom.archive-corrupt' });
  }
  return { zip, entries };
}

function openEntry(zip: YauzlZip, entry: YauzlEntry, name: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) reject(new BadInputError(`${name}: cannot read from the zip (${err?.message ?? 'no stream'})`, { code: 'rom.archive-corrupt' }));
      else resolve(stream);
    });
  });
}

const devNull = () => new Writable({ write: (_c, _e, cb) => cb() });

async function openZipSource(path: string, label: string): Promise<ImageSource> {
  const { zip, entries } = await openZip(path, label);
  const entry = (name: string) => {
    const e = entries.get(name);
    if (!e) throw new BadInputError(`${label}: ${name} is missing`, { code: 'rom.image-missing' });
    return e;
  };
  return {
    label,
    extracts: true,
    sizes: new Map([...entries].map(([n, e]) => [n, e.uncompressedSize])),
    async readSmall(name) {
      const e = entry(name);
      if (e.uncompressedSize > SMALL_LIMIT) throw new BadInputError(`${label}/${name}: ${e.uncompressedSize} bytes is too large for a metadata file`, { code: 'rom.update-zip' });
      const chunks: Buffer[] = [];
      const check = new StreamCheck(`${label}/${name}`, e.uncompressedSize);
      await pipeline(await openEntry(zip, e, `${label}/${name}`), check.transform(() => {}), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
      check.finish(e.crc32);
      return Buffer.concat(chunks);
    },
    async check(name, onBytes) {
      const e = entry(name);
      const sink = new StreamCheck(`${label}/${name}`, e.uncompressedSize);
      await pipeline(await openEntry(zip, e, `${label}/${name}`), sink.transform((done) => onBytes?.(done)), devNull());
      sink.finish(e.crc32);
      return sink.sparse;
    },
    async materialize(name, tmp, signal) {
      const e = entry(name);
      const out = join(tmp, name.replace(/[/\\]/g, '_'));
      const check = new StreamCheck(`${label}/${name}`, e.uncompressedSize);
      await pipeline(await openEntry(zip, e, `${label}/${name}`), check.transform(() => {}), createWriteStream(out), signal ? { signal } : {}).catch((err: unknown) => {
        if (signal?.aborted) throw new AbortedError(`aborted while extracting ${name}`);
        throw err;
      });
      check.finish(e.crc32); // the zip may have changed since phase 1
      const { rm } = await import('node:fs/promises');
      return { path: out, release: () => rm(out, { force: true }) };
    },
    close: () => zip.close(),
  };
}

async function openFolder(dir: string, label: string): Promise<ImageSource> {
  const sizes = new Map<string, number>();
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (!d.isFile()) continue;
    sizes.set(d.name, (await stat(join(dir, d.name))).size);
  }
  const file = (name: string) => {
    if (!sizes.has(name)) throw new BadInputError(`${label}: ${name} is missing`, { code: 'rom.image-missing' });
    return join(dir, name);
  };
  return {
    label,
    extracts: false,
    sizes,
    async readSmall(name) {
      const p = file(name);
      if (sizes.get(name)! > SMALL_LIMIT) throw new BadInputError(`${label}/${name}: too large for a metadata file`, { code: 'rom.update-zip' });
      return readFile(p);
    },
    async check(name, onBytes) {
      const sink = new StreamCheck(`${label}/${name}`, sizes.get(name)!);
      await pipeline(createReadStream(file(name)), sink.transform((done) => onBytes?.(done)), devNull());
      sink.finish(undefined);
      return sink.sparse;
    },
    async materialize(name) {
      return { path: file(name), release: async () => {} };
    },
    close: () => {},
  };
}

/**
 * One pass over an entry's bytes: CRC-32 (against the zip directory), size,
 * and, when it starts with the sparse magic, the strict sparse parser fed
 * forward-only (it asks for headers in increasing offsets; raw data is skipped).
 */
export class StreamCheck {
  private crc = 0;
  private done = 0;
  sparse = false;
  private steps: Generator<ReadRequest, unknown, Uint8Array> | undefined;
  private want: ReadRequest | undefined;
  private got: Buffer[] = [];
  private gotLen = 0;
  private parsed = false;
  private decided = false;
  private readonly head: Buffer[] = [];

  constructor(
    private readonly name: string,
    private readonly size: number,
  ) {}

  transform(onBytes: (done: number) => void): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        try {
          this.feed(chunk);
          onBytes(this.done);
          cb(null, chunk);
        } catch (err) {
          cb(err as Error);
        }
      },
    });
  }

  private feed(chunk: Buffer): void {
    this.crc = crc32(chunk, this.crc);
    const at = this.done;
    this.done += chunk.length;
    if (this.decided) {
      if (this.steps) this.sparseFeed(chunk, at);
      return;
    }
    // Until 4 bytes are in, we cannot tell whether this is a sparse image.
    this.head.push(chunk);
    if (this.done < 4 && this.done < this.size) return;
    this.decided = true;
    const head = Buffer.concat(this.head);
    this.head.length = 0;
    if (!isSparse(head)) return;
    this.sparse = true;
    this.steps = parseSparseSteps(this.size) as Generator<ReadRequest, unknown, Uint8Array>;
    this.advance(undefined);
    this.sparseFeed(head, 0);
  }

  private advance(data: Uint8Array | undefined): void {
    try {
      const next = data === undefined ? this.steps!.next() : this.steps!.next(data);
      if (next.done) {
        this.parsed = true;
        this.want = undefined;
      } else {
        if (this.want && next.value.offset < this.want.offset + this.want.length) {
          throw new Error(`sparse parser read backwards (${next.value.offset})`);
        }
        this.want = next.value;
      }
    } catch (err) {
      if (err instanceof SparseFormatError) throw err.withPath(this.name);
      throw err;
    }
  }

  /** Hands the parser the byte ranges it asks for, out of the chunk at stream offset `at`. */
  private sparseFeed(chunk: Buffer, at: number): void {
    let pos = at;
    let rest = chunk;
    while (this.want && rest.length > 0) {
      const start = this.want.offset + this.gotLen;
      const end = this.want.offset + this.want.length;
      if (pos + rest.length <= start) return; // all before the wanted range
      const from = Math.max(0, start - pos);
      const take = Math.min(rest.length - from, end - start);
      this.got.push(rest.subarray(from, from + take));
      this.gotLen += take;
      rest = rest.subarray(from + take);
      pos = start + take;
      if (this.gotLen === this.want.length) {
        const data = Buffer.concat(this.got);
        this.got = [];
        this.gotLen = 0;
        this.advance(data);
      }
    }
  }

  /** `expectedCrc` undefined: no CRC to compare (a file in a folder). */
  finish(expectedCrc: number | undefined): void {
    if (this.done !== this.size) throw new BadInputError(`${this.name}: ${this.done} bytes read, the zip says ${this.size}`, { code: 'rom.archive-corrupt' });
    if (expectedCrc !== undefined && (this.crc >>> 0) !== (expectedCrc >>> 0)) {
      throw new BadInputError(`${this.name}: CRC-32 mismatch: the zip says 0x${(expectedCrc >>> 0).toString(16)}, the data gives 0x${(this.crc >>> 0).toString(16)}`, {
        code: 'rom.archive-corrupt',
        hint: 're-download the factory image; nothing has been written to the device',
      });
    }
    if (this.steps && !this.parsed) {
      // The parser still wants bytes the entry does not have (cannot happen after the size check; kept as a guard).
      throw new BadInputError(`${this.name}: truncated sparse image`, { code: 'rom.image-invalid' });
    }
  }
}
