// Benchmark images, made at run time and cached in bench/work/scale-<S>/.
// Layouts come from a seeded PRNG so every machine benches the same shapes;
// the data bytes are fresh random (content does not matter, only that blocks
// are distinct and not fills).
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLOCK, writeAll, writeSparseImage } from './sparse-writer.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
/** Bump when a layout or generator changes: cached images are remade. */
const GEN_VERSION = 3;

/** mulberry32: tiny, seedable, good enough for layout choices. */
export function rng32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const blocksOf = (bytes) => Math.max(1, Math.round(bytes / BLOCK));

/**
 * Regions of a filesystem-like raw image: `dataBlocks` of random data in extents
 * of mixed sizes (many small, a few of 4–128 MiB), a sprinkle of non-zero FILL
 * regions, zeros in between. Returns [{ type: 'data'|'fill'|'zero', blocks, value? }].
 */
export function rawLayout(totalBlocks, dataBlocks, scale, rng) {
  const items = [];
  let left = dataBlocks;
  while (left > 0) {
    const r = rng();
    const size = r < 0.7 ? 1 + Math.floor(rng() * 16)
      : r < 0.95 ? blocksOf((64 << 10) + rng() * 4 * MiB * scale)
      : blocksOf((4 + rng() * 124) * MiB * scale);
    const n = Math.min(size, left);
    items.push({ type: 'data', blocks: n });
    left -= n;
    if (rng() < 0.12) {
      const value = [0xffffffff, 0x01010101, Math.floor(rng() * 2 ** 32)][Math.floor(rng() * 3)];
      items.push({ type: 'fill', blocks: 1 + Math.floor(rng() * Math.max(1, 256 * scale)), value });
    }
  }
  const used = items.reduce((n, i) => n + i.blocks, 0);
  if (used > totalBlocks) throw new Error(`layout overflow: ${used} > ${totalBlocks} blocks`);
  // Zeros between items, skewed (many tiny gaps, a few huge ones).
  const weights = items.map(() => rng() ** 3);
  const sum = weights.reduce((a, b) => a + b, 0);
  let zeroLeft = totalBlocks - used;
  const out = [];
  items.forEach((it, i) => {
    out.push(it);
    const gap = i === items.length - 1 ? zeroLeft : Math.min(zeroLeft, Math.floor(((totalBlocks - used) * weights[i]) / sum));
    if (gap > 0) out.push({ type: 'zero', blocks: gap });
    zeroLeft -= gap;
  });
  return out;
}

/** Writes raw regions densely (zeros are written, not left as holes, so no client gains from SEEK_HOLE). */
export function writeRawImage(path, regions) {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  const buf = Buffer.allocUnsafe(4 * MiB);
  const zeros = Buffer.alloc(4 * MiB);
  let pos = 0;
  try {
    for (const r of regions) {
      let left = r.blocks * BLOCK;
      let src = zeros;
      if (r.type === 'fill') {
        src = Buffer.allocUnsafe(4 * MiB);
        for (let o = 0; o < src.length; o += 4) src.writeUInt32LE(r.value >>> 0, o);
      }
      while (left > 0) {
        const n = Math.min(left, buf.length);
        if (r.type === 'data') randomFillSync(buf, 0, n);
        writeAll(fd, r.type === 'data' ? buf : src, n, pos);
        pos += n;
        left -= n;
      }
    }
    ftruncateSync(fd, pos);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Chunks of a super-like sparse image: metadata at the start, four logical
 * partitions, each ~70% multi-hundred-MiB RAW extents and ~30% a stream of
 * small pieces (small RAW runs, zero FILL runs, short non-zero FILLs), with
 * large DONT_CARE gaps (free space) between partitions. `system` keeps its big
 * extents as single chunks; the others split RAW at 64 MiB like libsparse's
 * file writer does.
 */
export function superChunks(totalBytes, scale, rng) {
  const mib = (m) => blocksOf(m * MiB * scale);
  const total = Math.round(totalBytes / BLOCK);
  const out = [];
  const push = (c, splitAt = Infinity) => {
    const last = out[out.length - 1];
    const mergeable = last && last.type === c.type &&
      (c.type === 'skip' || (c.type === 'fill' && last.value === c.value) || (c.type === 'raw' && last.blocks + c.blocks <= splitAt));
    if (mergeable) last.blocks += c.blocks;
    else if (c.type === 'raw') for (let left = c.blocks; left > 0; left -= splitAt) out.push({ type: 'raw', blocks: Math.min(left, splitAt) });
    else out.push({ ...c });
  };
  push({ type: 'fill', blocks: 1, value: 0 });
  push({ type: 'raw', blocks: mib(0.25) });
  push({ type: 'skip', blocks: Math.max(1, mib(1) - 1 - mib(0.25)) });
  const split64 = (64 * MiB) / BLOCK;
  const parts = [['system', 1400, 3, Infinity], ['vendor', 700, 2, split64], ['product', 900, 2, split64], ['odm', 40, 0, split64]];
  for (const [, sizeMiB, bigCount, splitAt] of parts) {
    const size = mib(sizeMiB);
    const bigTotal = bigCount ? Math.floor(size * 0.7) : 0;
    const w = Array.from({ length: bigCount }, () => 0.5 + rng());
    const wSum = w.reduce((a, b) => a + b, 0);
    const bigs = w.map((x) => Math.max(1, Math.floor((bigTotal * x) / wSum)));
    const small = [];
    for (let left = size - bigs.reduce((a, b) => a + b, 0); left > 0;) {
      const r = rng();
      const c = r < 0.55 ? { type: 'raw', blocks: 1 + Math.floor(rng() ** 2 * 128) }
        : r < 0.8 ? { type: 'fill', value: 0, blocks: 1 + Math.floor(rng() * 2048) }
        : { type: 'fill', value: rng() < 0.5 ? 0xffffffff : Math.floor(rng() * 2 ** 32), blocks: 1 + Math.floor(rng() * 16) };
      c.blocks = Math.min(c.blocks, left);
      left -= c.blocks;
      small.push(c);
    }
    for (const b of bigs) small.splice(Math.floor(rng() * (small.length + 1)), 0, { type: 'raw', blocks: b });
    for (const c of small) push(c, splitAt);
    push({ type: 'skip', blocks: mib(150 + rng() * 450) });
  }
  const used = out.reduce((n, c) => n + c.blocks, 0);
  if (used > total) throw new Error(`super layout overflow: ${used} > ${total} blocks`);
  if (used < total) push({ type: 'skip', blocks: total - used });
  return out;
}

/** What each benchmark image is and how to make it. Sizes scale with `scale`. */
function specs(scale) {
  const s = (bytes) => Math.round((bytes * scale) / BLOCK) * BLOCK;
  return {
    a: {
      file: 'a-raw-512m.img',
      diskBytes: s(512 * MiB),
      make: (path) => writeRawImage(path, [{ type: 'data', blocks: s(512 * MiB) / BLOCK }]),
    },
    craw: {
      file: 'c-raw-3g.img',
      diskBytes: s(3 * GiB),
      make: (path) => writeRawImage(path, rawLayout(s(3 * GiB) / BLOCK, s(GiB) / BLOCK, scale, rng32(0xc0ffee))),
    },
    bsparse: {
      file: 'b-sparse-3g.simg',
      deps: ['craw'],
      diskBytes: s(1.1 * GiB),
      make: (path, dir) => {
        const tmp = `${path}.tmp`;
        const r = spawnSync('img2simg', [join(dir, 'c-raw-3g.img'), tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
        if (r.status !== 0) throw new Error(`img2simg failed (${r.status}): ${r.stderr}`);
        renameSync(tmp, path);
      },
    },
    dsuper: {
      file: 'd-super-8g.simg',
      diskBytes: s(3.2 * GiB),
      make: (path) => writeSparseImage(path, superChunks(s(8 * GiB), scale, rng32(0x5eed5))),
    },
  };
}

/** Bytes free on the filesystem holding `dir`. */
export function freeBytes(dir) {
  const st = statfsSync(dir);
  return st.bavail * st.bsize;
}

/**
 * Makes (or reuses) the images `keys` need in `dir`. A cached image is reused
 * when the manifest records the same generator version, size and mtime (and
 * the same for its dependencies). Returns { key: path }.
 */
export function ensureImages(dir, scale, keys, { log, reserveBytes = 0 }) {
  mkdirSync(dir, { recursive: true });
  const all = specs(scale);
  const want = new Set();
  const addDeps = (k) => { want.add(k); for (const d of all[k].deps ?? []) addDeps(d); };
  keys.forEach(addDeps);
  const order = ['a', 'craw', 'bsparse', 'dsuper'].filter((k) => want.has(k));

  const manifestPath = join(dir, 'manifest.json');
  let manifest = {};
  try { manifest = JSON.parse(readFileSync(manifestPath, 'utf8')); } catch { manifest = {}; }
  const stamp = (p) => { const st = statSync(p); return { size: st.size, mtimeMs: st.mtimeMs }; };
  const fresh = (k) => {
    const p = join(dir, all[k].file);
    const m = manifest[k];
    if (!existsSync(p) || !m || m.version !== GEN_VERSION) return false;
    const st = stamp(p);
    if (st.size !== m.size || st.mtimeMs !== m.mtimeMs) return false;
    return (all[k].deps ?? []).every((d) => manifest[d] && m.deps?.[d] === manifest[d].mtimeMs && fresh(d));
  };

  const missing = order.filter((k) => !fresh(k));
  const need = missing.reduce((n, k) => n + all[k].diskBytes, 0) + reserveBytes + GiB;
  const free = freeBytes(dir);
  if (need > free) {
    throw new Error(`not enough disk in ${dir}: need ~${(need / GiB).toFixed(1)} GiB (images + outputs + 1 GiB margin), ${(free / GiB).toFixed(1)} GiB free; try --scale or free space`);
  }
  for (const k of order) {
    const p = join(dir, all[k].file);
    if (!missing.includes(k) && fresh(k)) continue;
    const t0 = performance.now();
    log(`making ${all[k].file} ...`);
    all[k].make(p, dir);
    const deps = Object.fromEntries((all[k].deps ?? []).map((d) => [d, manifest[d].mtimeMs]));
    manifest[k] = { version: GEN_VERSION, ...stamp(p), deps };
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
    log(`made ${all[k].file} (${(statSync(p).size / MiB).toFixed(0)} MiB on disk) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return Object.fromEntries(order.map((k) => [k, join(dir, all[k].file)]));
}
