// The whole-ROM benchmark input: a Xiaomi-shaped fastboot ROM made at run time
// and cached in bench/work/rom-<key>/, <key> being a hash of its parameters
// (so a change of layout, scale or generator makes a new one; nothing is
// committed). It holds the real corpus liuqin (HyperOS 2) scripts, every image
// they name (~40 firmware images, super.img ≈ 6 GiB sparse with ≈ 3 GiB of data,
// sparse userdata/cust/metadata), misc.txt, md5sum.xml, images/crclist.txt and
// images/sparsecrclist.txt, packed as `<name>_<first 10 hex of its MD5>.tgz`
// like Xiaomi's downloads. Checksums are computed here, independently of
// miflash, from the bytes as they are written (piece counts use miflash's
// `sparse count`, proven against AOSP elsewhere).
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { rng32, superChunks } from './images.js';
import { BLOCK, CHUNK_DONT_CARE, CHUNK_FILL, CHUNK_RAW, chunkHeader, fileHeader } from './sparse-writer.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
/** Bump when the layout, the data or the packing changes. */
const ROM_GEN_VERSION = 1;
export const ROM_PRODUCT = 'liuqin';
const ROM_NAME = 'liuqin_images_OS2.0.203.0.VMYCNXM_20250101.0000.00_15.0_cn';
const CORPUS = ['xiaomi-liuqin-hyperos2-flash_all.sh', 'xiaomi-liuqin-hyperos2-flash_all.bat',
  'xiaomi-liuqin-hyperos2-flash_all_except_storage.sh', 'xiaomi-liuqin-hyperos2-flash_all_except_storage.bat'];
/** Download limit the sparsecrclist piece counts are made for (and the emulated device reports). */
export const ROM_PIECE_LIMIT = 512 * MiB;

/** Firmware image sizes in MiB and the share of each that is data (the rest is zero padding). Unlisted: 1 MiB of data. */
const FIRMWARE = {
  'NON-HLOS.bin': [160, 0.7], 'dspso.bin': [32, 0.6], 'boot.img': [64, 0.55], 'recovery.img': [64, 0.6],
  'vendor_boot.img': [64, 0.4], 'dtbo.img': [16, 0.3], 'vm-bootsys.img': [32, 0.8], 'logfs_ufs_8mb.bin': [8, 0.01],
  'misc.img': [1, 0], 'BTFM.bin': [1, 0.9], 'xbl_s.melf': [4, 1], 'uefi.elf': [5, 1], 'tz.mbn': [4, 1],
  'hypvmperformance.mbn': [2, 1], 'abl.elf': [0.25, 1], 'vbmeta.img': [0.0625, 0.1], 'vbmeta_system.img': [0.0625, 0.1],
  'rescue.img': [16, 0.5], 'imagefv.elf': [0.5, 1], 'tools.fv': [1, 1], 'XblRamdump.elf': [1.5, 1],
};

/** Sparse images: expanded size and the layout of their chunks. */
function sparseLayouts(scale) {
  const s = (bytes) => Math.max(BLOCK, Math.round((bytes * scale) / BLOCK) * BLOCK);
  return {
    // 6 GiB super with four logical partitions (~3 GiB of RAW data, see superChunks).
    'super.img': () => superChunks(s(6 * GiB), scale * 1.3, rng32(0x50e7)),
    'userdata.img': () => fsChunks(s(10 * GiB), s(24 * MiB), rng32(0xda7a)),
    'cust.img': () => fsChunks(s(512 * MiB), s(96 * MiB), rng32(0xc057)),
    'metadata.img': () => fsChunks(s(16 * MiB), s(256 * 1024), rng32(0x3e7a)),
  };
}

/** A freshly made filesystem image: a little data in small RAW runs and zero FILLs, the rest DONT_CARE. */
function fsChunks(totalBytes, dataBytes, rng) {
  const total = totalBytes / BLOCK;
  const out = [];
  let data = Math.max(1, Math.round(dataBytes / BLOCK));
  let used = 0;
  while (data > 0) {
    const n = Math.min(data, 1 + Math.floor(rng() ** 3 * 2048));
    out.push({ type: 'raw', blocks: n });
    data -= n;
    used += n;
    if (rng() < 0.3) { const f = 1 + Math.floor(rng() * 64); out.push({ type: 'fill', blocks: f, value: 0 }); used += f; }
    const gap = Math.floor(rng() ** 4 * (total / 40));
    if (gap > 0 && used + gap < total) { out.push({ type: 'skip', blocks: gap }); used += gap; }
  }
  if (used > total) throw new Error(`fs layout overflow: ${used} > ${total} blocks`);
  if (used < total) out.push({ type: 'skip', blocks: total - used });
  return out;
}

/**
 * Data as it is in a real image: half of every 8 KiB random, half low-entropy
 * (4 bits a byte), so gzip shrinks it to ~80% and inflating it is real work
 * (pure random data would be stored blocks, a memcpy).
 */
function fillData(buf, n) {
  randomFillSync(buf, 0, n);
  const w = new Uint32Array(buf.buffer, buf.byteOffset, n >>> 2);
  for (let o = 0; o < w.length; o += 2048) {
    const end = Math.min(w.length, o + 1024);
    for (let i = o; i < end; i++) w[i] &= 0x0f0f0f0f;
  }
}

/** Writes a file sequentially, hashing (MD5, CRC-32) every byte on the way. */
class DigestingFile {
  constructor(path) {
    this.path = path;
    this.fd = openSync(path, 'w');
    this.md5 = createHash('md5');
    this.crc = 0;
    this.size = 0;
  }
  write(buf, n = buf.length) {
    const b = buf.subarray(0, n);
    for (let done = 0; done < n;) done += writeSync(this.fd, b, done, n - done);
    this.md5.update(b);
    this.crc = crc32(b, this.crc);
    this.size += n;
  }
  close() {
    closeSync(this.fd);
    return { size: this.size, md5: this.md5.digest('hex'), crc32: this.crc >>> 0 };
  }
}

const IO = 4 * MiB;

function writeRaw(path, sizeBytes, dataShare) {
  const f = new DigestingFile(path);
  const buf = Buffer.allocUnsafe(IO);
  const zeros = Buffer.alloc(IO);
  const data = Math.round((sizeBytes * dataShare) / BLOCK) * BLOCK;
  for (let left = data; left > 0;) { const n = Math.min(left, IO); fillData(buf, n); f.write(buf, n); left -= n; }
  for (let left = sizeBytes - data; left > 0;) { const n = Math.min(left, IO); f.write(zeros, n); left -= n; }
  return { ...f.close(), dataBytes: data };
}

/** Writes a sparse image; also returns Xiaomi's sparse CRC (CRC-32 over RAW data and expanded FILLs, in chunk order). */
function writeSparse(path, chunks) {
  const totalBlocks = chunks.reduce((n, c) => n + c.blocks, 0);
  const f = new DigestingFile(path);
  const buf = Buffer.allocUnsafe(IO);
  let sparseCrc = 0;
  let rawBytes = 0;
  f.write(fileHeader(totalBlocks, chunks.length));
  for (const c of chunks) {
    if (c.type === 'raw') {
      f.write(chunkHeader(CHUNK_RAW, c.blocks, c.blocks * BLOCK));
      for (let left = c.blocks * BLOCK; left > 0;) {
        const n = Math.min(left, IO);
        fillData(buf, n);
        f.write(buf, n);
        sparseCrc = crc32(buf.subarray(0, n), sparseCrc);
        left -= n;
      }
      rawBytes += c.blocks * BLOCK;
    } else if (c.type === 'fill') {
      const p = Buffer.alloc(4);
      p.writeUInt32LE(c.value >>> 0, 0);
      f.write(Buffer.concat([chunkHeader(CHUNK_FILL, c.blocks, 4), p]));
      const pattern = Buffer.alloc(Math.min(IO, c.blocks * BLOCK));
      for (let o = 0; o < pattern.length; o += 4) pattern.writeUInt32LE(c.value >>> 0, o);
      for (let left = c.blocks * BLOCK; left > 0;) { const n = Math.min(left, pattern.length); sparseCrc = crc32(pattern.subarray(0, n), sparseCrc); left -= n; }
    } else {
      f.write(chunkHeader(CHUNK_DONT_CARE, c.blocks, 0));
    }
  }
  return { ...f.close(), sparseCrc: sparseCrc >>> 0, expanded: totalBlocks * BLOCK, rawBytes, chunks: chunks.length };
}

/** `fastboot $* flash PART .../images/FILE` and `erase PART` lines of a vendor script. */
export function scriptPartitions(text) {
  const flashes = [];
  const erases = [];
  for (const line of text.split('\n')) {
    const f = /^fastboot \$\* flash (\S+)\s+`dirname \$0`\/images\/(\S+)\s*$/.exec(line.trim());
    if (f) flashes.push({ partition: f[1], file: f[2] });
    const e = /^fastboot \$\* erase (\S+)\s*$/.exec(line.trim());
    if (e) erases.push(e[1]);
  }
  return { flashes, erases };
}

export function romParams(scale) {
  return { version: ROM_GEN_VERSION, scale, name: ROM_NAME, pieceLimit: ROM_PIECE_LIMIT, firmware: FIRMWARE, gzip: 'pigz -6 (gzip -6 without pigz)' };
}

function keyOf(params) {
  return createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 12);
}

/**
 * Makes (or reuses) the ROM. Returns { dir, folder, tgz, name, partitions, images, stats }:
 * `folder` the unpacked ROM (what `tar -xzf` of `tgz` gives, under `dir/src/`), `partitions` the
 * emulated device's partition sizes (every name the script flashes or erases).
 */
export function ensureRom(workDir, scale, { log, repoRoot, countPieces }) {
  const params = romParams(scale);
  const dir = join(workDir, `rom-${keyOf(params)}`);
  const manifestPath = join(dir, 'manifest.json');
  if (existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
      const st = statSync(m.tgz);
      if (JSON.stringify(m.params) === JSON.stringify(params) && st.size === m.tgzSize && st.mtimeMs === m.tgzMtimeMs && existsSync(m.folder)) return m;
    } catch { /* remake */ }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const folder = join(dir, 'src', ROM_NAME);
  const imagesDir = join(folder, 'images');
  mkdirSync(imagesDir, { recursive: true });
  for (const c of CORPUS) copyFileSync(join(repoRoot, 'fixtures', 'corpus', c), join(folder, c.replace(/^xiaomi-liuqin-hyperos2-/, '')));
  copyFileSync(join(repoRoot, 'fixtures', 'corpus', 'xiaomi-liuqin-hyperos2-misc.txt'), join(folder, 'misc.txt'));
  const { flashes, erases } = scriptPartitions(readFileSync(join(folder, 'flash_all.sh'), 'utf8'));
  const layouts = sparseLayouts(scale);
  const byFile = new Map();
  for (const f of flashes) byFile.set(f.file, [...(byFile.get(f.file) ?? []), f.partition]);
  const images = [];
  const crcs = [];
  const sparseCrcs = [];
  for (const [file, parts] of byFile) {
    if (file === 'crclist.txt' || file === 'sparsecrclist.txt') continue;
    const path = join(imagesDir, file);
    if (layouts[file]) {
      const d = writeSparse(path, layouts[file]());
      const pieces = countPieces(path, ROM_PIECE_LIMIT);
      for (const p of parts) sparseCrcs.push(`${p} 0x${d.sparseCrc.toString(16)} ${pieces}`);
      images.push({ file, parts, sparse: true, ...d, pieces });
      log(`  ${file}: sparse, ${(d.expanded / MiB).toFixed(0)} MiB expanded, ${(d.rawBytes / MiB).toFixed(0)} MiB data, ${d.chunks} chunks, ${pieces} pieces`);
    } else {
      const [mib, share] = FIRMWARE[file] ?? [1, 1];
      const d = writeRaw(path, Math.max(BLOCK, Math.round((mib * MiB * scale) / BLOCK) * BLOCK), share);
      for (const p of parts) crcs.push(`${p} 0x${d.crc32.toString(16)}`);
      images.push({ file, parts, sparse: false, ...d, expanded: d.size });
    }
  }
  writeFileSync(join(imagesDir, 'crclist.txt'), ['CRC-LIST', ...crcs].join('\n') + '\n');
  writeFileSync(join(imagesDir, 'sparsecrclist.txt'), ['SPARSECRC-LIST', ...sparseCrcs].join('\n') + '\n');
  const md5 = (p) => createHash('md5').update(readFileSync(p)).digest('hex');
  const digests = readdirSync(imagesDir).sort().map((f) => {
    const img = images.find((i) => i.file === f);
    return `    <digest hash="md5" name="${f}">${img ? img.md5 : md5(join(imagesDir, f))}</digest>`;
  });
  writeFileSync(join(folder, 'md5sum.xml'), `<?xml version="1.0" ?>\n<root>\n  <digests>\n${digests.join('\n')}\n  </digests>\n` +
    '  <security-patch-level>\n    <level>PLATFORM_SECURITY_PATCH := 2025-01-01</level>\n  </security-patch-level>\n</root>\n');
  log(`  images written in ${((performance.now() - t0) / 1000).toFixed(1)} s; packing the .tgz ...`);

  const tmp = join(dir, 'packing.tgz');
  const pigz = spawnSync('sh', ['-c', 'command -v pigz'], { encoding: 'utf8' }).stdout.trim();
  const pack = spawnSync('sh', ['-c', `tar --sort=name --owner=0 --group=0 -cf - -C "$1" "$2" | ${pigz ? 'pigz -6' : 'gzip -6'} > "$3"`, 'sh', join(dir, 'src'), ROM_NAME, tmp],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  if (pack.status !== 0) throw new Error(`packing the ROM failed: ${pack.stderr}`);
  const tgzMd5 = createHash('md5');
  const fd = openSync(tmp, 'r');
  const buf = Buffer.allocUnsafe(IO);
  for (let n; (n = readSyncAll(fd, buf)) > 0;) tgzMd5.update(buf.subarray(0, n));
  closeSync(fd);
  const tgz = join(dir, `${ROM_NAME}_${tgzMd5.digest('hex').slice(0, 10)}.tgz`);
  renameSync(tmp, tgz);
  const partitions = partitionSizes(flashes, erases, images);
  const st = statSync(tgz);
  const stats = {
    images: images.length,
    imageBytes: images.reduce((n, i) => n + i.size, 0),
    dataBytes: images.reduce((n, i) => n + (i.sparse ? i.rawBytes : i.dataBytes), 0),
    tgzBytes: st.size,
    madeInS: Math.round((performance.now() - t0) / 100) / 10,
  };
  const manifest = { params, dir, folder, tgz, name: ROM_NAME, partitions, images: images.map(({ file, parts, sparse, size, md5: m, expanded }) => ({ file, parts, sparse, size, md5: m, expanded })), stats, tgzSize: st.size, tgzMtimeMs: st.mtimeMs };
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  return manifest;
}

/** Fills `buf` from the file's current position; less only at the end of the file. */
function readSyncAll(fd, buf) {
  let done = 0;
  for (let n; done < buf.length && (n = readSync(fd, buf, done, buf.length - done, null)) > 0;) done += n;
  return done;
}

/** Partition sizes for the emulated device: every scripted name, big enough for what is written there. */
function partitionSizes(flashes, erases, images) {
  const size = new Map();
  const round = (n) => Math.ceil(Math.max(n, MiB) / MiB) * MiB + MiB;
  for (const f of flashes) {
    const img = images.find((i) => i.file === f.file);
    size.set(f.partition, Math.max(size.get(f.partition) ?? 0, round(img ? img.expanded : 4096)));
  }
  for (const e of erases) if (!size.has(e)) size.set(e, round(MiB));
  return [...size].map(([name, bytes]) => ({ name, bytes }));
}
