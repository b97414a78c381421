// Builds small synthetic Xiaomi ROMs from the vendor scripts in fixtures/corpus:
// the scripts are copied under their in-package names, and every image they
// name is created (tiny, seeded random content; some sparse), with consistent
// images/crclist.txt, images/sparsecrclist.txt, md5sum.xml, misc.txt and,
// on request, images/anti_version.txt. Used by tests and the emulator demo;
// nothing binary is committed.
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countPieces, rawToSparse, sparseCrc } from '../sparse/index.js';
import { digestFile } from './hash.js';
import { parseScript } from './script/index.js';

export interface SyntheticRomOptions {
  /** Device whose corpus scripts to use: raphaelin, liuqin, oxygen, land, cereus, elish, lmi, surya, ysl. */
  from: string;
  /** misc.txt device= (default: the product the scripts check). */
  product?: string;
  /** Write images/anti_version.txt with this value. */
  anti?: number;
  /** Partitions whose image is sparse (default: system, vendor, super, userdata, cust, cache where flashed). */
  sparse?: string[];
  /** Download limit the sparsecrclist piece counts are computed at (Xiaomi: 512 MiB). */
  pieceLimit?: number;
  /** PRNG seed for image contents. */
  seed?: number;
  /** Folder with the corpus copies (default: the repo's fixtures/corpus). */
  fixturesDir?: string;
}

export interface SyntheticImage {
  /** Relative to the ROM root. */
  file: string;
  size: number;
  sparse: boolean;
  /** Bytes the image expands to on the device. */
  expandedSize: number;
}

export interface SyntheticRom {
  root: string;
  /** The product the scripts' gate accepts (what the emulated device must report). */
  product: string;
  /** In-package script names copied. */
  scripts: string[];
  /** Every partition a script flashes or erases, with a size that fits its largest image (for `--partition NAME=SIZE`). */
  partitions: Array<{ name: string; size: number }>;
  images: SyntheticImage[];
}

const DEFAULT_SPARSE = ['system', 'vendor', 'super', 'userdata', 'cust', 'cache'];
const BLOCK = 4096;

export function defaultFixturesDir(): string {
  // dist/rom/synthetic.js and src/rom/synthetic.ts both sit two levels below the repo root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'corpus');
}

/** Seeded PRNG (mulberry32): deterministic images for a given seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A raw image with data, zero and pattern blocks, so its sparse form has RAW and FILL chunks. */
function sparseSource(rand: () => number): Buffer {
  const blocks = 8 + Math.floor(rand() * 24);
  const parts: Buffer[] = [];
  for (let i = 0; i < blocks; i++) {
    const r = rand();
    if (r < 0.45) parts.push(randomBytes(rand, BLOCK));
    else if (r < 0.75) parts.push(Buffer.alloc(BLOCK));
    else {
      const b = Buffer.allocUnsafe(BLOCK);
      const v = Math.floor(rand() * 0xffffffff) >>> 0;
      for (let o = 0; o < BLOCK; o += 4) b.writeUInt32LE(v, o);
      parts.push(b);
    }
  }
  parts.push(randomBytes(rand, BLOCK)); // never ends in a fill run
  return Buffer.concat(parts);
}

export async function buildSyntheticRom(dir: string, opts: SyntheticRomOptions): Promise<SyntheticRom> {
  const fixtures = opts.fixturesDir ?? defaultFixturesDir();
  const rand = prng(opts.seed ?? 1);
  const pieceLimit = opts.pieceLimit ?? 512 * 1024 * 1024;
  const root = resolve(dir);
  const imagesDir = join(root, 'images');
  await mkdir(imagesDir, { recursive: true });

  const re = new RegExp(`^xiaomi-${opts.from.replace(/[^A-Za-z0-9_]/g, '')}-.*?(flash_all[a-z_]*\\.(?:sh|bat))$`);
  const picked = (await readdir(fixtures)).map((f) => ({ f, m: re.exec(f) })).filter((x) => x.m);
  if (picked.length === 0) throw new Error(`no corpus scripts for ${opts.from} in ${fixtures}`);
  const scripts: string[] = [];
  const files = new Map<string, Set<string>>(); // file → partitions
  const partitions = new Set<string>();
  let product: string | undefined;
  for (const { f, m } of picked) {
    const name = m![1]!;
    await copyFile(join(fixtures, f), join(root, name));
    scripts.push(name);
    const text = await readFile(join(root, name), 'utf8');
    // A .bat's `if exist images\X` takes the branch the ROM has: the synthetic ROM has every image its scripts name.
    const named = [...new Set([...text.matchAll(/images[\\/]([\w.-]+)/g)].map((x) => `images/${x[1]}`))];
    const plan = parseScript(text, { file: name, dialect: name.endsWith('.sh') ? 'sh' : 'bat', folderName: 'synthetic', listRomFiles: () => named });
    for (const s of plan.steps) {
      if (s.foreign) continue;
      if (s.kind === 'gate.product') product ??= s.products[0];
      if (s.kind === 'flash' || s.kind === 'erase' || s.kind === 'format') partitions.add(s.partition);
      if (s.kind === 'flash') {
        const set = files.get(s.file) ?? new Set<string>();
        set.add(s.partition);
        files.set(s.file, set);
      }
    }
  }
  const device = opts.product ?? product ?? opts.from;
  const sparseParts = new Set(opts.sparse ?? DEFAULT_SPARSE);
  const images: SyntheticImage[] = [];
  const crc = new Map<string, number>();
  const sparseCrcs = new Map<string, { crc: number; count: number }>();
  const lists = new Set(['images/crclist.txt', 'images/sparsecrclist.txt']);

  for (const [file, parts] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    if (lists.has(file)) continue;
    const path = join(root, file);
    await mkdir(dirname(path), { recursive: true });
    const sparse = [...parts].some((p) => sparseParts.has(p));
    if (sparse) {
      const raw = sparseSource(rand);
      const tmp = `${path}.raw`;
      await writeFile(tmp, raw);
      await rawToSparse(tmp, path);
      await rm(tmp);
      const entry = { crc: await sparseCrc(path), count: await countPieces(path, pieceLimit) };
      for (const p of parts) sparseCrcs.set(p, entry);
      images.push({ file, size: (await digestFile(path)).size, sparse: true, expandedSize: raw.length });
    } else {
      const data = randomBytes(rand, 512 + Math.floor(rand() * 8192));
      await writeFile(path, data);
      const d = await digestFile(path);
      for (const p of parts) crc.set(p, d.crc32);
      images.push({ file, size: data.length, sparse: false, expandedSize: data.length });
    }
  }
  const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
  await writeFile(join(imagesDir, 'crclist.txt'), ['CRC-LIST', ...[...crc].map(([p, c]) => `${p} ${hex(c)}`)].join('\n') + '\n');
  await writeFile(
    join(imagesDir, 'sparsecrclist.txt'),
    ['SPARSECRC-LIST', ...[...sparseCrcs].map(([p, e]) => `${p} ${hex(e.crc)} ${e.count}`)].join('\n') + '\n',
  );
  for (const l of lists) {
    const size = (await digestFile(join(root, l))).size;
    images.push({ file: l, size, sparse: false, expandedSize: size });
  }
  if (opts.anti !== undefined) await writeFile(join(imagesDir, 'anti_version.txt'), `${opts.anti}\n`);
  await writeFile(join(root, 'misc.txt'), `device=${device}\nbuild_number=SYNTHETIC.${opts.seed ?? 1}\nuserdata_version=20250101.0000.00\n`);
  const md5Lines: string[] = [];
  for (const f of (await readdir(imagesDir)).sort()) {
    md5Lines.push(`    <digest hash="md5" name="${f}">${(await digestFile(join(imagesDir, f))).md5}</digest>`);
  }
  await writeFile(
    join(root, 'md5sum.xml'),
    `<?xml version="1.0" ?>\n<root>\n  <digests>\n${md5Lines.join('\n')}\n  </digests>\n  <security-patch-level>\n    <level>PLATFORM_SECURITY_PATCH := 2025-01-01</level>\n  </security-patch-level>\n</root>\n`,
  );

  // Partition sizes: the largest expanded image flashed there, rounded up, plus slack.
  const sizeOf = new Map<string, number>();
  for (const img of images) {
    for (const p of files.get(img.file) ?? []) sizeOf.set(p, Math.max(sizeOf.get(p) ?? 0, img.expandedSize));
  }
  const round = (n: number) => Math.ceil(n / 65536) * 65536 + 65536;
  return {
    root,
    product: product ?? device,
    scripts: scripts.sort(),
    partitions: [...partitions].sort().map((name) => ({ name, size: round(sizeOf.get(name) ?? 0) })),
    images,
  };
}
