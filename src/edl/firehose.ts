// Firehose host client: one method per command, each waiting for its own
// <response> within a qdl-like timeout. NAK -> FirehoseNakError carrying the
// device's log lines; the Xiaomi "only nop and sig" log -> EdlAuthRequiredError
// (and nothing else is sent). Raw data phases (program/read) move exact byte
// counts, padded to whole sectors, in writes no larger than the negotiated payload.
import { TransportTimeoutError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import { AUTH_PHRASE, EdlAuthRequiredError, EdlInputError, EdlProtocolError, FirehoseNakError, type ChipIdentity } from './errors.js';
import { buildCommand, FirehoseReader, type AttrValue, type FirehoseResponse } from './firehose-xml.js';

/** Milliseconds per step; defaults follow qdl (edl.md §4.10). */
export interface FirehoseTimeouts {
  xmlWrite: number;
  configureAttempt: number;
  configureTotal: number;
  programSetup: number;
  dataWrite: number;
  programFinal: number;
  readSetup: number;
  dataRead: number;
  readFinal: number;
  erase: number;
  patch: number;
  setBootable: number;
  power: number;
  storageInfo: number;
  nop: number;
  /** Silence that ends the drain after configure (stale answers to retried configures). */
  drain: number;
}

export const QDL_TIMEOUTS: FirehoseTimeouts = {
  xmlWrite: 1000,
  configureAttempt: 100,
  configureTotal: 5000,
  programSetup: 10_000,
  dataWrite: 10_000,
  programFinal: 120_000,
  readSetup: 10_000,
  dataRead: 30_000,
  readFinal: 10_000,
  erase: 30_000,
  patch: 5000,
  setBootable: 5000,
  power: 5000,
  storageInfo: 30_000,
  nop: 5000,
  drain: 100,
};

/** Every step capped at `maxMs` (the user's --timeout, or a test's short budget). */
export function cappedTimeouts(maxMs: number, base: FirehoseTimeouts = QDL_TIMEOUTS): FirehoseTimeouts {
  const out = { ...base };
  for (const k of Object.keys(out) as (keyof FirehoseTimeouts)[]) out[k] = Math.min(out[k], maxMs);
  return out;
}

export type MemoryType = 'ufs' | 'emmc';

export interface ConfigureResult {
  memoryName: string;
  maxPayloadToTarget: number;
  maxPayloadFromTarget: number;
  maxXmlSize: number;
  targetName?: string;
  version?: string;
  /** How many configure documents were sent. */
  attempts: number;
}

export interface StorageInfo {
  totalBlocks?: number;
  blockSize?: number;
  pageSize?: number;
  numPhysical?: number;
  memType?: string;
  prodName?: string;
  /** Every log line of the answer, verbatim. */
  logs: string[];
}

export interface SectorRange {
  lun: number;
  sectorSize: number;
  /** Verbatim start sector (number or expression such as "NUM_DISK_SECTORS-5."). */
  startSector: string | number;
  sectors: number;
}

export interface ProgramRequest extends SectorRange {
  filename?: string;
  label?: string;
}

export interface FirehoseOptions {
  timeouts?: Partial<FirehoseTimeouts>;
  /** Every <log> line, as it arrives. */
  onLog?: (text: string) => void;
  /** Bytes already read from the device (e.g. the banner seen by Sahara). */
  pending?: Uint8Array;
  /** Programmer file name, for the authorisation message. */
  programmer?: string;
  /** Payload to ask for in configure (default 1 MiB). */
  maxPayload?: number;
  /** Chip identity learnt before Firehose (Sahara command mode), for messages. */
  chip?: ChipIdentity;
}

const MiB = 1024 * 1024;
/** Never go above this per write, whatever the target offers (bounded memory). */
const PAYLOAD_CAP = 16 * MiB;
const READ_SIZE = MiB;

export class FirehoseClient {
  readonly timeouts: FirehoseTimeouts;
  private readonly reader = new FirehoseReader();
  private maxPayloadToTarget: number;
  private maxPayloadFromTarget = MiB;
  private maxXmlSize = 4096;
  /** Set once an auth NAK was seen: the session is over. */
  private authFailed: EdlAuthRequiredError | undefined;
  /** Chip identity (from the options and the programmer's banner). */
  readonly chip: ChipIdentity;

  constructor(
    private readonly t: Transport,
    private readonly opts: FirehoseOptions = {},
  ) {
    this.timeouts = { ...QDL_TIMEOUTS, ...opts.timeouts };
    this.maxPayloadToTarget = opts.maxPayload ?? MiB;
    if (opts.pending) this.reader.push(opts.pending);
    this.chip = { ...opts.chip };
  }

  private onLog(text: string): void {
    // Banner: "INFO: Chip serial num: 3307173928 (0xc51f7828)".
    const m = /Chip serial num:\s*(\d+)/i.exec(text);
    if (m && this.chip.serial === undefined) this.chip.serial = Number(m[1]);
    this.opts.onLog?.(text);
  }

  get payloadSize(): number {
    return this.maxPayloadToTarget;
  }

  // ---- generic command -------------------------------------------------------

  /** Send one command and wait for its response. NAK -> FirehoseNakError (or EdlAuthRequiredError). */
  async command(tag: string, attrs: Record<string, AttrValue>, what: string, timeoutMs: number): Promise<{ response: FirehoseResponse; logs: string[] }> {
    await this.send(tag, attrs);
    const r = await this.waitResponse(`<${tag}> ${what}`, timeoutMs);
    if (!r.response.ack) throw this.nakError(tag, what, r.logs);
    return r;
  }

  private async send(tag: string, attrs: Record<string, AttrValue>): Promise<void> {
    if (this.authFailed) throw this.authFailed;
    const doc = buildCommand(tag, attrs);
    if (doc.length > this.maxXmlSize) {
      throw new EdlInputError(`Firehose <${tag}> document is ${doc.length} bytes, more than the target's MaxXMLSizeInBytes ${this.maxXmlSize}`);
    }
    try {
      await this.t.write(doc, { timeoutMs: this.timeouts.xmlWrite });
    } catch (err) {
      if (!(err instanceof TransportTimeoutError)) throw err;
      // qdl: the target may be blocked sending logs; drain, then write once more.
      await this.drain();
      await this.t.write(doc, { timeoutMs: this.timeouts.xmlWrite });
    }
  }

  /**
   * Logs read by a wait that timed out: they belong to the next response (a slow
   * programmer may log, then answer only after the host retried, as configure does).
   */
  private orphanLogs: string[] = [];

  /** Read until a <response>; logs go to onLog and are returned. */
  private async waitResponse(what: string, timeoutMs: number): Promise<{ response: FirehoseResponse; logs: string[] }> {
    const logs = this.orphanLogs;
    this.orphanLogs = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let e = this.reader.next(); e; e = this.reader.next()) {
        if (e.type === 'log') {
          logs.push(e.text);
          this.onLog(e.text);
        } else if (e.type === 'junk') {
          if (e.text.charCodeAt(0) === 0x01 && e.text.charCodeAt(4) === 0x30) {
            throw new EdlProtocolError(`Firehose ${what}: the device is still in Sahara mode (it sent a HELLO)`, {
              hint: 'the programmer is not running: run the Sahara upload first (give the ROM or --programmer)',
            });
          }
          this.opts.onLog?.(`(unparsed device output) ${e.text.slice(0, 200)}`);
        } else {
          return { response: e.response, logs };
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw this.timeoutError(what, timeoutMs, (this.orphanLogs = logs));
      try {
        this.reader.push(await this.t.read(READ_SIZE, { timeoutMs: left }));
      } catch (err) {
        if (err instanceof TransportTimeoutError) throw this.timeoutError(what, timeoutMs, (this.orphanLogs = logs));
        throw err;
      }
    }
  }

  private timeoutError(what: string, timeoutMs: number, logs: string[]): TransportTimeoutError {
    const said = logs.length ? ` (device logged: ${logs.map((l) => JSON.stringify(l)).join(' | ')})` : '';
    return new TransportTimeoutError(`Firehose ${what}: no response${said}`, timeoutMs, {
      hint: 'the programmer stopped answering; power-cycle the phone into EDL and retry (check cable / USB port)',
    });
  }

  private nakError(tag: string, what: string, logs: string[]): Error {
    if (logs.some((l) => AUTH_PHRASE.test(l))) {
      this.authFailed = new EdlAuthRequiredError(logs, { programmer: this.opts.programmer, chip: this.chip });
      return this.authFailed;
    }
    return new FirehoseNakError(tag, what, logs, { hint: hintFor(logs) });
  }

  /** Read and discard until `drain` ms of silence (stale responses of retried commands, late logs). */
  private async drain(): Promise<void> {
    for (;;) {
      for (let e = this.reader.next(); e; e = this.reader.next()) if (e.type === 'log') this.onLog(e.text);
      try {
        this.reader.push(await this.t.read(READ_SIZE, { timeoutMs: this.timeouts.drain }));
      } catch (err) {
        if (err instanceof TransportTimeoutError) return;
        throw err;
      }
    }
  }

  // ---- configure ---------------------------------------------------------------

  /**
   * configure with payload negotiation (qdl): a NAK carries the size the target
   * wants, an ACK may offer a larger supported size; re-configure once with it.
   * Attempts repeat for up to configureTotal ms (programmer start-up time).
   */
  async configure(memory: MemoryType, opts: { skipStorageInit?: boolean } = {}): Promise<ConfigureResult> {
    const deadline = Date.now() + this.timeouts.configureTotal;
    let attempts = 0;
    const send = async (size: number, timeoutMs: number): Promise<{ response: FirehoseResponse; logs: string[] }> => {
      attempts++;
      await this.send('configure', {
        MemoryName: memory,
        MaxPayloadSizeToTargetInBytes: size,
        Verbose: 0,
        ZlpAwareHost: 1,
        SkipStorageInit: opts.skipStorageInit ? 1 : 0,
      });
      return this.waitResponse(`configure (MemoryName=${memory}, MaxPayloadSizeToTargetInBytes=${size})`, timeoutMs);
    };
    let first: { response: FirehoseResponse; logs: string[] } | undefined;
    for (;;) {
      try {
        first = await send(this.maxPayloadToTarget, Math.max(1, Math.min(this.timeouts.configureAttempt, deadline - Date.now())));
        break;
      } catch (err) {
        if (!(err instanceof TransportTimeoutError) || Date.now() >= deadline) {
          if (err instanceof TransportTimeoutError) {
            throw new TransportTimeoutError('Firehose configure: the programmer never answered', this.timeouts.configureTotal, {
              hint: 'no Sahara HELLO and no Firehose answer: power-cycle the phone into EDL (9008) and retry',
            });
          }
          throw err;
        }
      }
    }
    const requested = this.maxPayloadToTarget;
    let r = first;
    const wanted = negotiatedSize(r.response);
    if (!r.response.ack) {
      if (r.logs.some((l) => AUTH_PHRASE.test(l)) || wanted === undefined || wanted === requested) {
        throw this.nakError('configure', `(MemoryName=${memory})`, r.logs);
      }
    }
    if (wanted !== undefined && wanted !== requested) {
      const size = Math.min(wanted, PAYLOAD_CAP);
      if (size !== requested) {
        r = await send(size, this.timeouts.configureTotal);
        if (!r.response.ack) throw this.nakError('configure', `(MemoryName=${memory}, renegotiated MaxPayloadSizeToTargetInBytes=${size})`, r.logs);
        this.maxPayloadToTarget = size;
      }
    }
    await this.drain();
    const a = r.response.attrs;
    const num = (k: string): number | undefined => (a[k] !== undefined && /^\d+$/.test(a[k]!) ? Number(a[k]) : undefined);
    this.maxPayloadFromTarget = num('MaxPayloadSizeFromTargetInBytes') ?? this.maxPayloadFromTarget;
    this.maxXmlSize = num('MaxXMLSizeInBytes') ?? this.maxXmlSize;
    return {
      memoryName: a.MemoryName ?? memory,
      maxPayloadToTarget: this.maxPayloadToTarget,
      maxPayloadFromTarget: this.maxPayloadFromTarget,
      maxXmlSize: this.maxXmlSize,
      targetName: a.TargetName,
      version: a.Version,
      attempts,
    };
  }

  /** qdl's probe: read LUN 0 sector 1 at 512 then 4096 bytes per sector; the first one not refused wins. */
  async probeSectorSize(candidates: number[] = [512, 4096]): Promise<number> {
    const refusals: string[] = [];
    for (const sectorSize of candidates) {
      try {
        await this.read({ lun: 0, sectorSize, startSector: 1, sectors: 1 }, () => undefined);
        return sectorSize;
      } catch (err) {
        if (!(err instanceof FirehoseNakError)) throw err;
        refusals.push(`${sectorSize}: ${err.logs.join(' | ') || 'NAK'}`);
      }
    }
    throw new FirehoseNakError('read', `sector-size probe (LUN 0, sector 1)`, refusals, {
      hint: 'the storage did not answer a read with any usual sector size; check --memory ufs|emmc',
    });
  }

  // ---- data commands -------------------------------------------------------------

  /**
   * Write exactly sectors*sectorSize bytes: the source's bytes, then zeros up to
   * the sector boundary. A source longer than that is a caller bug (refused).
   */
  async program(req: ProgramRequest, source: AsyncIterable<Uint8Array>, onProgress?: (bytes: number) => void): Promise<void> {
    const total = req.sectors * req.sectorSize;
    const what = `${req.label ?? req.filename ?? 'data'} (LUN ${req.lun}, start ${req.startSector}, ${req.sectors} sectors)`;
    await this.send('program', {
      SECTOR_SIZE_IN_BYTES: req.sectorSize,
      num_partition_sectors: req.sectors,
      physical_partition_number: req.lun,
      start_sector: req.startSector,
      filename: req.filename,
      label: req.label,
    });
    const setup = await this.waitResponse(`<program> ${what}`, this.timeouts.programSetup);
    if (!setup.response.ack) throw this.nakError('program', what, setup.logs);
    if (setup.response.rawmode !== true) {
      throw new EdlProtocolError(`Firehose <program> ${what}: ACK without rawmode="true"; the target will not accept data`);
    }
    this.reader.resumeXml();
    const chunk = Math.max(req.sectorSize, Math.floor(Math.min(this.maxPayloadToTarget, PAYLOAD_CAP) / req.sectorSize) * req.sectorSize);
    let sent = 0;
    let buf = Buffer.allocUnsafe(Math.min(chunk, total));
    let fill = 0;
    // Keep up to maxInFlight writes queued (they arrive in order); memory stays bounded by depth x chunk.
    const depth = Math.max(1, Math.min(this.t.maxInFlight, 4));
    const inflight: Promise<void>[] = [];
    const flush = async (): Promise<void> => {
      const end = sent + fill;
      const p = this.writeData(buf.subarray(0, fill), what, sent, total).then(() => onProgress?.(end));
      p.catch(() => undefined); // surfaced when awaited below
      inflight.push(p);
      sent = end;
      fill = 0;
      buf = Buffer.allocUnsafe(Math.min(chunk, total - sent));
      if (inflight.length >= depth) await inflight.shift();
    };
    for await (const piece of source) {
      let off = 0;
      while (off < piece.length) {
        if (sent + fill >= total) {
          throw new EdlInputError(`${what}: the data source has more than ${total} bytes`);
        }
        const n = Math.min(piece.length - off, buf.length - fill);
        buf.set(piece.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === buf.length) await flush();
      }
    }
    while (sent + fill < total) {
      buf.fill(0, fill);
      fill = buf.length;
      await flush();
    }
    if (fill > 0) await flush();
    while (inflight.length > 0) await inflight.shift();
    const final = await this.waitResponse(`<program> ${what}: final response`, this.timeouts.programFinal);
    if (!final.response.ack) throw this.nakError('program', `${what} data`, final.logs);
  }

  private async writeData(data: Uint8Array, what: string, sent: number, total: number): Promise<void> {
    try {
      await this.t.write(data, { timeoutMs: this.timeouts.dataWrite });
    } catch (err) {
      if (err instanceof TransportTimeoutError) {
        throw new TransportTimeoutError(`Firehose <program> ${what}: data write at byte ${sent} of ${total}`, this.timeouts.dataWrite, {
          hint: 'the target stopped taking data (USB stall); power-cycle the phone into EDL and retry',
        });
      }
      throw err;
    }
  }

  /** Read sectors; `sink` gets the raw bytes in order (exactly sectors*sectorSize). */
  async read(req: SectorRange, sink: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    const total = req.sectors * req.sectorSize;
    const what = `LUN ${req.lun}, start ${req.startSector}, ${req.sectors} sectors of ${req.sectorSize} bytes`;
    await this.send('read', {
      SECTOR_SIZE_IN_BYTES: req.sectorSize,
      num_partition_sectors: req.sectors,
      physical_partition_number: req.lun,
      start_sector: req.startSector,
    });
    const setup = await this.waitResponse(`<read> ${what}`, this.timeouts.readSetup);
    if (!setup.response.ack) throw this.nakError('read', what, setup.logs);
    if (setup.response.rawmode !== true) throw new EdlProtocolError(`Firehose <read> ${what}: ACK without rawmode="true"`);
    let got = 0;
    while (got < total) {
      let piece = this.reader.takeRaw(total - got);
      if (piece.length === 0) {
        let incoming: Buffer;
        try {
          incoming = await this.t.read(Math.min(READ_SIZE, Math.max(this.maxPayloadFromTarget, total - got)), { timeoutMs: this.timeouts.dataRead });
        } catch (err) {
          if (err instanceof TransportTimeoutError) {
            throw new TransportTimeoutError(`Firehose <read> ${what}: short read, received ${got} of ${total} bytes`, this.timeouts.dataRead, {
              hint: 'the target stopped sending data; power-cycle the phone into EDL and retry',
            });
          }
          throw err;
        }
        if (incoming.length === 0) continue; // ZLP between ACK and data
        this.reader.push(incoming);
        piece = this.reader.takeRaw(total - got);
      }
      got += piece.length;
      await sink(piece);
    }
    this.reader.resumeXml();
    const final = await this.waitResponse(`<read> ${what}: final response`, this.timeouts.readFinal);
    if (!final.response.ack) throw this.nakError('read', what, final.logs);
  }

  async erase(req: SectorRange & { label?: string }): Promise<void> {
    await this.command(
      'erase',
      {
        SECTOR_SIZE_IN_BYTES: req.sectorSize,
        num_partition_sectors: req.sectors,
        physical_partition_number: req.lun,
        start_sector: req.startSector,
      },
      `${req.label ?? ''} (LUN ${req.lun}, start ${req.startSector}, ${req.sectors} sectors)`.trim(),
      this.timeouts.erase,
    );
  }

  /** Attributes are sent verbatim (expressions evaluated by the programmer, as qdl does). */
  async patch(p: { sectorSize: number; byteOffset: number; lun: number; sizeInBytes: number; startSector: string; value: string; what?: string }): Promise<void> {
    await this.command(
      'patch',
      {
        SECTOR_SIZE_IN_BYTES: p.sectorSize,
        byte_offset: p.byteOffset,
        filename: 'DISK',
        physical_partition_number: p.lun,
        size_in_bytes: p.sizeInBytes,
        start_sector: p.startSector,
        value: p.value,
      },
      `LUN ${p.lun} sector ${p.startSector} +${p.byteOffset} = ${p.value}${p.what ? ` (${p.what})` : ''}`,
      this.timeouts.patch,
    );
  }

  async setBootableStorageDrive(lun: number): Promise<void> {
    await this.command('setbootablestoragedrive', { value: lun }, `value=${lun}`, this.timeouts.setBootable);
  }

  /** power: "reset" (qdl adds DelayInSeconds so the ACK gets out first), "off", "reset_to_edl". */
  async power(mode: 'reset' | 'off' | 'reset_to_edl' = 'reset', delaySeconds?: number): Promise<void> {
    await this.command('power', { value: mode, DelayInSeconds: delaySeconds }, mode, this.timeouts.power);
  }

  async nop(): Promise<string[]> {
    return (await this.command('nop', {}, '', this.timeouts.nop)).logs;
  }

  async getStorageInfo(lun = 0): Promise<StorageInfo> {
    const { logs } = await this.command('getstorageinfo', { physical_partition_number: lun }, `LUN ${lun}`, this.timeouts.storageInfo);
    return parseStorageInfo(logs);
  }
}

function negotiatedSize(r: FirehoseResponse): number | undefined {
  const v = r.ack ? (r.attrs.MaxPayloadSizeToTargetInBytesSupported ?? r.attrs.MaxPayloadSizeToTargetInBytes) : r.attrs.MaxPayloadSizeToTargetInBytes;
  return v !== undefined && /^\d+$/.test(v) && Number(v) > 0 ? Number(v) : undefined;
}

function hintFor(logs: string[]): string | undefined {
  const text = logs.join('\n');
  if (/Failed to open the SDCC Device/i.test(text)) return 'the device storage is not eMMC: try --memory ufs';
  if (/Failed to initialize \(open whole lun\) UFS/i.test(text)) return 'the device storage is not UFS: try --memory emmc';
  if (/sector size/i.test(text)) return 'the ROM\'s sector size does not match the device storage (UFS 4096, eMMC 512)';
  return undefined;
}

/** storage_info JSON (newer programmers) or "key: value" lines (older ones). */
export function parseStorageInfo(logs: string[]): StorageInfo {
  const info: StorageInfo = { logs };
  for (const line of logs) {
    const i = line.indexOf('{');
    if (i < 0) continue;
    try {
      const parsed = JSON.parse(line.slice(i)) as { storage_info?: Record<string, unknown> };
      const s = parsed.storage_info;
      if (!s) continue;
      const n = (k: string): number | undefined => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
      info.totalBlocks = n('total_blocks');
      info.blockSize = n('block_size');
      info.pageSize = n('page_size');
      info.numPhysical = n('num_physical');
      info.memType = typeof s.mem_type === 'string' ? s.mem_type : undefined;
      info.prodName = typeof s.prod_name === 'string' ? s.prod_name : undefined;
      return info;
    } catch {
      // not JSON: try the next line
    }
  }
  for (const line of logs) {
    const m = /(total_blocks|block_size|page_size|num_physical|UFS Total Active LU)\s*[:=]\s*(0x[0-9a-f]+|\d+)/i.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    const k = m[1]!.toLowerCase();
    if (k === 'total_blocks') info.totalBlocks = v;
    else if (k === 'block_size') info.blockSize = v;
    else if (k === 'page_size') info.pageSize = v;
    else info.numPhysical = v;
  }
  return info;
}
