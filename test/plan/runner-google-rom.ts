// Test fixtures for Google factory packages: a deflating zip writer (real
// image zips are deflated; test/rom/helpers.ts only stores) and a small
// factory ROM folder (flash-all.sh, bootloader/radio images, image-*.zip).
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/rom/hash.js';
import { rawToSparse } from '../../src/sparse/index.js';
import type { FastbootClient } from '../../src/fastboot/client.js';
import { connectFastboot } from '../../src/fastboot/connect.js';
import type { FastbootEmulatorOptions, RunningFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { PlanEventSchema, type PlanEvent } from '../../src/plan/events.js';
import { runPlan, type ConfirmRequest, type RunPlanOptions } from '../../src/plan/runner.js';
import type { FlashPlan } from '../../src/plan/schema.js';
import { openRom, planForRom } from '../../src/rom/index.js';
import { withEmulator } from '../helpers/emulator.js';

export interface ZipItem {
  name: string;
  data: Buffer | string;
  /** Store instead of deflate. */
  store?: boolean;
}

/** A zip with deflated (method 8) or stored entries. */
export function makeDeflateZip(items: ZipItem[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const name = Buffer.from(it.name, 'utf8');
    const data = Buffer.from(it.data);
    const body = it.store ? data : deflateRawSync(data);
    const method = it.store ? 0 : 8;
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    c.writeUInt32LE(offset, 42);
    centrals.push(c, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(items.length, 8);
  end.writeUInt16LE(items.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A raw image of `blocks` 4 KiB blocks, every third one zero (so the sparse form has DONT_CARE/FILL runs), then its sparse form. */
export async function sparseImage(dir: string, name: string, blocks: number): Promise<{ raw: Buffer; sparse: Buffer }> {
  const raw = Buffer.alloc(blocks * 4096);
  for (let b = 0; b < blocks; b++) if (b % 3 !== 2) randomBytes(4096).copy(raw, b * 4096);
  const rawPath = path.join(dir, `${name}.raw`);
  const sparsePath = path.join(dir, `${name}.simg`);
  writeFileSync(rawPath, raw);
  await rawToSparse(rawPath, sparsePath);
  return { raw, sparse: readFileSync(sparsePath) };
}

export interface GoogleRom {
  root: string;
  zipName: string;
  /** Contents of each image inside the zip (sparse ones as stored). */
  zipImages: Record<string, Buffer>;
  bootloader: Buffer;
  radio: Buffer;
  /** Expanded system image (what the partition holds after flashing). */
  systemRaw: Buffer;
}

export interface GoogleRomOptions {
  /** flash-all.sh text; default: bootloader, reboot-bootloader, sleep 1, radio, reboot-bootloader, sleep 1, -w update. */
  script?: string;
  board?: string;
  /** Extra / replacement zip entries. */
  extra?: ZipItem[];
  /** Leave these images out of the zip. */
  omit?: string[];
  /** android-info.txt text (default `require board=BOARD`). */
  androidInfo?: string | null;
  systemBlocks?: number;
}

export const GOOGLE_SCRIPT = (zip: string) =>
  [
    '#!/bin/sh',
    'fastboot flash bootloader bootloader-emu-1.img',
    'fastboot reboot-bootloader',
    'sleep 1',
    'fastboot flash radio radio-emu-1.img',
    'fastboot reboot-bootloader',
    'sleep 1',
    `fastboot -w update ${zip}`,
    '',
  ].join('\n');

export async function buildGoogleRom(root: string, o: GoogleRomOptions = {}): Promise<GoogleRom> {
  mkdirSync(root, { recursive: true });
  const zipName = 'image-emu-test1.zip';
  const bootloader = randomBytes(12 * 1024);
  const radio = randomBytes(20 * 1024);
  writeFileSync(path.join(root, 'bootloader-emu-1.img'), bootloader);
  writeFileSync(path.join(root, 'radio-emu-1.img'), radio);
  writeFileSync(path.join(root, 'flash-all.sh'), o.script ?? GOOGLE_SCRIPT(zipName));
  const { raw, sparse } = await sparseImage(root, 'system', o.systemBlocks ?? 96);
  const zipImages: Record<string, Buffer> = {
    'boot.img': randomBytes(16 * 1024),
    'recovery.img': randomBytes(8 * 1024 + 100),
    'vbmeta.img': randomBytes(4096),
    'system.img': sparse,
    'vendor.img': randomBytes(24 * 1024),
  };
  for (const n of o.omit ?? []) delete zipImages[n];
  const items: ZipItem[] = [];
  if (o.androidInfo !== null) items.push({ name: 'android-info.txt', data: o.androidInfo ?? `require board=${o.board ?? 'emu'}\n` });
  for (const [name, data] of Object.entries(zipImages)) items.push({ name, data, store: name === 'vbmeta.img' });
  for (const e of o.extra ?? []) {
    const at = items.findIndex((i) => i.name === e.name);
    if (at >= 0) items.splice(at, 1);
    items.push(e);
    zipImages[e.name] = Buffer.from(e.data);
  }
  writeFileSync(path.join(root, zipName), makeDeflateZip(items));
  return { root, zipName, zipImages, bootloader, radio, systemRaw: raw };
}

/** Partitions a non-A/B emulator needs for these ROMs (on top of its defaults). */
export const GOOGLE_PARTITIONS: Record<string, number> = { bootloader: 1024 * 1024, radio: 1024 * 1024 };

// ---- running a plan for such a ROM against the in-process emulator ----

export interface Run {
  result?: Awaited<ReturnType<typeof runPlan>>;
  error?: unknown;
  events: PlanEvent[];
  log: string[];
  asked: ConfirmRequest[];
  connects: number;
  /** First bytes of partitions, read after the run. */
  heads: Record<string, Buffer>;
  /** Commands the first client sent (to tell "nothing at all" from "only getvars"). */
  firstClientCommands: string[];
}

export interface RunOpts {
  emu?: Partial<FastbootEmulatorOptions>;
  edit?: (p: FlashPlan) => FlashPlan;
  run?: Partial<RunPlanOptions>;
  /** Replace the reconnect function (gets the default one). */
  reconnect?: (dflt: () => Promise<FastbootClient>, emu: RunningFastbootEmulator) => () => Promise<FastbootClient>;
  heads?: Record<string, number>;
  /** Runs with the emulator still up after the plan (to inspect stored partitions). */
  check?: (emu: RunningFastbootEmulator) => void | Promise<void>;
}

export function head(emu: RunningFastbootEmulator, name: string, n: number): Buffer {
  const fd = openSync(emu.device.partitionPath(name), 'r');
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

export async function runGoogle(rom: GoogleRom, o: RunOpts = {}): Promise<Run> {
  const r = await openRom(rom.root);
  let plan = await planForRom(r);
  if (o.edit) plan = o.edit(plan);
  return withEmulator({ product: 'emu', partitions: GOOGLE_PARTITIONS, ...o.emu }, async (emu) => {
    const spec = { kind: 'tcp' as const, host: '127.0.0.1', port: emu.port };
    const client = await connectFastboot(spec, { timeoutMs: 5000 });
    const run: Run = { events: [], log: [], asked: [], connects: 1, heads: {}, firstClientCommands: client.stats.commands };
    const dflt = () => connectFastboot(spec, { timeoutMs: 5000 });
    const inner = o.reconnect ? o.reconnect(dflt, emu) : dflt;
    try {
      run.result = await runPlan(plan, {
        rom: r,
        client,
        deviceId: emu.address,
        confirm: async (q) => {
          run.asked.push(q);
          return true;
        },
        onEvent: (e) => run.events.push(PlanEventSchema.parse(e)),
        reconnect: () => {
          run.connects++;
          return inner();
        },
        reconnectIntervalMs: 50,
        ...o.run,
      });
    } catch (err) {
      run.error = err;
    } finally {
      await client.close().catch(() => {});
    }
    run.log = [...emu.log];
    for (const [name, n] of Object.entries(o.heads ?? {})) run.heads[name] = head(emu, name, n);
    await o.check?.(emu);
    return run;
  });
}

export const writes = (log: string[]) => log.filter((l) => !l.startsWith('getvar:'));
