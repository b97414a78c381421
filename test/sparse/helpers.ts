// Shared helpers for the sparse tests: temp dirs, deterministic image builders,
// and wrappers around the AOSP reference tools (img2simg, simg2img, simg2simg;
// tests calling them are marked needs(...), see test/helpers/peers.ts).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { peerPath } from '../helpers/peers.js';

export const execFileAsync = promisify(execFile);

export function tempDir(prefix = 'miflash-sparse-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** xorshift32: fast deterministic bytes (fast-check gives the seed). */
export function randomBytes(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(Math.ceil(length / 4) * 4);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b.subarray(0, length);
}

export type RawRegion =
  | { kind: 'data'; bytes: number; seed: number }
  | { kind: 'fill'; bytes: number; value: number };

/** Concatenates regions; fill regions repeat a 32-bit LE pattern (a zero fill = zero bytes). */
export function buildRaw(regions: readonly RawRegion[]): Buffer {
  const parts = regions.map((r) => {
    if (r.kind === 'data') return randomBytes(r.bytes, r.seed);
    const b = Buffer.alloc(Math.ceil(r.bytes / 4) * 4);
    for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(r.value >>> 0, i);
    return b.subarray(0, r.bytes);
  });
  return Buffer.concat(parts);
}

export type SparseSpec =
  | { type: 'raw'; blocks: number; seed: number }
  | { type: 'fill'; blocks: number; value: number }
  | { type: 'dont-care'; blocks: number }
  | { type: 'crc32'; crc: number };

/** Builds a sparse image from chunk specs (optionally with longer file/chunk headers). */
export function buildSparse(
  chunks: readonly SparseSpec[],
  opts: { blockSize?: number; fileHeaderSize?: number; chunkHeaderSize?: number; totalBlocks?: number } = {},
): Buffer {
  const blk = opts.blockSize ?? 4096;
  const fhs = opts.fileHeaderSize ?? 28;
  const chs = opts.chunkHeaderSize ?? 12;
  const parts: Buffer[] = [];
  let blocks = 0;
  for (const c of chunks) {
    const payload =
      c.type === 'raw'
        ? randomBytes(c.blocks * blk, c.seed)
        : c.type === 'fill'
          ? u32(c.value)
          : c.type === 'crc32'
            ? u32(c.crc)
            : Buffer.alloc(0);
    const h = Buffer.alloc(chs);
    h.writeUInt16LE({ raw: 0xcac1, fill: 0xcac2, 'dont-care': 0xcac3, crc32: 0xcac4 }[c.type], 0);
    const n = c.type === 'crc32' ? 0 : c.blocks;
    h.writeUInt32LE(n, 4);
    h.writeUInt32LE(chs + payload.length, 8);
    parts.push(h, payload);
    blocks += n;
  }
  const head = Buffer.alloc(fhs);
  head.writeUInt32LE(0xed26ff3a, 0);
  head.writeUInt16LE(1, 4);
  head.writeUInt16LE(0, 6);
  head.writeUInt16LE(fhs, 8);
  head.writeUInt16LE(chs, 10);
  head.writeUInt32LE(blk, 12);
  head.writeUInt32LE(opts.totalBlocks ?? blocks, 16);
  head.writeUInt32LE(chunks.length, 20);
  return Buffer.concat([head, ...parts]);
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

/** `data` zero-padded to a multiple of `blk` (what simg2img gives back for a raw image). */
export function padTo(data: Buffer, blk = 4096): Buffer {
  const len = Math.ceil(data.length / blk) * blk;
  return len === data.length ? data : Buffer.concat([data, Buffer.alloc(len - data.length)]);
}

export function img2simg(raw: string, out: string): void {
  execFileSync(peerPath('img2simg'), [raw, out], { stdio: 'pipe' });
}

export function simg2img(inputs: string[], out: string): Buffer {
  execFileSync(peerPath('simg2img'), [...inputs, out], { stdio: 'pipe' });
  return readFileSync(out);
}

/** simg2simg's pieces (files OUT.0, OUT.1, ...) in order. */
export function simg2simg(input: string, outBase: string, maxSize: number, dir: string): Buffer[] {
  execFileSync(peerPath('simg2simg'), [input, outBase, String(maxSize)], { stdio: 'pipe' });
  const prefix = outBase.slice(dir.length + 1) + '.';
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)))
    .map((f) => readFileSync(join(dir, f)));
}

export function write(dir: string, name: string, data: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}
