// Test material for the EDL path: synthetic ELF programmers, sparse images,
// a synthetic ROM laid out like the raphaelin rawprogram0.xml, and an
// in-process emulated EDL device.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import { MemoryDisk, type VirtualDisk } from '../../src/emulator/edl/disk.js';
import { serveOnTransport } from '../../src/emulator/edl/serve.js';
import type { EdlEmulatorOptions, EmulatedEdlDevice } from '../../src/emulator/edl/device.js';
import { buildGpt, type BuiltGpt } from '../../src/edl/gpt.js';
import { parseEdlXml, type ProgramEntry } from '../../src/edl/rawprogram-xml.js';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../..');
export const FIXTURES = path.join(REPO_ROOT, 'fixtures/edl');
export const RAPHAELIN_RAWPROGRAM = path.join(FIXTURES, 'xiaomi-raphaelin-v12-edl-rawprogram0.xml');
export const RAPHAELIN_PATCH = path.join(FIXTURES, 'xiaomi-raphaelin-v12-edl-patch0.xml');
export const SMARTISAN_RAWPROGRAM = path.join(FIXTURES, 'other-smartisan-oscar-msm8953-edl-rawprogram_unsparse.xml');

export function tempDir(prefix = 'miflash-edl-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A small valid ELF (32- or 64-bit) with `segments` loadable segments of the given sizes. */
export function makeElf(opts: { bits?: 32 | 64; segments?: number[]; seed?: number } = {}): Buffer {
  const bits = opts.bits ?? 64;
  const segs = opts.segments ?? [0x1800, 0x2345];
  const ehsize = bits === 64 ? 0x40 : 0x34;
  const phentsize = bits === 64 ? 56 : 32;
  let offset = ehsize + phentsize * segs.length;
  const header = Buffer.alloc(ehsize);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = bits === 64 ? 2 : 1;
  header[5] = 1;
  header[6] = 1;
  if (bits === 64) {
    header.writeBigUInt64LE(BigInt(ehsize), 0x20);
    header.writeUInt16LE(phentsize, 0x36);
    header.writeUInt16LE(segs.length, 0x38);
  } else {
    header.writeUInt32LE(ehsize, 0x1c);
    header.writeUInt16LE(phentsize, 0x2a);
    header.writeUInt16LE(segs.length, 0x2c);
  }
  const phdrs: Buffer[] = [];
  const data: Buffer[] = [];
  segs.forEach((size, i) => {
    const ph = Buffer.alloc(phentsize);
    ph.writeUInt32LE(1, 0);
    if (bits === 64) {
      ph.writeBigUInt64LE(BigInt(offset), 8);
      ph.writeBigUInt64LE(BigInt(size), 32);
      ph.writeBigUInt64LE(BigInt(size), 40);
    } else {
      ph.writeUInt32LE(offset, 4);
      ph.writeUInt32LE(size, 16);
      ph.writeUInt32LE(size, 20);
    }
    phdrs.push(ph);
    data.push(bytes(size, (opts.seed ?? 7) + i));
    offset += size;
  });
  return Buffer.concat([header, ...phdrs, ...data]);
}

export type SparseChunkSpec = { raw: Buffer } | { fill: number; blocks: number } | { skip: number };

/** An Android sparse image and its expanded form. */
export function makeSparse(blockSize: number, chunks: SparseChunkSpec[]): { sparse: Buffer; expanded: Buffer } {
  const parts: Buffer[] = [];
  const expanded: Buffer[] = [];
  let blocks = 0;
  for (const c of chunks) {
    const h = Buffer.alloc(12);
    if ('raw' in c) {
      if (c.raw.length % blockSize !== 0) throw new Error('raw chunk not block aligned');
      h.writeUInt16LE(0xcac1, 0);
      h.writeUInt32LE(c.raw.length / blockSize, 4);
      h.writeUInt32LE(12 + c.raw.length, 8);
      parts.push(h, c.raw);
      expanded.push(c.raw);
      blocks += c.raw.length / blockSize;
    } else if ('fill' in c) {
      h.writeUInt16LE(0xcac2, 0);
      h.writeUInt32LE(c.blocks, 4);
      h.writeUInt32LE(16, 8);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(c.fill >>> 0, 0);
      parts.push(h, v);
      const e = Buffer.alloc(c.blocks * blockSize);
      for (let i = 0; i < e.length; i += 4) v.copy(e, i);
      expanded.push(e);
      blocks += c.blocks;
    } else {
      h.writeUInt16LE(0xcac3, 0);
      h.writeUInt32LE(c.skip, 4);
      h.writeUInt32LE(12, 8);
      parts.push(h);
      expanded.push(Buffer.alloc(c.skip * blockSize));
      blocks += c.skip;
    }
  }
  const fh = Buffer.alloc(28);
  fh.writeUInt32LE(0xed26ff3a, 0);
  fh.writeUInt16LE(1, 4);
  fh.writeUInt16LE(0, 6);
  fh.writeUInt16LE(28, 8);
  fh.writeUInt16LE(12, 10);
  fh.writeUInt32LE(blockSize, 12);
  fh.writeUInt32LE(blocks, 16);
  fh.writeUInt32LE(chunks.length, 20);
  return { sparse: Buffer.concat([fh, ...parts]), expanded: Buffer.concat(expanded) };
}

/** LUN 0 size for the raphaelin layout: userdata starts at 507904; leave room. */
export const RAPHAELIN_DISK_SECTORS = 520_000;

export interface SyntheticRom {
  root: string;
  images: string;
  programmer: string;
  /** file name -> bytes as they must land on the LUN (sparse: expanded). */
  expected: Map<string, Buffer>;
  sparseFiles: string[];
}

/**
 * The gpt_main<N>.bin / gpt_backup<N>.bin Qualcomm's ptool would write for the
 * program entries of one LUN (in XML order, PrimaryGPT/BackupGPT excluded),
 * for a nominal disk of `nominalSectors`: the ROM's patch file then fixes the
 * sizes and CRCs for the real LUN on the device.
 */
export function gptFilesFor(entries: ProgramEntry[], lun: number, nominalSectors: number): BuiltGpt {
  const parts = entries.filter((e) => e.lun === lun && !/^(PrimaryGPT|BackupGPT)$/.test(e.label));
  return buildGpt({
    sectorSize: parts[0]!.sectorSize,
    diskSectors: nominalSectors,
    partitions: parts.map((e) => ({ name: e.label, firstLba: Number(e.startSector), sectors: e.numPartitionSectors })),
  });
}

export interface RaphaelinOptions {
  programmerName?: string;
  programmer?: Buffer;
  /** Edit the fixture rawprogram0.xml before use (e.g. move userdata). */
  rawprogram?: (xml: string) => string;
}

/**
 * A ROM folder (ROOT/images/) with the corpus raphaelin rawprogram0.xml and
 * patch0.xml and tiny files named as in that XML; metadata/cache/cust/userdata
 * are sparse (RAW, FILL and DONT_CARE chunks); gpt_main0.bin / gpt_backup0.bin
 * are real tables for that layout (as ptool makes them).
 */
export function makeRaphaelinRom(root: string, opts: RaphaelinOptions = {}): SyntheticRom {
  const images = path.join(root, 'images');
  mkdirSync(images, { recursive: true });
  const xml = (opts.rawprogram ?? ((x: string) => x))(readFileSync(RAPHAELIN_RAWPROGRAM, 'utf8'));
  writeFileSync(path.join(images, 'rawprogram0.xml'), xml);
  copyFileSync(RAPHAELIN_PATCH, path.join(images, 'patch0.xml'));
  const expected = new Map<string, Buffer>();
  const put = (name: string, data: Buffer, landed = data): void => {
    writeFileSync(path.join(images, name), data);
    expected.set(name, landed);
  };
  put('dummy.img', bytes(5000, 1)); // 2 sectors, last one padded
  put('misc.img', bytes(3 * 4096, 2));
  put('logfs_ufs_8mb.bin', bytes(10_000, 3));
  put('recovery.img', bytes(8192 + 100, 4));
  const sparse = (name: string, chunks: SparseChunkSpec[]): void => {
    const s = makeSparse(4096, chunks);
    put(name, s.sparse, s.expanded);
  };
  sparse('metadata.img', [{ raw: bytes(2 * 4096, 5) }, { skip: 3 }, { fill: 0xdeadbeef, blocks: 2 }, { raw: bytes(4096, 6) }]);
  sparse('cache.img', [{ fill: 0, blocks: 1 }, { raw: bytes(4096, 7) }, { skip: 10 }]);
  sparse('cust.img', [{ skip: 4 }, { raw: bytes(3 * 4096, 8) }]);
  sparse('userdata.img', [{ raw: bytes(4096, 9) }, { skip: 2000 }, { fill: 0x01020304, blocks: 3 }]);
  const entries = parseEdlXml(xml, 'rawprogram0.xml').entries.filter((e): e is ProgramEntry => e.kind === 'program');
  const userdata = entries.find((e) => e.label === 'userdata')!;
  const gpt = gptFilesFor(entries, 0, Number(userdata.startSector) + 8192);
  put('gpt_main0.bin', gpt.primary);
  put('gpt_backup0.bin', gpt.backup);
  const programmer = path.join(images, opts.programmerName ?? 'prog_ufs_firehose_sm8150_ddr.elf');
  writeFileSync(programmer, opts.programmer ?? makeElf());
  return { root, images, programmer, expected, sparseFiles: ['metadata.img', 'cache.img', 'cust.img', 'userdata.img'] };
}

export interface InProcessDevice {
  host: Transport;
  device: EmulatedEdlDevice;
  disks: MemoryDisk[];
  done: Promise<void>;
}

/** An emulated EDL device on the other end of a memory transport pair. */
export function startInProcessDevice(opts: EdlEmulatorOptions & { luns?: number; sectors?: number; sectorSize?: number; disks?: VirtualDisk[] } = {}): InProcessDevice {
  const { host, device: end } = createMemoryTransportPair({ timeoutMs: 5000 });
  const sectorSize = opts.sectorSize ?? (opts.memory === 'emmc' ? 512 : 4096);
  const disks = (opts.disks as MemoryDisk[] | undefined) ?? Array.from({ length: opts.luns ?? 1 }, () => new MemoryDisk(sectorSize, opts.sectors ?? RAPHAELIN_DISK_SECTORS));
  const { device, done } = serveOnTransport(end, disks, opts);
  return { host, device, disks, done };
}

/** Short qdl-shaped timeouts so fault tests end quickly. */
export const FAST = {
  xmlWrite: 500,
  configureAttempt: 200,
  configureTotal: 1000,
  programSetup: 500,
  dataWrite: 500,
  programFinal: 500,
  readSetup: 500,
  dataRead: 300,
  readFinal: 500,
  erase: 500,
  patch: 500,
  setBootable: 500,
  power: 500,
  storageInfo: 500,
  nop: 500,
  drain: 20,
};
