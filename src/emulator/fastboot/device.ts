// The emulated device's persistent state: partition table and storage, vars,
// slots, lock state, mode (bootloader or fastbootd), dynamic partitions inside
// super, snapshot-update state, command log. Sessions (one per connection) drive
// it; it outlives them, as a phone outlives a USB cable.
//
// Two modes, as on a phone with dynamic partitions:
// - bootloader (is-userspace: no): physical partitions only; logical partitions
//   are unknown to it (flash them after `reboot fastboot`, or flash all of super).
// - fastbootd (is-userspace: yes), entered with `reboot-fastboot`: names are taken
//   as given (no slot guessing), logical partitions of the current slot come first,
//   then physical ones; sizes are printed "0x%X" as fastbootd does.
import { appendFileSync, closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { BadInputError } from '../../errors.js';
import { DynamicPartitions } from './logical.js';
import { FastbootCommandError } from './errors.js';
import { isSparse, parseSparseBuffer, parseSparseHeader, SPARSE_HEADER_SIZE } from '../../sparse/parse.js';

export interface FaultOptions {
  /** FAIL the Nth command (1-based, counted over the device's life) or every command matching a name ('flash:boot', 'flash'). */
  failOn?: number | string;
  failMessage?: string;
  /** Close the connection after N bytes of a download's data. */
  dropAfterBytes?: number;
  /** Stop answering from this command on (for the rest of the connection). */
  stallOn?: number | string;
  /** INFO lines sent before every OKAY/FAIL. */
  infoBefore?: string[];
  /** TEXT lines sent before every OKAY/FAIL. */
  textBefore?: string[];
}

export interface FastbootEmulatorOptions {
  /** Directory for partition files; null = discard mode (stores nothing, still hashes downloads for the log). */
  store: string | null;
  /**
   * SHA-256 every download for the log (default true). false (discard mode only) drops download data with no
   * per-byte work, logging `download SIZE -`: for benchmarks, so the device never limits the client.
   */
  hashDownloads?: boolean;
  product?: string;
  serial?: string;
  /** Default 512 MiB. */
  maxDownloadSize?: number;
  /** Adds or resizes partitions (full names, e.g. 'boot_a' or 'modem'). */
  partitions?: Record<string, number>;
  /** Removes default partitions (full names), e.g. a device without vbmeta_a / vbmeta_b. */
  dropPartitions?: string[];
  /** e.g. ['a', 'b']; A/B partitions then exist as NAME_a / NAME_b. */
  slots?: string[];
  vars?: Record<string, string>;
  logFile?: string;
  faults?: FaultOptions;
  /**
   * A dynamic-partitions phone: system, system_ext, vendor, product, odm, vendor_dlkm
   * and odm_dlkm are logical partitions inside super (not physical ones), and an
   * empty super gets a factory LP layout at start.
   */
  dynamicPartitions?: boolean;
  /** Virtual A/B: header flag set on the factory layout; update-super keeps neither slot's partitions. */
  virtualAb?: boolean;
  /** Initial `snapshot-update-status` (A/B only): none, snapshotted or merging. */
  snapshotUpdateStatus?: SnapshotStatus;
  /**
   * false: a phone whose recovery cannot start userspace fastboot: `reboot-fastboot`
   * is accepted but the device comes back in its bootloader (default true).
   */
  fastbootd?: boolean;
}

export type DeviceMode = 'bootloader' | 'fastbootd';
export type SnapshotStatus = 'none' | 'snapshotted' | 'merging';

/** Partitions that live inside super on a dynamic-partitions phone. */
export const DYNAMIC_PARTITIONS = ['system', 'system_ext', 'vendor', 'product', 'odm', 'vendor_dlkm', 'odm_dlkm'];

/** A physical or logical partition as an I/O target. */
export interface BlockTarget {
  kind: 'physical' | 'logical';
  name: string;
  size: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Partitions that get _a/_b copies when slots are configured. */
const AB_PARTITIONS: Record<string, number> = {
  boot: 128 * MiB,
  vendor_boot: 96 * MiB,
  init_boot: 8 * MiB,
  dtbo: 24 * MiB,
  vbmeta: 64 * KiB,
  vbmeta_system: 64 * KiB,
  system: 4 * GiB,
  vendor: 1 * GiB,
  product: 2 * GiB,
  odm: 256 * MiB,
  modem: 256 * MiB,
  xbl: 8 * MiB,
  xbl_config: 1 * MiB,
  abl: 8 * MiB,
  tz: 4 * MiB,
  hyp: 8 * MiB,
  dsp: 64 * MiB,
  bluetooth: 2 * MiB,
};

/** Partitions that never have slots. */
const SINGLE_PARTITIONS: Record<string, number> = {
  super: 8 * GiB,
  userdata: 16 * GiB,
  cache: 512 * MiB,
  metadata: 16 * MiB,
  misc: 1 * MiB,
  persist: 32 * MiB,
  logo: 32 * MiB,
  splash: 32 * MiB,
  cust: 1 * GiB,
  frp: 512 * KiB,
};

/** Only on devices without slots. */
const NON_AB_ONLY: Record<string, number> = { recovery: 128 * MiB };

/** Xiaomi pseudo-partitions: accepted, stored as files of whatever size. */
const PSEUDO_PARTITIONS = new Set(['crclist', 'sparsecrclist']);

const PARTITION_TYPES: Record<string, string> = {
  userdata: 'f2fs',
  cache: 'ext4',
  metadata: 'ext4',
  system: 'ext4',
  vendor: 'ext4',
};

export { FastbootCommandError };

export interface Download {
  size: number;
  /** The data (store mode), or null (discard mode). */
  data: Buffer | null;
  /** First bytes, kept even in discard mode to recognise and size-check sparse images. */
  head: Buffer;
  /** null when the device does not hash downloads (hashDownloads: false). */
  sha256: string | null;
}

export class EmulatedFastbootDevice {
  readonly store: string | null;
  readonly hashDownloads: boolean;
  readonly maxDownloadSize: number;
  readonly slots: string[];
  readonly faults: FaultOptions;
  readonly log: string[] = [];
  /** Full physical partition name -> size in bytes. */
  readonly partitions = new Map<string, number>();
  /** Sizes of stored pseudo-partitions (crclist, ...). */
  readonly pseudo = new Map<string, number>();
  currentSlot: string | undefined;
  unlocked = true;
  /** Which fastboot answers: the bootloader's, or userspace fastbootd's (after `reboot fastboot`). */
  mode: DeviceMode = 'bootloader';
  snapshotStatus: SnapshotStatus = 'none';
  readonly dynamicPartitions: boolean;
  readonly virtualAb: boolean;
  /** Whether `reboot-fastboot` really reaches fastbootd. */
  readonly fastbootdWorks: boolean;
  readonly superName = 'super';
  /** Logical partitions inside super (null in discard mode: nothing is stored). */
  readonly logical: DynamicPartitions | null;
  /** The last complete download (its data lives in the receiving session's buffer until the next download). */
  lastDownload: Download | undefined;
  /** Commands received over the device's life (fault injection counts these). */
  commandCount = 0;
  private readonly vars: Record<string, string>;
  private readonly logFile: string | undefined;

  constructor(opts: FastbootEmulatorOptions) {
    this.store = opts.store;
    this.hashDownloads = opts.hashDownloads ?? true;
    if (!this.hashDownloads && this.store !== null) {
      throw new BadInputError('hashDownloads: false needs discard mode (store: null): a storing device keeps the data anyway');
    }
    this.maxDownloadSize = opts.maxDownloadSize ?? 512 * MiB;
    this.slots = opts.slots ?? [];
    this.faults = opts.faults ?? {};
    this.logFile = opts.logFile;
    this.currentSlot = this.slots[0];
    this.dynamicPartitions = opts.dynamicPartitions ?? false;
    this.virtualAb = opts.virtualAb ?? false;
    this.fastbootdWorks = opts.fastbootd ?? true;
    for (const [name, size] of Object.entries(AB_PARTITIONS)) {
      if (this.dynamicPartitions && DYNAMIC_PARTITIONS.includes(name)) continue;
      if (this.slots.length === 0) this.partitions.set(name, size);
      else for (const s of this.slots) this.partitions.set(`${name}_${s}`, size);
    }
    for (const [name, size] of Object.entries(SINGLE_PARTITIONS)) this.partitions.set(name, size);
    if (this.slots.length === 0) for (const [name, size] of Object.entries(NON_AB_ONLY)) this.partitions.set(name, size);
    for (const [name, size] of Object.entries(opts.partitions ?? {})) this.partitions.set(name, size);
    for (const name of opts.dropPartitions ?? []) this.partitions.delete(name);
    const { 'is-userspace': userspace, 'snapshot-update-status': snapshot, ...vars } = opts.vars ?? {};
    if (vars.unlocked) this.unlocked = vars.unlocked === 'yes';
    if (userspace === 'yes') this.mode = 'fastbootd';
    const status = opts.snapshotUpdateStatus ?? snapshot ?? 'none';
    if (status !== 'none' && status !== 'snapshotted' && status !== 'merging') {
      throw new BadInputError(`bad snapshot-update-status "${status}": expected none, snapshotted or merging`);
    }
    this.snapshotStatus = status;
    this.vars = {
      product: opts.product ?? 'miflash-emu',
      serialno: opts.serial ?? 'EMU0001',
      version: '0.4',
      'version-bootloader': 'miflash-emu-1.0',
      'version-baseband': 'none',
      secure: 'yes',
      anti: '0',
      crc: '1',
      token: 'bWlmbGFzaC1lbXU=',
      'max-fetch-size': hex8(this.maxDownloadSize),
      ...vars,
    };
    this.initStore();
    const superSize = this.partitions.get(this.superName);
    this.logical =
      this.store === null || superSize === undefined
        ? null
        : new DynamicPartitions({
            superPath: this.partitionPath(this.superName),
            superName: this.superName,
            superSize,
            slots: this.slots,
            virtualAb: this.virtualAb,
            currentSlot: () => this.currentSlot,
          });
    if (this.dynamicPartitions && this.logical) this.logical.formatIfEmpty();
  }

  get product(): string {
    return this.vars.product!;
  }

  get serial(): string {
    return this.vars.serialno!;
  }

  get userspace(): boolean {
    return this.mode === 'fastbootd';
  }

  private initStore(): void {
    if (this.store === null) return;
    mkdirSync(this.store, { recursive: true });
    // Full-size files with holes: no disk used until something is written.
    for (const [name, size] of this.partitions) {
      const fd = openSync(this.partitionPath(name), 'a+');
      try {
        if (fstatSync(fd).size !== size) ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
    }
  }

  partitionPath(name: string): string {
    if (this.store === null) throw new Error('discard mode: partitions are not stored');
    return path.join(this.store, `${name}.img`);
  }

  /** Contents of a physical partition file (tests). */
  readPartition(name: string): Buffer {
    return readFileSync(this.partitionPath(name));
  }

  /** Contents of a logical partition of the current slot, read through its extents (tests). */
  readLogicalPartition(name: string): Buffer {
    const size = this.logical?.size(name);
    if (size === undefined) throw new Error(`no logical partition ${name}`);
    return this.readTarget({ kind: 'logical', name, size }, 0, size);
  }

  /** Diagnostics that are not commands (dropped connections); kept out of the command log. */
  readonly notes: string[] = [];
  onNote: ((note: string) => void) | undefined;

  note(text: string): void {
    this.notes.push(text);
    this.onNote?.(text);
  }

  record(line: string): void {
    this.log.push(line);
    if (this.logFile) appendFileSync(this.logFile, line + '\n');
  }

  // ---- variables --------------------------------------------------------

  /** Value of a getvar, or undefined for an unknown variable. Throws FastbootCommandError for fastbootd's own FAILs. */
  getVar(name: string): string | undefined {
    if (Object.hasOwn(this.vars, name) && name !== 'unlocked') return this.vars[name];
    switch (name) {
      case 'unlocked':
        return this.unlocked ? 'yes' : 'no';
      case 'max-download-size':
        return hex8(this.maxDownloadSize);
      case 'current-slot':
        return this.currentSlot;
      case 'slot-count':
        return this.slots.length > 0 ? String(this.slots.length) : undefined;
      case 'is-userspace':
        return this.userspace ? 'yes' : 'no';
      case 'super-partition-name':
        return this.userspace ? this.superName : undefined;
      case 'snapshot-update-status':
        if (this.slots.length > 0) return this.snapshotStatus;
        if (this.userspace) throw new FastbootCommandError('not supported');
        return undefined;
    }
    const [key, arg] = splitOnce(name, ':');
    if (arg === undefined) return undefined;
    return this.userspace ? this.fastbootdPartitionVar(key, arg) : this.bootloaderPartitionVar(key, arg);
  }

  private bootloaderPartitionVar(key: string, arg: string): string | undefined {
    switch (key) {
      case 'has-slot':
        return this.hasSlot(arg) ? 'yes' : 'no';
      case 'partition-size': {
        const size = this.partitions.get(arg);
        return size === undefined ? undefined : `0x${size.toString(16)}`;
      }
      case 'partition-type':
        return this.partitions.has(arg) ? (PARTITION_TYPES[stripSlot(arg, this.slots)] ?? 'raw') : undefined;
      case 'is-logical':
        return this.partitions.has(arg) ? 'no' : undefined;
    }
    return this.slotVar(key, arg);
  }

  /** fastbootd's variables.cpp: logical partitions first, FAIL texts as it words them. */
  private fastbootdPartitionVar(key: string, arg: string): string | undefined {
    const logical = this.logical?.size(arg);
    switch (key) {
      case 'has-slot': {
        if (!this.currentSlot) return 'no';
        const full = `${arg}_${this.currentSlot}`;
        return this.partitions.has(full) || this.logical?.has(full) ? 'yes' : 'no';
      }
      case 'partition-size': {
        const size = logical ?? this.partitions.get(arg);
        if (size === undefined) throw new FastbootCommandError('Could not open partition');
        return `0x${size.toString(16).toUpperCase()}`;
      }
      case 'partition-type':
        if (logical === undefined && !this.partitions.has(arg)) throw new FastbootCommandError('Invalid partition');
        return PARTITION_TYPES[stripSlot(arg, this.slots)] ?? 'raw';
      case 'is-logical':
        if (logical !== undefined) return 'yes';
        if (this.partitions.has(arg)) return 'no';
        throw new FastbootCommandError('Partition not found');
    }
    return this.slotVar(key, arg);
  }

  private slotVar(key: string, arg: string): string | undefined {
    switch (key) {
      case 'slot-successful':
      case 'slot-unbootable':
        return this.slots.includes(arg) ? (key === 'slot-successful' ? 'yes' : 'no') : undefined;
      case 'slot-retry-count':
        return this.slots.includes(arg) ? '7' : undefined;
    }
    return undefined;
  }

  /** Every variable as `name:value`, the way `getvar:all` lists them. */
  allVars(): string[] {
    const out: string[] = [];
    const plain = new Set([
      ...Object.keys(this.vars),
      'unlocked',
      'max-download-size',
      'current-slot',
      'slot-count',
      'is-userspace',
      'super-partition-name',
      'snapshot-update-status',
    ]);
    for (const name of plain) {
      const v = this.getVarOrUndefined(name);
      if (v !== undefined) out.push(`${name}:${v}`);
    }
    const logical = this.userspace ? (this.logical?.list() ?? []) : [];
    const all = [...this.partitions.keys(), ...logical.filter((n) => !this.partitions.has(n))];
    for (const base of new Set(all.map((p) => stripSlot(p, this.slots)))) {
      out.push(`has-slot:${base}:${this.getVar(`has-slot:${base}`)}`);
    }
    for (const p of all) {
      for (const key of ['partition-size', 'partition-type', ...(this.userspace ? ['is-logical'] : [])]) {
        const v = this.getVarOrUndefined(`${key}:${p}`);
        if (v !== undefined) out.push(`${key}:${p}:${v}`);
      }
    }
    return out;
  }

  private getVarOrUndefined(name: string): string | undefined {
    try {
      return this.getVar(name);
    } catch {
      return undefined;
    }
  }

  hasSlot(base: string): boolean {
    return this.slots.length > 0 && this.partitions.has(`${base}_${this.slots[0]}`);
  }

  // ---- flashing -----------------------------------------------------------

  /** Full partition names a flash/erase of `name` targets; throws for unknown names. */
  resolveTargets(name: string): string[] {
    if (this.partitions.has(name)) return [name];
    if (name.endsWith('_ab') && this.slots.length > 0) {
      const base = name.slice(0, -3);
      const all = this.slots.map((s) => `${base}_${s}`);
      if (all.every((p) => this.partitions.has(p))) return all;
    }
    if (this.currentSlot !== undefined && this.partitions.has(`${name}_${this.currentSlot}`)) {
      return [`${name}_${this.currentSlot}`];
    }
    throw new FastbootCommandError(`partition '${name}' does not exist`);
  }

  /**
   * The partitions a flash/erase/fetch of `name` reaches. The bootloader resolves
   * slots for physical partitions; fastbootd takes the name as given, logical first.
   */
  private blockTargets(name: string): BlockTarget[] {
    if (!this.userspace) return this.resolveTargets(name).map((n) => ({ kind: 'physical', name: n, size: this.partitions.get(n)! }));
    const logical = this.logical?.size(name);
    if (logical !== undefined) {
      // A zero-length logical partition cannot be mapped (device-mapper refuses it).
      if (logical === 0) throw new FastbootCommandError('No such file or directory');
      return [{ kind: 'logical', name, size: logical }];
    }
    const size = this.partitions.get(name);
    if (size === undefined) throw new FastbootCommandError('No such file or directory');
    return [{ kind: 'physical', name, size }];
  }

  async flash(name: string, download: Download): Promise<void> {
    if (PSEUDO_PARTITIONS.has(name)) {
      this.pseudo.set(name, download.size);
      if (this.store !== null && download.data) writeWhole(this.partitionPath(name), download.data);
      return;
    }
    if (this.userspace && this.logical?.has(name)) this.logical.cancelSnapshot(name);
    const targets = this.blockTargets(name);
    const sparse = isSparse(download.head);
    for (const target of targets) {
      if (sparse) this.flashSparse(target, download);
      else this.flashRaw(target, download);
    }
  }

  private tooLarge(detail: string): FastbootCommandError {
    // fastbootd answers strerror(EOVERFLOW); the bootloader says what happened.
    return new FastbootCommandError(this.userspace ? 'Value too large for defined data type' : detail);
  }

  private flashRaw(target: BlockTarget, download: Download): void {
    if (download.size > target.size) {
      throw this.tooLarge(`image too large for partition '${target.name}': ${download.size} bytes > ${target.size}`);
    }
    if (this.store === null || !download.data) return;
    this.writeTarget(target, [{ at: 0, data: download.data }]);
  }

  private flashSparse(target: BlockTarget, download: Download): void {
    let parsed;
    try {
      parsed = download.data ? parseSparseBuffer(download.data) : { header: parseSparseHeader(download.head.subarray(0, SPARSE_HEADER_SIZE), download.size), chunks: [] };
    } catch (err) {
      throw new FastbootCommandError(`invalid sparse image: ${(err as Error).message}`);
    }
    const { header, chunks } = parsed;
    const expanded = header.totalBlocks * header.blockSize;
    if (expanded > target.size) {
      throw this.tooLarge(`sparse image too large for partition '${target.name}': expands to ${expanded} bytes > ${target.size}`);
    }
    const data = download.data;
    if (this.store === null || !data) return;
    this.verifySparseCrc(parsed, data);
    const bs = header.blockSize;
    const pieces: Piece[] = [];
    for (const c of chunks) {
      const at = c.startBlock * bs;
      if (c.type === 'raw') pieces.push({ at, data: data.subarray(c.dataOffset, c.dataOffset + c.dataLength) });
      else if (c.type === 'fill') pieces.push({ at, fill: c.fill, length: c.blocks * bs });
    }
    this.writeTarget(target, pieces);
  }

  /** Write pieces at byte offsets of a partition: a physical file, or a logical partition's extents in super. */
  private writeTarget(target: BlockTarget, pieces: Piece[]): void {
    if (target.kind === 'physical') {
      this.withPartition(target.name, (fd) => {
        for (const p of pieces) writePiece(fd, p, p.at);
      });
      return;
    }
    this.withPartition(this.superName, (fd) => {
      for (const p of pieces) {
        const length = 'data' in p ? p.data.length : p.length;
        for (const r of this.logical!.map(target.name, p.at, length)) {
          if (r.physical === null) continue; // ZERO extent: dm-zero drops writes
          // Extents split a piece only at 512-byte sectors, so a fill pattern stays in phase.
          writePiece(fd, 'data' in p ? { at: 0, data: p.data.subarray(r.at, r.at + r.length) } : { at: 0, fill: p.fill, length: r.length }, r.physical);
        }
      }
    });
  }

  private readTarget(target: BlockTarget, offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    const ranges = target.kind === 'physical' ? [{ physical: offset, at: 0, length }] : this.logical!.map(target.name, offset, length);
    this.withPartition(target.kind === 'physical' ? target.name : this.superName, (fd) => {
      for (const r of ranges) {
        if (r.physical === null) continue;
        let done = 0;
        while (done < r.length) {
          const n = readSync(fd, out, r.at + done, r.length - done, r.physical + done);
          if (n === 0) break;
          done += n;
        }
      }
    });
    return out;
  }

  /** A CRC32 chunk holds the CRC of everything expanded before it (DONT_CARE as zeros). */
  private verifySparseCrc(parsed: ReturnType<typeof parseSparseBuffer>, data: Buffer): void {
    if (!parsed.chunks.some((c) => c.type === 'crc32')) return;
    const bs = parsed.header.blockSize;
    let crc = 0;
    for (const c of parsed.chunks) {
      if (c.type === 'raw') crc = crc32(data.subarray(c.dataOffset, c.dataOffset + c.dataLength), crc);
      else if (c.type === 'fill' || c.type === 'dont-care') {
        const pattern = fillBuffer(c.type === 'fill' ? c.fill : 0);
        for (let left = c.blocks * bs; left > 0; left -= pattern.length) {
          crc = crc32(left >= pattern.length ? pattern : pattern.subarray(0, left), crc);
        }
      } else if (c.crc !== crc) {
        throw new FastbootCommandError(
          `sparse CRC32 mismatch at chunk ${c.index}: image says 0x${hex8(c.crc).slice(2)}, data gives 0x${hex8(crc).slice(2)}`,
        );
      }
    }
  }

  /** Bytes of a partition for fetch; bounded by max-download-size. */
  readRange(name: string, offset: number, length?: number): Buffer {
    const [target] = this.blockTargets(name);
    const size = target!.size;
    const len = length ?? size - offset;
    if (offset < 0 || len < 0 || offset + len > size) {
      throw new FastbootCommandError(`fetch range ${offset}+${len} is outside partition '${target!.name}' (${size} bytes)`);
    }
    if (len > this.maxDownloadSize) throw new FastbootCommandError(`fetch of ${len} bytes exceeds max-fetch-size ${this.maxDownloadSize}`);
    if (this.store === null) throw new FastbootCommandError('discard mode stores nothing to fetch');
    return this.readTarget(target!, offset, len);
  }

  erase(name: string): void {
    const targets = this.blockTargets(name);
    if (this.store === null) return;
    for (const t of targets) {
      if (t.kind === 'logical') {
        this.writeTarget(t, [{ at: 0, fill: 0, length: t.size }]);
        continue;
      }
      // Truncating to 0 and back punches the whole file into a hole: all zeros.
      this.withPartition(t.name, (fd) => {
        ftruncateSync(fd, 0);
        ftruncateSync(fd, t.size);
      });
    }
  }

  private withPartition(name: string, fn: (fd: number) => void): void {
    const fd = openSync(this.partitionPath(name), 'r+');
    try {
      fn(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Bytes to write at a partition offset: data, or a 32-bit fill pattern repeated over `length` bytes. */
type Piece = { at: number; data: Uint8Array } | { at: number; fill: number; length: number };

function writePiece(fd: number, p: Piece, position: number): void {
  if ('data' in p) writeAll(fd, p.data, position);
  else writeFill(fd, p.fill, position, p.length);
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    done += writeSync(fd, data, done, data.length - done, position + done);
  }
}

function writeWhole(file: string, data: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    writeAll(fd, data, 0);
  } finally {
    closeSync(fd);
  }
}

const FILL_BUFFER_SIZE = 1 * MiB;
const fillCache = new Map<number, Buffer>();

function fillBuffer(value: number): Buffer {
  let buf = fillCache.get(value);
  if (!buf) {
    buf = Buffer.allocUnsafe(FILL_BUFFER_SIZE);
    for (let i = 0; i < FILL_BUFFER_SIZE; i += 4) buf.writeUInt32LE(value, i);
    if (fillCache.size > 16) fillCache.clear();
    fillCache.set(value, buf);
  }
  return buf;
}

function writeFill(fd: number, value: number, at: number, length: number): void {
  const pattern = fillBuffer(value);
  for (let done = 0; done < length; done += pattern.length) {
    const n = Math.min(pattern.length, length - done);
    writeAll(fd, pattern.subarray(0, n), at + done);
  }
}

function hex8(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function stripSlot(name: string, slots: string[]): string {
  for (const s of slots) if (name.endsWith(`_${s}`)) return name.slice(0, -(s.length + 1));
  return name;
}
