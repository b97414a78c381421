// The programmer's side of Firehose, as the emulated device plays it. One host
// packet = one XML document (or a piece of raw data in rawmode). Answers follow
// the real programmers' shapes (edl.md §4, §8.3); faults are injectable.
import { crc32 } from 'node:zlib';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { evalExpr, parseExpr, parsePatchValue } from '../../edl/expr.js';
import type { VirtualDisk } from './disk.js';

export interface FirehoseFaults {
  /** Answer NAK (with an ERROR log) to every command with this tag. */
  nakTag?: string;
  /** Go silent on the first command with this tag (a stalled programmer). */
  stallTag?: string;
  /** <read> sends half of the data, then goes silent. */
  shortRead?: boolean;
  /** A bad block: a <read> covering this sector (any LUN) sends its data, then a NAK (a storage read error). */
  badSector?: number;
}

export interface FirehoseDeviceOptions {
  memory?: 'ufs' | 'emmc';
  maxPayloadToTarget?: number;
  maxPayloadFromTarget?: number;
  maxXmlSize?: number;
  /** Xiaomi auth-locked programmer: only nop and sig before authentication. */
  authRequired?: boolean;
  /** The exact log text for the auth refusal (spelling varies between builds). */
  authPhrase?: string;
  faults?: FirehoseFaults;
  /** Glue all documents of one answer into one packet (stream-like transports). */
  coalesce?: boolean;
  targetName?: string;
  /** Called for every command document received (logging). */
  onCommand?: (c: FirehoseCommandRecord) => void;
}

export interface FirehoseCommandRecord {
  tag: string;
  attrs: Record<string, string>;
}

export interface FirehoseDeviceOutput {
  /** A promise means "the link is full": the device waits for it before sending more (streamed reads). */
  send(packet: Buffer): void | Promise<void>;
  /** power reset/off: the USB device goes away. */
  powerOff(mode: string): void;
}

const DEFAULT_AUTH_PHRASE = 'ERROR: Only nop and sig tag can be recevied before authentication.';

const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseAttributeValue: false, parseTagValue: false });

type Node = Record<string, unknown> & { ':@'?: Record<string, string> };

export class FirehoseDevice {
  readonly commands: FirehoseCommandRecord[] = [];
  bootableDrive: number | undefined;
  /** Bytes of host data that exceeded the negotiated payload per transfer (should stay 0). */
  oversizedTransfers = 0;
  private configured = false;
  private payload: number;
  private raw: { lun: number; offset: number; remaining: number; bad?: string } | undefined;
  private silent = false;
  private out: Buffer[] = [];
  /** A <read> streaming its data; packets arriving meanwhile wait in the backlog. */
  private busy: Promise<void> | undefined;
  private readonly backlog: Buffer[] = [];

  constructor(
    private readonly disks: VirtualDisk[],
    private readonly opts: FirehoseDeviceOptions,
    private readonly output: FirehoseDeviceOutput,
  ) {
    this.payload = opts.maxPayloadToTarget ?? 1024 * 1024;
  }

  private get memory(): 'ufs' | 'emmc' {
    return this.opts.memory ?? 'ufs';
  }

  /** Start-up banner, as real programmers print it. */
  banner(): void {
    const functions = ['program', 'read', 'nop', 'patch', 'configure', 'setbootablestoragedrive', 'erase', 'power', 'getstorageinfo'];
    this.log('INFO: Binary build date: Jan  1 2026 @ 00:00:00 (miflash emulator)');
    this.log('INFO: Chip serial num: 3307173928 (0xc51f7828)');
    this.log(`INFO: Supported Functions (${functions.length}):`);
    for (const f of functions) this.log(`INFO: ${f}`);
    this.log(`INFO: End of supported functions ${functions.length}`);
    this.flush();
  }

  receive(packet: Buffer): void {
    if (this.busy) {
      this.backlog.push(packet);
      return;
    }
    if (this.silent) return;
    if (this.raw) return this.onRaw(packet);
    if (packet.length === 0) return;
    this.handleDocument(packet);
    this.flush();
  }

  // ---- output -------------------------------------------------------------------

  private doc(inner: string): void {
    this.out.push(Buffer.from(`<?xml version="1.0" encoding="UTF-8" ?><data>${inner}</data>`, 'utf8'));
  }

  private log(text: string): void {
    this.doc(`<log value="${esc(text)}" />`);
  }

  private respond(ack: boolean, attrs: Record<string, string | number> = {}): void {
    const extra = Object.entries(attrs)
      .map(([k, v]) => ` ${k}="${esc(String(v))}"`)
      .join('');
    this.doc(`<response value="${ack ? 'ACK' : 'NAK'}"${extra} />`);
  }

  private nak(message: string, attrs: Record<string, string | number> = {}): void {
    this.log(message);
    this.respond(false, attrs);
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const packets = this.opts.coalesce ? [Buffer.concat(this.out)] : this.out;
    this.out = [];
    for (const p of packets) this.output.send(p);
  }

  // ---- commands -------------------------------------------------------------------

  private handleDocument(packet: Buffer): void {
    if (packet.length > (this.opts.maxXmlSize ?? 4096)) return this.nak(`ERROR: XML of ${packet.length} bytes exceeds MaxXMLSizeInBytes`);
    const text = packet.toString('utf8');
    if (XMLValidator.validate(text) !== true) return this.nak('ERROR: XML not formed correctly');
    const nodes = parser.parse(text) as Node[];
    const data = nodes.find((n) => 'data' in n);
    const children = ((data?.data as Node[] | undefined) ?? []).filter((n) => !('#text' in n));
    if (children.length !== 1) return this.nak('ERROR: expected exactly one command inside <data>');
    const child = children[0]!;
    const tag = Object.keys(child).find((k) => k !== ':@')!;
    const attrs = child[':@'] ?? {};
    this.commands.push({ tag, attrs });
    this.opts.onCommand?.({ tag, attrs });
    const faults = this.opts.faults ?? {};
    if (faults.stallTag === tag) {
      this.silent = true;
      return;
    }
    if (this.opts.authRequired && tag !== 'nop' && tag !== 'sig') return this.nak(this.opts.authPhrase ?? DEFAULT_AUTH_PHRASE);
    if (faults.nakTag === tag) return this.nak(`ERROR: injected failure on <${tag}>`);
    switch (tag) {
      case 'nop':
        this.log('INFO: Binary build date: Jan  1 2026 @ 00:00:00 (miflash emulator)');
        return this.respond(true);
      case 'configure':
        return this.configure(attrs);
      case 'sig':
        return this.nak('ERROR: Signature Verification Failed');
    }
    if (!this.configured) return this.nak(`ERROR: <${tag}> before <configure>`);
    try {
      switch (tag) {
        case 'program':
          return this.program(attrs);
        case 'read':
          return this.read(attrs);
        case 'erase':
          return this.erase(attrs);
        case 'patch':
          return this.patch(attrs);
        case 'setbootablestoragedrive':
          this.bootableDrive = Number(attrs.value);
          this.log(`INFO: Set bootable drive to ${attrs.value}.`);
          return this.respond(true);
        case 'getstorageinfo':
          return this.storageInfo(attrs);
        case 'power':
          return this.power(attrs);
        default:
          return this.nak(`ERROR: Unrecognized tag '${tag}'`);
      }
    } catch (err) {
      return this.nak(`ERROR: ${(err as Error).message}`);
    }
  }

  private configure(attrs: Record<string, string>): void {
    const mem = (attrs.MemoryName ?? '').toLowerCase();
    if (mem !== this.memory) {
      return this.nak(this.memory === 'ufs' ? 'ERROR: Failed to open the SDCC Device slot 0 partition 0' : 'ERROR: Failed to initialize (open whole lun) UFS Device slot 0 partition 0');
    }
    const limit = this.opts.maxPayloadToTarget ?? 1024 * 1024;
    const asked = Number(attrs.MaxPayloadSizeToTargetInBytes ?? limit);
    const common = {
      MinVersionSupported: 1,
      MemoryName: this.memory === 'ufs' ? 'UFS' : 'eMMC',
      MaxPayloadSizeFromTargetInBytes: this.opts.maxPayloadFromTarget ?? 65536,
      MaxPayloadSizeToTargetInBytesSupported: limit,
      MaxXMLSizeInBytes: this.opts.maxXmlSize ?? 4096,
      Version: 1,
      TargetName: this.opts.targetName ?? 'EMU8150',
    };
    if (!Number.isSafeInteger(asked) || asked <= 0 || asked > limit) {
      return this.nak(`ERROR: MaxPayloadSizeToTargetInBytes ${attrs.MaxPayloadSizeToTargetInBytes} not supported`, { ...common, MaxPayloadSizeToTargetInBytes: limit });
    }
    this.payload = asked;
    this.configured = true;
    this.respond(true, { ...common, MaxPayloadSizeToTargetInBytes: asked });
  }

  private range(attrs: Record<string, string>, needCount = true): { disk: VirtualDisk; lun: number; start: number; count: number } | undefined {
    const lun = Number(attrs.physical_partition_number ?? 0);
    const disk = this.disks[lun];
    if (!Number.isInteger(lun) || !disk) {
      this.nak(`ERROR: physical_partition_number ${attrs.physical_partition_number} does not exist (${this.disks.length} LUNs)`);
      return undefined;
    }
    const ss = Number(attrs.SECTOR_SIZE_IN_BYTES);
    if (ss !== disk.sectorSize) {
      this.nak(`ERROR: Attribute 'SECTOR_SIZE_IN_BYTES'=${attrs.SECTOR_SIZE_IN_BYTES} must be equal to disk sector size ${disk.sectorSize}`);
      return undefined;
    }
    const n = BigInt(disk.sectors);
    const start = attrs.start_sector === undefined && !needCount ? 0 : Number(evalExpr(parseExpr(attrs.start_sector ?? ''), n));
    const count = attrs.num_partition_sectors === undefined && !needCount ? disk.sectors - start : Number(attrs.num_partition_sectors);
    if (!Number.isSafeInteger(count) || count < 0 || start + count > disk.sectors) {
      this.nak(`ERROR: sectors ${start}+${attrs.num_partition_sectors} are beyond the end of LUN ${lun} (${disk.sectors} sectors)`);
      return undefined;
    }
    return { disk, lun, start, count };
  }

  private program(attrs: Record<string, string>): void {
    const r = this.range(attrs);
    if (!r) return;
    if (r.count === 0) return this.nak('ERROR: num_partition_sectors is 0');
    this.raw = { lun: r.lun, offset: r.start * r.disk.sectorSize, remaining: r.count * r.disk.sectorSize };
    this.respond(true, { rawmode: 'true' });
  }

  private onRaw(packet: Buffer): void {
    const raw = this.raw!;
    if (packet.length === 0) return; // ZLP
    if (packet.length > this.payload) {
      this.oversizedTransfers++;
      raw.bad ??= `ERROR: transfer of ${packet.length} bytes exceeds MaxPayloadSizeToTargetInBytes ${this.payload}`;
    }
    const take = Math.min(packet.length, raw.remaining);
    this.disks[raw.lun]!.write(raw.offset, packet.subarray(0, take));
    raw.offset += take;
    raw.remaining -= take;
    if (take < packet.length) raw.bad ??= `ERROR: received ${packet.length - take} bytes more than announced`;
    if (raw.remaining > 0) return;
    this.raw = undefined;
    if (raw.bad) this.nak(raw.bad, { rawmode: 'false' });
    else {
      this.log('INFO: Finished programming');
      this.respond(true, { rawmode: 'false' });
    }
    this.flush();
  }

  private read(attrs: Record<string, string>): void {
    const r = this.range(attrs);
    if (!r) return;
    this.respond(true, { rawmode: 'true' });
    this.flush();
    this.busy = this.streamRead(r).finally(() => {
      this.busy = undefined;
      for (let p = this.backlog.shift(); p; p = this.backlog.shift()) this.receive(p);
    });
  }

  /** Data in MaxPayloadSizeFromTargetInBytes pieces, pausing while the link is full. */
  private async streamRead(r: { disk: VirtualDisk; start: number; count: number }): Promise<void> {
    const ss = r.disk.sectorSize;
    const total = r.count * ss;
    const piece = this.opts.maxPayloadFromTarget ?? 65536;
    const faults = this.opts.faults ?? {};
    const limit = faults.shortRead ? Math.floor(total / 2) : total;
    for (let o = 0; o < limit; o += piece) {
      const pending = this.output.send(r.disk.read(r.start * ss + o, Math.min(piece, limit - o)));
      if (pending) await pending;
    }
    if (faults.shortRead) {
      this.silent = true;
      return;
    }
    const bad = faults.badSector;
    if (bad !== undefined && bad >= r.start && bad < r.start + r.count) this.nak(`ERROR: Failed to read sector ${bad} (injected bad sector)`, { rawmode: 'false' });
    else this.respond(true, { rawmode: 'false' });
    this.flush();
  }

  private erase(attrs: Record<string, string>): void {
    const r = this.range(attrs, false);
    if (!r) return;
    const ss = r.disk.sectorSize;
    r.disk.zero(r.start * ss, r.count * ss);
    this.log(`INFO: Erased ${r.count} sectors of LUN ${r.lun} from ${r.start}`);
    this.respond(true);
  }

  /** reset / off: the device leaves the bus; reset_to_edl: it comes back in Sahara. */
  private power(attrs: Record<string, string>): void {
    const value = attrs.value ?? '';
    if (!['reset', 'off', 'reset_to_edl'].includes(value)) return this.nak(`ERROR: Invalid power value '${value}'`);
    this.log(`INFO: Calling power ${value}`);
    this.respond(true);
    this.flush();
    this.silent = true;
    this.output.powerOff(value);
  }

  private patch(attrs: Record<string, string>): void {
    if (attrs.filename !== 'DISK') return this.nak(`ERROR: patch filename "${attrs.filename}" is not DISK`);
    const lun = Number(attrs.physical_partition_number ?? 0);
    const disk = this.disks[lun];
    if (!disk) return this.nak(`ERROR: physical_partition_number ${lun} does not exist`);
    if (Number(attrs.SECTOR_SIZE_IN_BYTES) !== disk.sectorSize) {
      return this.nak(`ERROR: Attribute 'SECTOR_SIZE_IN_BYTES'=${attrs.SECTOR_SIZE_IN_BYTES} must be equal to disk sector size ${disk.sectorSize}`);
    }
    const n = BigInt(disk.sectors);
    const start = Number(evalExpr(parseExpr(attrs.start_sector ?? ''), n));
    const size = Number(attrs.size_in_bytes);
    const at = start * disk.sectorSize + Number(attrs.byte_offset);
    const value = parsePatchValue(attrs.value ?? '');
    let v: bigint;
    if (value.kind === 'crc32') {
      const from = Number(evalExpr(value.start, n)) * disk.sectorSize;
      v = BigInt(crc32(disk.read(from, Number(evalExpr(value.length, n)))));
    } else {
      v = evalExpr(value.expr, n);
    }
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = Number((v >> BigInt(8 * i)) & 0xffn);
    disk.write(at, bytes);
    this.respond(true);
  }

  private storageInfo(attrs: Record<string, string>): void {
    const lun = Number(attrs.physical_partition_number ?? 0);
    const disk = this.disks[lun];
    if (!disk) return this.nak(`ERROR: physical_partition_number ${lun} does not exist`);
    const info = {
      storage_info: {
        total_blocks: disk.sectors,
        block_size: disk.sectorSize,
        page_size: disk.sectorSize,
        num_physical: this.disks.length,
        mem_type: this.memory === 'ufs' ? 'UFS' : 'eMMC',
        prod_name: 'MIFLASH-EMU',
      },
    };
    this.log(`INFO: ${JSON.stringify(info)}`);
    this.respond(true);
  }
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
