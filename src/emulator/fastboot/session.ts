// One host connection to the emulated device, as a transport-independent state
// machine. The driver (TCP server, in-memory transport) feeds it commands and
// download bytes; it answers through `SessionIo`.
//
// Phases: command -> (download:N) -> data (N bytes) -> command ...
// Data is never touched per byte: discard mode only hashes it (or, without
// hashing, drops it), store mode copies it once into a preallocated buffer.
import { createHash, type Hash } from 'node:crypto';
import { EmulatedFastbootDevice, FastbootCommandError, type Download } from './device.js';
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
  private lastDownload: Download | undefined;
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
    const [name, arg] = splitOnce(text, ':');
    if (text === '') throw new FastbootCommandError('empty command');
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
        return this.leave();
    }
    if (REBOOTS.has(text)) return this.leave();
    if (text.startsWith('oem ') || text.startsWith('flashing ')) return this.oem(text);
    throw new FastbootCommandError(`unknown command '${text}'`);
  }

  /** OKAY, then the device goes away (closes the link); it accepts the next connection when it "comes back". */
  private leave(): void {
    this.finalReply('OKAY', '');
    this.closed = true;
    this.io.close(false);
  }

  private getvar(name: string): void {
    if (name === 'all') {
      for (const line of this.device.allVars()) this.reply('INFO', line);
      return this.finalReply('OKAY', '');
    }
    const value = this.device.getVar(name);
    if (value === undefined) throw new FastbootCommandError('GetVar Variable Not found');
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
  private sendData(data: Buffer): void {
    this.reply('DATA', data.length.toString(16).padStart(8, '0'));
    for (let i = 0; i < data.length && !this.closed; i += 1024 * 1024) this.io.send(data.subarray(i, i + 1024 * 1024));
    this.finalReply('OKAY', '');
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

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
