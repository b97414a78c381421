// The boot ROM's side of Sahara, as the emulated EDL device plays it: HELLO,
// then ELF-aware READ_DATA / READ_DATA64 requests (header, program headers,
// segments in a shuffled order, <= 4 KiB each), END_OF_IMAGE, DONE_RESP.
// Several images can be chained (newest SoCs): DONE_RESP(pending) + new HELLO.
import { createHash } from 'node:crypto';
import {
  FIREHOSE_IMAGE_ID,
  decodeSaharaPacket,
  encodeDoneResp,
  encodeEndOfImage,
  encodeHello,
  encodeReadData,
  encodeReadData64,
  encodeResetResp,
  encodeCmdReady,
  encodeExecuteResp,
} from '../../edl/sahara-packets.js';

export interface SaharaDeviceOptions {
  version?: number;
  /** Use READ_DATA64 (Sahara >= 2.8) instead of READ_DATA. */
  read64?: boolean;
  /** Image ids to request, in order; default [13]. */
  chain?: number[];
  /** SHA-256 (hex) of acceptable images; unset = accept any valid ELF. */
  acceptSha256?: string[];
  /** END_OF_IMAGE status for an image outside acceptSha256 (default 0x22 NAK_HASH_VERIFICATION_FAILURE). */
  rejectStatus?: number;
  /** Largest piece per request (default 0x1000, as MSM8953 does). */
  maxPiece?: number;
  seed?: number;
  /** Fault: go silent after this many READ requests (a boot ROM that hangs on an unsigned programmer). */
  hangAfterRequests?: number;
  /** Command mode answers: chip serial (u32) and MSM HW id (u64; not answered when version >= 3). */
  serial?: number;
  hwid?: bigint;
}

type Step =
  | { kind: 'hello' }
  | { kind: 'command'; pending?: { cmd: number; data: Buffer } }
  | { kind: 'read'; offset: number; length: number; got: Buffer[]; gotBytes: number }
  | { kind: 'done' }
  | { kind: 'finished' };

export interface SaharaDeviceOutput {
  send(packet: Buffer): void;
  /** All images accepted; the programmer runs now. */
  complete(images: Map<number, Buffer>): void;
  /** RESET: the device re-enumerates. */
  reset(): void;
  /** The boot ROM gave up (it stays silent). */
  failed(reason: string): void;
}

export class SaharaDevice {
  private step: Step = { kind: 'hello' };
  private chainIndex = 0;
  private image = Buffer.alloc(0);
  private pending: { offset: number; length: number }[] = [];
  private phase: 'header' | 'phdrs' | 'segments' = 'header';
  private readonly loaded = new Map<number, Buffer>();
  private rng: number;
  private requests = 0;

  constructor(
    private readonly opts: SaharaDeviceOptions,
    private readonly out: SaharaDeviceOutput,
  ) {
    this.rng = opts.seed ?? 0x5eed;
  }

  private get imageId(): number {
    return (this.opts.chain ?? [FIREHOSE_IMAGE_ID])[this.chainIndex]!;
  }

  start(): void {
    this.step = { kind: 'hello' };
    this.out.send(encodeHello({ version: this.opts.version ?? 2, compatible: 1, maxLength: 0x400, mode: 0 }));
  }

  receive(packet: Buffer): void {
    if (this.step.kind === 'finished') return;
    if (this.step.kind === 'read' && !(this.step.gotBytes === 0 && this.step.length !== 8 && isReset(packet))) return this.onData(packet, this.step);
    if (packet.length === 0) return;
    let pkt;
    try {
      pkt = decodeSaharaPacket(packet);
    } catch {
      this.out.send(encodeEndOfImage(this.imageId, 0x05)); // NAK_INVALID_PACKET_SIZE
      return this.fail('bad packet');
    }
    if (pkt.cmd === 'reset') {
      this.out.send(encodeResetResp());
      this.step = { kind: 'finished' };
      return this.out.reset();
    }
    if (this.step.kind === 'hello' && pkt.cmd === 'hello-resp' && pkt.mode === 3 && pkt.status === 0) {
      this.step = { kind: 'command' };
      this.out.send(encodeCmdReady());
      return;
    }
    if (this.step.kind === 'command') return this.onCommand(pkt, this.step);
    if (this.step.kind === 'hello' && pkt.cmd === 'hello-resp') {
      if (pkt.mode !== 0 || pkt.status !== 0) {
        this.out.send(encodeEndOfImage(this.imageId, 0x18)); // NAK_INVALID_HOST_MODE
        return this.fail(`HELLO_RESP mode ${pkt.mode} status ${pkt.status}`);
      }
      this.beginImage();
      return;
    }
    if (this.step.kind === 'done' && pkt.cmd === 'done') {
      const last = this.chainIndex === (this.opts.chain ?? [FIREHOSE_IMAGE_ID]).length - 1;
      this.out.send(encodeDoneResp(last ? 1 : 0));
      if (last) {
        this.step = { kind: 'finished' };
        this.out.complete(this.loaded);
      } else {
        this.chainIndex++;
        this.start();
      }
      return;
    }
    this.out.send(encodeEndOfImage(this.imageId, 0x01)); // NAK_INVALID_CMD
    this.fail(`unexpected ${pkt.cmd} while waiting for ${this.step.kind}`);
  }

  /** Sahara command mode: EXECUTE -> EXECUTE_RESP(len) -> EXECUTE_DATA -> raw answer; SWITCH_MODE(0) -> HELLO. */
  private onCommand(pkt: ReturnType<typeof decodeSaharaPacket>, step: Extract<Step, { kind: 'command' }>): void {
    if (pkt.cmd === 'switch-mode' && pkt.mode === 0) return this.start();
    if (pkt.cmd === 'execute') {
      const data = this.clientAnswer(pkt.clientCmd);
      if (!data) {
        this.out.send(encodeEndOfImage(this.imageId, 0x1f)); // NAK_EXEC_CMD_UNSUPPORTED
        return;
      }
      step.pending = { cmd: pkt.clientCmd, data };
      this.out.send(encodeExecuteResp(pkt.clientCmd, data.length));
      return;
    }
    if (pkt.cmd === 'execute-data' && step.pending?.cmd === pkt.clientCmd) {
      this.out.send(step.pending.data);
      step.pending = undefined;
      return;
    }
    this.out.send(encodeEndOfImage(this.imageId, 0x01)); // NAK_INVALID_CMD
  }

  private clientAnswer(cmd: number): Buffer | undefined {
    if (cmd === 0x01) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(this.opts.serial ?? 0xc51f7828, 0);
      return b;
    }
    if (cmd === 0x02 && (this.opts.version ?? 2) < 3) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(this.opts.hwid ?? 0x000e60e100720000n, 0);
      return b;
    }
    return undefined;
  }

  private beginImage(): void {
    this.image = Buffer.alloc(0);
    this.phase = 'header';
    this.pending = [{ offset: 0, length: this.opts.read64 ? 0x40 : 0x34 }];
    this.requestNext();
  }

  private requestNext(): void {
    const next = this.pending.shift();
    if (!next) return this.finishPhase();
    if (this.opts.hangAfterRequests !== undefined && this.requests++ >= this.opts.hangAfterRequests) {
      this.step = { kind: 'finished' };
      return;
    }
    this.step = { kind: 'read', offset: next.offset, length: next.length, got: [], gotBytes: 0 };
    const id = this.imageId;
    this.out.send(this.opts.read64 ? encodeReadData64(id, next.offset, next.length) : encodeReadData(id, next.offset, next.length));
  }

  private onData(packet: Buffer, step: Extract<Step, { kind: 'read' }>): void {
    if (packet.length === 0) return;
    step.got.push(packet);
    step.gotBytes += packet.length;
    if (step.gotBytes < step.length) return;
    if (step.gotBytes > step.length) {
      this.out.send(encodeEndOfImage(this.imageId, 0x0b)); // NAK_INVALID_RX_LENGTH
      return this.fail(`received ${step.gotBytes} bytes for a ${step.length}-byte request`);
    }
    this.place(step.offset, Buffer.concat(step.got));
    this.requestNext();
  }

  private place(offset: number, data: Buffer): void {
    if (this.image.length < offset + data.length) {
      const grown = Buffer.alloc(offset + data.length);
      this.image.copy(grown);
      this.image = grown;
    }
    data.copy(this.image, offset);
  }

  /** header -> program headers -> segments -> verdict. */
  private finishPhase(): void {
    const elf = this.image;
    if (elf.length < 0x34 || elf.readUInt32BE(0) !== 0x7f454c46 || (elf[4] !== 1 && elf[4] !== 2)) return this.reject(0x14, 'not an ELF image');
    const is64 = elf[4] === 2;
    if (this.phase === 'header') {
      if (is64 && elf.length < 0x40) {
        this.pending = [{ offset: 0x34, length: 0x40 - 0x34 }];
        return this.requestNext();
      }
      const phoff = is64 ? Number(elf.readBigUInt64LE(0x20)) : elf.readUInt32LE(0x1c);
      const phentsize = elf.readUInt16LE(is64 ? 0x36 : 0x2a);
      const phnum = elf.readUInt16LE(is64 ? 0x38 : 0x2c);
      if (phnum === 0 || phnum > 64 || phentsize < (is64 ? 56 : 32)) return this.reject(0x0e, `bad program header table (${phnum} x ${phentsize})`);
      this.phase = 'phdrs';
      this.pending = [{ offset: phoff, length: phnum * phentsize }];
      return this.requestNext();
    }
    if (this.phase === 'phdrs') {
      const phoff = is64 ? Number(elf.readBigUInt64LE(0x20)) : elf.readUInt32LE(0x1c);
      const phentsize = elf.readUInt16LE(is64 ? 0x36 : 0x2a);
      const phnum = elf.readUInt16LE(is64 ? 0x38 : 0x2c);
      const pieces: { offset: number; length: number }[] = [];
      const max = this.opts.maxPiece ?? 0x1000;
      for (let i = 0; i < phnum; i++) {
        const ph = phoff + i * phentsize;
        const offset = is64 ? Number(elf.readBigUInt64LE(ph + 8)) : elf.readUInt32LE(ph + 4);
        const filesz = is64 ? Number(elf.readBigUInt64LE(ph + 32)) : elf.readUInt32LE(ph + 16);
        for (let o = 0; o < filesz; o += max) pieces.push({ offset: offset + o, length: Math.min(max, filesz - o) });
      }
      this.phase = 'segments';
      this.pending = this.shuffle(pieces);
      return this.requestNext();
    }
    const digest = createHash('sha256').update(elf).digest('hex');
    if (this.opts.acceptSha256 && !this.opts.acceptSha256.includes(digest)) {
      return this.reject(this.opts.rejectStatus ?? 0x22, `image ${this.imageId} (sha256 ${digest}) is not signed for this device`);
    }
    this.loaded.set(this.imageId, elf);
    this.out.send(encodeEndOfImage(this.imageId, 0));
    this.step = { kind: 'done' };
  }

  private reject(status: number, reason: string): void {
    this.out.send(encodeEndOfImage(this.imageId, status));
    this.fail(reason);
  }

  private fail(reason: string): void {
    this.step = { kind: 'finished' };
    this.out.failed(reason);
  }

  /** Deterministic Fisher-Yates (the boot ROM does not read in file order). */
  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      this.rng = (Math.imul(this.rng, 1103515245) + 12345) >>> 0;
      const j = this.rng % (i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** What the emulated boot ROM hashes: the image as loaded (gaps zero). For a plain ELF that is the file. */
export function loadedImageSha256(image: Uint8Array): string {
  return createHash('sha256').update(image).digest('hex');
}

function isReset(p: Buffer): boolean {
  return p.length === 8 && p.readUInt32LE(0) === 0x07 && p.readUInt32LE(4) === 8;
}
