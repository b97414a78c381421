// One host connection to the emulated device, as a transport-independent state
// machine. The driver (TCP server, in-memory transport) feeds it commands and
// download bytes; it answers through `SessionIo`.
//
// Phases: command -> (download:N) -> data (N bytes) -> command ...
// Data is never touched per byte: discard mode only hashes it (or, without
// hashing, drops it), store mode copies it once into a preallocated buffer.
import { createHash, type Hash } from 'node:crypto';
import { EmulatedFastbootDevice, FastbootCommandError, type DeviceMode, type Download } from './device.js';
import type { DynamicPartitions } from './logical.js';
import { SPARSE_HEADER_SIZE } from '../../sparse/parse.js';

/** Replies go out in packets of at most this many bytes (fastboot FB_RESPONSE_SZ). */
export const MAX_RESPONSE = 256;
export const MAX_COMMAND = 4096;

export interface SessionIo {
  /** Send one reply packet. */
  send(packet: Buffer): void;
  /** Close the connection (after a reboot, or a fault drop). Pending sends are flushed first unless `abrupt`. */
  close(abrupt: boolean): void;
}

const REBOOTS = new Set(['reboot', 'reboot-bootloader', 'reboot-recovery', 'reboot-fastboot', 'reboot-edl', 'continue', 'shutdown']);

export class FastbootDeviceSession {
  private downloadSize = 0;
  private received = 0;
  private buffer: Buffer | null = null; // reused across downloads when big enough
  private hash: Hash | undefined;
  private head = Buffer.alloc(SPARSE_HEADER_SIZE);
  /** The download buffer is the device's: it survives reconnects (stage, then get_staged or flash later). */
  private get lastDownload(): Download | undefined {
    return this.device.lastDownload;
  }

  private set lastDownload(d: Download | undefined) {
    this.device.lastDownload = d;
  }
  private stalled = false;
  closed = false;

  constructor(
    readonly device: EmulatedFastbootDevice,
    private readonly io: SessionIo,
  ) {}

  /** Bytes of download data still expected (0 in the command phase). */
  get dataRemaining(): number {
    return this.downloadSize - this.received;
  }

  get isStalled(): boolean {
    return this.stalled;
  }

  /** Feed download data; returns how many bytes were consumed (the rest belongs to no download). */
  feedData(chunk: Buffer): number {
    if (this.closed) return chunk.length;
    const drop = this.device.faults.dropAfterBytes;
    let take = Math.min(chunk.length, this.dataRemaining);
    if (drop !== undefined && this.received + take >= drop) take = Math.max(0, drop - this.received);
    const part = take === chunk.length ? chunk : chunk.subarray(0, take);
    if (take > 0) {
      this.hash?.update(part);
      if (this.received < SPARSE_HEADER_SIZE) {
        part.copy(this.head, this.received, 0, Math.min(take, SPARSE_HEADER_SIZE - this.received));
      }
      if (this.buffer) part.copy(this.buffer, this.received);
      this.received += take;
    }
    if (drop !== undefined && this.received >= drop && this.dataRemaining > 0) {
      this.closed = true;
      this.io.close(true);
      return chunk.length;
    }
    if (this.downloadSize > 0 && this.dataRemaining === 0) this.finishDownload();
    return take;
  }

  private finishDownload(): void {
    const size = this.downloadSize;
    const sha256 = this.hash ? this.hash.digest('hex') : null;
    this.device.record(`download ${size} ${sha256 ?? '-'}`);
    this.lastDownload = {
      size,
      data: this.buffer ? this.buffer.subarray(0, size) : null,
      head: Buffer.from(this.head.subarray(0, Math.min(size, SPARSE_HEADER_SIZE))),
      sha256,
    };
    this.downloadSize = 0;
    this.received = 0;
    this.hash = undefined;
    this.finalReply('OKAY', '');
  }

  /** Handle one command packet. */
  async command(packet: Buffer): Promise<void> {
    if (this.closed) return;
    const text = packet.toString('latin1');
    const n = ++this.device.commandCount;
    // A download is logged with its hash once its data is complete; one that
    // never gets data (refused, stalled) is logged as received.
    const isDownload = text.startsWith('download:');
    if (!isDownload) this.device.record(text);
    const faults = this.device.faults;
    if (this.stalled || matches(faults.stallOn, n, text)) {
      if (isDownload) this.device.record(text);
      this.stalled = true;
      return;
    }
    if (matches(faults.failOn, n, text)) {
      if (isDownload) this.device.record(text);
      this.finalReply('FAIL', faults.failMessage ?? 'injected failure');
      return;
    }
    try {
      await this.dispatch(text);
    } catch (err) {
      if (isDownload) this.device.record(text);
      const msg = err instanceof FastbootCommandError ? err.message : `internal error: ${(err as Error).message}`;
      this.finalReply('FAIL', msg);
    }
  }

  /** A command frame over MAX_COMMAND bytes (only its start was kept): counted, logged, FAILed. */
  commandTooLong(start: Buffer, length: number): void {
    if (this.closed) return;
    this.device.commandCount++;
    this.device.record(start.toString('latin1'));
    if (!this.stalled) this.finalReply('FAIL', `command too long: ${length} bytes, the limit is ${MAX_COMMAND}`);
  }

  private async dispatch(text: string): Promise<void> {
    if (text === '') throw new FastbootCommandError('empty command');
    const [name, arg] = splitOnce(text, ':');
    if (this.device.userspace) return this.fastbootd(text, name, arg);
    switch (name) {
      case 'getvar':
        return this.getvar(arg ?? '');
      case 'download':
        return this.startDownload(arg ?? '');
      case 'flash': {
        const dl = this.lastDownload;
        if (!dl) throw new FastbootCommandError('no image downloaded; send download:SIZE first');
        await this.device.flash(arg ?? '', dl);
        return this.finalReply('OKAY', '');
      }
      case 'erase':
        this.device.erase(arg ?? '');
        return this.finalReply('OKAY', '');
      case 'set_active':
        return this.setActive(arg ?? '');
      case 'upload':
        return this.upload();
      case 'fetch':
        return this.fetch(arg ?? '');
      case 'boot':
        // Booting the downloaded image leaves fastboot, like a reboot.
        if (!this.lastDownload) throw new FastbootCommandError('no image downloaded; send download:SIZE first');
        return this.leave('bootloader', '');
      case 'signature': {
        // A bootloader that installs a 256-byte signature for the next flash (AOSP `fastboot signature FILE`).
        const dl = this.lastDownload;
        if (arg !== undefined) break;
        if (!dl) throw new FastbootCommandError('no signature downloaded; send download:00000100 first');
        if (dl.size !== 256) throw new FastbootCommandError(`signature must be 256 bytes, got ${dl.size}`);
        return this.finalReply('OKAY', '');
      }
      case 'snapshot-update':
        // Bootloaders of virtual A/B devices can cancel an update; merging needs userspace.
        if (arg === 'merge') throw new FastbootCommandError('snapshot merge needs fastbootd: reboot fastboot first');
        return this.snapshotUpdate(arg ?? '');
    }
    if (REBOOTS.has(text)) return this.leave(text === 'reboot-fastboot' ? 'fastbootd' : 'bootloader', '');
    if (text.startsWith('oem ') || text.startsWith('flashing ')) return this.oem(text);
    throw new FastbootCommandError(`unknown command '${text}'`);
  }

  /**
   * Userspace fastboot (fastbootd): its command table, wording and checks
   * (system/core fastboot/device). Anything else is "Unrecognized command".
   */
  private async fastbootd(text: string, name: string, arg: string | undefined): Promise<void> {
    const args = text.split(':');
    const device = this.device;
    const lockedFail = (what: string): void => {
      if (!device.unlocked) throw new FastbootCommandError(what);
    };
    const protectedDuringMerge = (op: string, partition: string): void => {
      if (['userdata', 'metadata', 'misc'].includes(partition) && device.snapshotStatus !== 'none') {
        throw new FastbootCommandError(`Cannot ${op} ${partition} while a snapshot update is in progress`);
      }
    };
    if (text.startsWith('oem ')) return this.oem(text);
    switch (name) {
      case 'getvar':
        return this.getvar(arg ?? '');
      case 'download':
        lockedFail('Download is not allowed on locked devices');
        return this.startDownload(arg ?? '');
      case 'flash': {
        if (args.length < 2) throw new FastbootCommandError('Invalid arguments');
        lockedFail('Flashing is not allowed on locked devices');
        protectedDuringMerge('flash', args[1]!);
        const dl = this.lastDownload;
        this.lastDownload = undefined; // fastbootd moves the download out
        if (!dl) throw new FastbootCommandError('Invalid argument');
        await device.flash(args[1]!, dl);
        return this.finalReply('OKAY', 'Flashing succeeded');
      }
      case 'erase':
        if (args.length < 2) throw new FastbootCommandError('Invalid arguments');
        lockedFail('Erase is not allowed on locked devices');
        protectedDuringMerge('erase', args[1]!);
        try {
          device.erase(args[1]!);
        } catch {
          throw new FastbootCommandError("Partition doesn't exist");
        }
        return this.finalReply('OKAY', 'Erasing succeeded');
      case 'set_active':
        if (args.length < 2) throw new FastbootCommandError('Missing slot argument');
        lockedFail('set_active command is not allowed on locked devices');
        if (device.slots.length === 0) throw new FastbootCommandError('Cannot set slot: boot control HAL absent');
        if (device.snapshotStatus === 'merging' && args[1] !== device.currentSlot) {
          throw new FastbootCommandError('Cannot change slots while a snapshot update is in progress');
        }
        if (device.snapshotStatus === 'snapshotted' && args[1] !== device.currentSlot) {
          this.reply('INFO', 'Changing the active slot with a snapshot applied may cancel the update.');
        }
        return this.setActive(args[1]!);
      case 'fetch':
        return this.fetchFastbootd(args);
      case 'create-logical-partition':
      case 'resize-logical-partition': {
        if (args.length < 3) throw new FastbootCommandError('Invalid partition name and size');
        lockedFail('Command not available on locked devices');
        const size = parseUint(args[2]!);
        if (size === undefined) throw new FastbootCommandError('Invalid partition size');
        const dp = this.dynamic();
        const message = name === 'create-logical-partition' ? dp.create(args[1]!, size) : dp.resize(args[1]!, size);
        return this.finalReply('OKAY', message);
      }
      case 'delete-logical-partition':
        if (args.length < 2) throw new FastbootCommandError('Invalid partition name and size');
        lockedFail('Command not available on locked devices');
        return this.finalReply('OKAY', this.dynamic().delete(args[1]!));
      case 'update-super': {
        if (args.length < 2) throw new FastbootCommandError('Invalid arguments');
        lockedFail('Command not available on locked devices');
        const dl = this.lastDownload;
        this.lastDownload = undefined;
        if (!dl) throw new FastbootCommandError('No data available');
        if (!dl.data) throw new FastbootCommandError('discard mode keeps no download data to read metadata from');
        return this.finalReply('OKAY', this.dynamic().updateSuper(args[1]!, dl.data, args[2] === 'wipe'));
      }
      case 'snapshot-update':
        return this.snapshotUpdate(arg ?? '');
      case 'gsi':
        if (args.length !== 2) throw new FastbootCommandError('Invalid arguments');
        throw new FastbootCommandError('No GSI is installed');
      case 'reboot':
        return this.leave('bootloader', 'Rebooting');
      case 'reboot-bootloader':
        return this.leave('bootloader', 'Rebooting bootloader');
      case 'reboot-fastboot':
        return this.leave('fastbootd', 'Rebooting fastboot');
      case 'reboot-recovery':
        return this.leave('bootloader', 'Rebooting to recovery');
      case 'shutdown':
        return this.leave('bootloader', 'Shutting down');
    }
    throw new FastbootCommandError(`Unrecognized command ${args[0]}`);
  }

  private dynamic(): DynamicPartitions {
    if (!this.device.logical) throw new FastbootCommandError('Could not open super partition');
    return this.device.logical;
  }

  /** `snapshot-update[:cancel|:merge]` (fastbootd's wording; the bootloader only reaches cancel/status). */
  private snapshotUpdate(arg: string): void {
    const device = this.device;
    if (device.slots.length === 0) throw new FastbootCommandError('Not supported');
    if (arg === '') {
      this.reply('INFO', device.snapshotStatus);
      return this.finalReply('OKAY', '');
    }
    if (arg === 'cancel') {
      device.snapshotStatus = 'none';
    } else if (arg === 'merge') {
      if (device.snapshotStatus !== 'merging') throw new FastbootCommandError('No snapshot merge is in progress');
      device.snapshotStatus = 'none';
    } else {
      throw new FastbootCommandError('Invalid parameter to snapshot-update');
    }
    this.finalReply('OKAY', device.userspace ? 'Success' : '');
  }

  /** fastbootd's fetch: only vendor_boot partitions, offset and size parsed like its ParseUint. */
  private fetchFastbootd(args: string[]): void {
    const allowed = ['vendor_boot', 'vendor_boot_a', 'vendor_boot_b'];
    if (args.length < 2) throw new FastbootCommandError('Missing partition arg');
    const partition = args[1]!;
    if (!allowed.includes(partition)) throw new FastbootCommandError(`Fetch is only allowed on [${allowed.join(', ')}]`);
    if (!this.device.unlocked) throw new FastbootCommandError('Fetch is not allowed on locked devices');
    const offset = args.length >= 3 ? parseUint(args[2]!) : 0;
    if (offset === undefined) throw new FastbootCommandError('Invalid offset, must be integer');
    const size = args.length >= 4 ? parseUint(args[3]!) : undefined;
    if (args.length >= 4 && size === undefined) throw new FastbootCommandError('Invalid size, must be integer');
    const data = this.device.readRange(partition, offset, size);
    this.sendData(data, `Fetched ${partition} (offset=0x${offset.toString(16)}, size=0x${data.length.toString(16)}`);
  }

  /** OKAY, then the device goes away (closes the link); it accepts the next connection, in `mode`, when it "comes back". */
  private leave(mode: DeviceMode, message: string): void {
    this.finalReply('OKAY', message);
    this.device.mode = mode === 'fastbootd' && !this.device.fastbootdWorks ? 'bootloader' : mode;
    this.closed = true;
    this.io.close(false);
  }

  private getvar(name: string): void {
    if (name === 'all') {
      for (const line of this.device.allVars()) this.reply('INFO', line);
      return this.finalReply('OKAY', '');
    }
    const value = this.device.getVar(name);
    if (value === undefined) throw new FastbootCommandError(this.device.userspace ? 'Unknown variable' : 'GetVar Variable Not found');
    this.finalReply('OKAY', value);
  }

  private startDownload(arg: string): void {
    if (!/^[0-9a-fA-F]{1,8}$/.test(arg)) throw new FastbootCommandError(`bad download size '${arg}': expected 8 hex digits`);
    const size = parseInt(arg, 16);
    if (size === 0) throw new FastbootCommandError('download size is 0');
    if (size > this.device.maxDownloadSize) {
      throw new FastbootCommandError(`data too large: ${size} bytes > max-download-size ${this.device.maxDownloadSize}`);
    }
    this.lastDownload = undefined;
    if (this.device.store !== null) {
      if (!this.buffer || this.buffer.length < size) {
        this.buffer = null; // let the old one go before allocating the new one
        this.buffer = Buffer.allocUnsafe(size);
      }
    }
    this.downloadSize = size;
    this.received = 0;
    this.hash = this.device.hashDownloads ? createHash('sha256') : undefined;
    this.reply('DATA', size.toString(16).padStart(8, '0'));
  }

  /** Device -> host: DATA%08x, the bytes (1 MiB packets), OKAY. */
  private sendData(data: Buffer, message = ''): void {
    this.reply('DATA', data.length.toString(16).padStart(8, '0'));
    for (let i = 0; i < data.length && !this.closed; i += 1024 * 1024) this.io.send(data.subarray(i, i + 1024 * 1024));
    this.finalReply('OKAY', message);
  }

  private upload(): void {
    const data = this.lastDownload?.data;
    if (!data) throw new FastbootCommandError(this.lastDownload ? 'discard mode keeps no data to upload' : 'nothing to upload');
    this.sendData(data);
  }

  /** fetch:PARTITION:0xOFFSET:0xSIZE (AOSP `fastboot fetch`). */
  private fetch(arg: string): void {
    const m = /^([^:]+)(?::(0x[0-9a-f]+|\d+))?(?::(0x[0-9a-f]+|\d+))?$/i.exec(arg);
    if (!m) throw new FastbootCommandError(`bad fetch arguments '${arg}': expected PARTITION[:OFFSET[:SIZE]]`);
    const data = this.device.readRange(m[1]!, m[2] === undefined ? 0 : Number(m[2]), m[3] === undefined ? undefined : Number(m[3]));
    this.sendData(data);
  }

  private setActive(slot: string): void {
    const s = slot.replace(/^_/, '');
    if (!this.device.slots.includes(s)) throw new FastbootCommandError(`invalid slot '${slot}'`);
    this.device.currentSlot = s;
    this.finalReply('OKAY', '');
  }

  private oem(text: string): void {
    const sub = text.replace(/^(oem|flashing) /, '');
    switch (sub) {
      case 'lock':
        this.device.unlocked = false;
        return this.finalReply('OKAY', '');
      case 'unlock':
        this.device.unlocked = true;
        return this.finalReply('OKAY', '');
      case 'device-info':
        this.reply('INFO', `Device unlocked: ${this.device.unlocked}`);
        this.reply('INFO', 'Device critical unlocked: true');
        this.reply('INFO', 'Charger screen enabled: false');
        return this.finalReply('OKAY', '');
      case 'get_unlock_ability':
        this.reply('INFO', 'get_unlock_ability: 1');
        return this.finalReply('OKAY', '');
    }
    this.reply('INFO', `${text}: accepted by the emulator`);
    this.finalReply('OKAY', '');
  }

  /** OKAY/FAIL, preceded by the injected INFO/TEXT lines. */
  private finalReply(status: 'OKAY' | 'FAIL', message: string): void {
    for (const line of this.device.faults.infoBefore ?? []) this.reply('INFO', line);
    for (const line of this.device.faults.textBefore ?? []) this.reply('TEXT', line);
    this.reply(status, message);
  }

  private reply(status: string, message: string): void {
    if (this.closed) return;
    const packet = Buffer.from(status + message, 'latin1');
    this.io.send(packet.length > MAX_RESPONSE ? packet.subarray(0, MAX_RESPONSE) : packet);
  }
}

function matches(spec: number | string | undefined, n: number, text: string): boolean {
  if (spec === undefined) return false;
  if (typeof spec === 'number') return spec === n;
  return text === spec || text.startsWith(`${spec}:`) || text.startsWith(`${spec} `);
}

/** android::base::ParseUint as fastbootd uses it (strtoull base 0): decimal, 0x hex, or leading-0 octal. */
export function parseUint(text: string): number | undefined {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) v = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) v = Number(text);
  else return undefined;
  return Number.isSafeInteger(v) ? v : undefined;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
