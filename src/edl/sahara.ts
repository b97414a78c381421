// Sahara host: uploads the Firehose programmer (and, on the newest SoCs, a
// chain of images) to the boot ROM. SaharaHost is a pure state machine fed one
// device packet at a time; runSahara() drives it over a Transport.
import { TransportTimeoutError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import { EdlInputError, EdlProtocolError, SaharaError, type ChipIdentity } from './errors.js';
import {
  FIREHOSE_IMAGE_ID,
  SaharaMode,
  decodeSaharaPacket,
  encodeDone,
  encodeExecute,
  encodeExecuteData,
  encodeHelloResp,
  encodeReset,
  encodeSwitchMode,
  SaharaExec,
  isAuthStatus,
  saharaStatusName,
  type SaharaPacket,
} from './sahara-packets.js';

export interface SaharaImage {
  id: number;
  /** File name, for messages. */
  name: string;
  data: Uint8Array;
}

export type SaharaEvent =
  | { type: 'hello'; version: number; mode: number }
  | { type: 'image'; imageId: number; name: string }
  | { type: 'served'; imageId: number; offset: number; length: number }
  | { type: 'image-done'; imageId: number }
  | { type: 'chip-info'; chip: ChipIdentity }
  | { type: 'complete'; imagesServed: number[] };

export interface SaharaStep {
  /** Packets to send to the device, in order (raw image bytes or Sahara commands). */
  writes: Uint8Array[];
  /** Set when the upload must stop; the writes (e.g. a RESET) go out first. */
  error?: Error;
  events: SaharaEvent[];
}

type State = 'wait-hello' | 'cmd-ready' | 'exec-resp' | 'exec-data' | 'transfer' | 'wait-done-resp' | 'complete' | 'failed';

export interface SaharaHostOptions {
  /** Before the upload, read the chip serial (and HWID on Sahara < 3) in command mode, then switch back. */
  chipInfo?: boolean;
}

export class SaharaHost {
  private state: State = 'wait-hello';
  private readonly served: number[] = [];
  private current: number | undefined;
  private chipInfoPending: boolean;
  private execQueue: number[] = [];
  private exec: { cmd: number; length: number; got: Buffer[]; gotBytes: number } | undefined;
  readonly chip: ChipIdentity = {};

  constructor(
    private readonly images: ReadonlyMap<number, SaharaImage>,
    opts: SaharaHostOptions = {},
  ) {
    this.chipInfoPending = opts.chipInfo ?? false;
  }

  get complete(): boolean {
    return this.state === 'complete';
  }

  get imagesServed(): number[] {
    return [...this.served];
  }

  /** Feed one packet from the device. Never throws: failures come back in `error`. */
  receive(bytes: Uint8Array): SaharaStep {
    const step: SaharaStep = { writes: [], events: [] };
    if (this.state === 'complete' || this.state === 'failed') {
      return this.fail(step, new EdlProtocolError(`Sahara: unexpected packet after the upload ${this.state === 'complete' ? 'completed' : 'failed'}`));
    }
    if (this.state === 'exec-data') return this.onExecData(bytes, step);
    let pkt: SaharaPacket;
    try {
      pkt = decodeSaharaPacket(bytes);
    } catch (err) {
      step.writes.push(encodeReset());
      return this.fail(step, new EdlProtocolError(`Sahara: ${(err as Error).message}`, { hint: 'power-cycle the phone back into EDL and retry' }));
    }
    switch (pkt.cmd) {
      case 'hello':
        return this.onHello(pkt, step);
      case 'read-data':
        return this.onRead(pkt, step);
      case 'end-of-image':
        return this.onEndOfImage(pkt, step);
      case 'done-resp':
        return this.onDoneResp(pkt, step);
      case 'reset-resp':
        return step;
      case 'cmd-ready':
        if (this.state !== 'cmd-ready') break;
        return this.nextExec(step);
      case 'execute-resp':
        return this.onExecResp(pkt, step);
      default:
        break;
    }
    step.writes.push(encodeReset());
    return this.fail(step, new EdlProtocolError(`Sahara: unexpected ${describe(pkt)} in state ${this.state}`));
  }

  private onHello(pkt: Extract<SaharaPacket, { cmd: 'hello' }>, step: SaharaStep): SaharaStep {
    if (this.state !== 'wait-hello') {
      return this.fail(step, new EdlProtocolError(`Sahara: HELLO received while ${this.state} (image ${this.current ?? '?'})`));
    }
    step.events.push({ type: 'hello', version: pkt.version, mode: pkt.mode });
    if (this.chipInfoPending && pkt.mode !== SaharaMode.MEMORY_DEBUG) {
      this.chipInfoPending = false;
      this.execQueue = pkt.version >= 3 ? [SaharaExec.SERIAL_NUM_READ] : [SaharaExec.SERIAL_NUM_READ, SaharaExec.MSM_HW_ID_READ];
      step.writes.push(encodeHelloResp({ version: 2, compatible: 1, status: 0, mode: SaharaMode.COMMAND }));
      this.state = 'cmd-ready';
      return step;
    }
    if (pkt.mode === SaharaMode.MEMORY_DEBUG) {
      return this.fail(
        step,
        new SaharaError('the device is in Sahara memory-debug (crash dump) mode, not in EDL image-download mode', {
          code: 'edl.sahara.crashdump',
          hint: 'its bootloader is probably damaged; an EDL cable or the board test point is needed to reach 9008 mode',
        }),
      );
    }
    step.writes.push(encodeHelloResp({ version: 2, compatible: 1, status: 0, mode: SaharaMode.IMAGE_TX_PENDING }));
    this.state = 'transfer';
    this.current = undefined;
    return step;
  }

  private onRead(pkt: Extract<SaharaPacket, { cmd: 'read-data' }>, step: SaharaStep): SaharaStep {
    if (this.state !== 'transfer') {
      step.writes.push(encodeReset());
      return this.fail(step, new EdlProtocolError(`Sahara: READ_DATA received while ${this.state}`, { hint: 'power-cycle the phone back into EDL and retry' }));
    }
    const image = this.images.get(pkt.imageId);
    if (!image && this.images.size === 0) {
      step.writes.push(encodeReset());
      return this.fail(
        step,
        new EdlInputError(`the device is in Sahara mode and asks for image ${pkt.imageId}, but no programmer was given`, {
          code: 'edl.sahara.no-programmer',
          hint: 'pass --programmer FILE (prog_*firehose*) or --rom DIR',
        }),
      );
    }
    if (!image) {
      step.writes.push(encodeReset());
      const have = [...this.images.keys()].join(', ');
      return this.fail(
        step,
        new SaharaError(`device requested unknown Sahara image id ${pkt.imageId} (images provided: ${have})`, {
          code: 'edl.sahara.unknown-image',
          hint: 'this SoC loads a chain of images: use the ROM\'s multi-image list (qsahara_device_programmer.xml) so every image is provided',
        }),
      );
    }
    if (pkt.offset + pkt.length > image.data.length) {
      step.writes.push(encodeReset());
      return this.fail(
        step,
        new SaharaError(
          `device requested bytes ${pkt.offset}..${pkt.offset + pkt.length} of image ${pkt.imageId} (${image.name}), which has only ${image.data.length} bytes`,
          { code: 'edl.sahara.range', hint: 'the programmer file is probably the wrong one for this phone or truncated' },
        ),
      );
    }
    if (this.current !== pkt.imageId) {
      this.current = pkt.imageId;
      step.events.push({ type: 'image', imageId: pkt.imageId, name: image.name });
    }
    step.writes.push(image.data.subarray(pkt.offset, pkt.offset + pkt.length));
    step.events.push({ type: 'served', imageId: pkt.imageId, offset: pkt.offset, length: pkt.length });
    return step;
  }

  private onEndOfImage(pkt: Extract<SaharaPacket, { cmd: 'end-of-image' }>, step: SaharaStep): SaharaStep {
    // In command mode this is the boot ROM refusing a client command (e.g. HWID on Sahara v3): skip it.
    if (this.state === 'cmd-ready' || this.state === 'exec-resp') return this.nextExec(step);
    if (this.state !== 'transfer') return this.fail(step, new EdlProtocolError(`Sahara: END_OF_IMAGE received while ${this.state}`));
    const name = this.images.get(pkt.imageId)?.name ?? `image ${pkt.imageId}`;
    if (pkt.status !== 0) {
      const status = `${saharaStatusName(pkt.status)} (0x${pkt.status.toString(16)})`;
      return this.fail(
        step,
        new SaharaError(`the boot ROM rejected ${name} (image id ${pkt.imageId}): ${status}`, {
          code: 'edl.sahara.rejected',
          hint: isAuthStatus(pkt.status)
            ? 'the programmer is not signed for this phone; use the programmer from this phone\'s own ROM package'
            : 'power-cycle the phone back into EDL and retry',
        }),
      );
    }
    if (!this.served.includes(pkt.imageId)) this.served.push(pkt.imageId);
    step.events.push({ type: 'image-done', imageId: pkt.imageId });
    step.writes.push(encodeDone());
    this.state = 'wait-done-resp';
    return step;
  }

  private onDoneResp(pkt: Extract<SaharaPacket, { cmd: 'done-resp' }>, step: SaharaStep): SaharaStep {
    if (this.state !== 'wait-done-resp') return this.fail(step, new EdlProtocolError(`Sahara: DONE_RESP received while ${this.state}`));
    // MSM8916 answers "pending" although it is finished: accept that when only the programmer was provided.
    const onlyProgrammer = this.images.size === 1 && this.images.has(FIREHOSE_IMAGE_ID) && this.served.includes(FIREHOSE_IMAGE_ID);
    if (pkt.status === SaharaMode.IMAGE_TX_COMPLETE || onlyProgrammer) {
      this.state = 'complete';
      step.events.push({ type: 'complete', imagesServed: [...this.served] });
    } else {
      this.state = 'wait-hello'; // chain: the boot ROM sends a fresh HELLO for the next image
    }
    return step;
  }

  private nextExec(step: SaharaStep): SaharaStep {
    const cmd = this.execQueue.shift();
    if (cmd === undefined) {
      step.events.push({ type: 'chip-info', chip: { ...this.chip } });
      step.writes.push(encodeSwitchMode(SaharaMode.IMAGE_TX_PENDING)); // the boot ROM answers with a fresh HELLO
      this.state = 'wait-hello';
      return step;
    }
    step.writes.push(encodeExecute(cmd));
    this.exec = { cmd, length: 0, got: [], gotBytes: 0 };
    this.state = 'exec-resp';
    return step;
  }

  private onExecResp(pkt: Extract<SaharaPacket, { cmd: 'execute-resp' }>, step: SaharaStep): SaharaStep {
    if (this.state !== 'exec-resp' || !this.exec || pkt.clientCmd !== this.exec.cmd) {
      return this.fail(step, new EdlProtocolError(`Sahara: EXECUTE_RESP for command ${pkt.clientCmd} while ${this.state}`));
    }
    if (pkt.dataLength === 0 || pkt.dataLength > 4096) return this.nextExec(step);
    this.exec.length = pkt.dataLength;
    step.writes.push(encodeExecuteData(pkt.clientCmd));
    this.state = 'exec-data';
    return step;
  }

  private onExecData(bytes: Uint8Array, step: SaharaStep): SaharaStep {
    const exec = this.exec!;
    if (bytes.length === 0) return step;
    exec.got.push(Buffer.from(bytes));
    exec.gotBytes += bytes.length;
    if (exec.gotBytes < exec.length) return step;
    const data = Buffer.concat(exec.got);
    if (exec.cmd === SaharaExec.SERIAL_NUM_READ && data.length >= 4) this.chip.serial = data.readUInt32LE(0);
    if (exec.cmd === SaharaExec.MSM_HW_ID_READ && data.length >= 8) {
      const hwid = data.readBigUInt64LE(0);
      this.chip.hwid = hwid.toString(16).padStart(16, '0');
      this.chip.msmId = Number(hwid >> 32n);
      this.chip.oemId = Number((hwid >> 16n) & 0xffffn);
    }
    this.exec = undefined;
    return this.nextExec(step);
  }

  private fail(step: SaharaStep, error: Error): SaharaStep {
    this.state = 'failed';
    step.error = error;
    return step;
  }
}

function describe(pkt: SaharaPacket): string {
  return pkt.cmd === 'other' ? `command 0x${pkt.id.toString(16)} (${pkt.length} bytes)` : pkt.cmd.toUpperCase();
}

export interface SaharaOptions extends SaharaHostOptions {
  /** Per read/write (qdl: 1000 ms). */
  timeoutMs?: number;
  /** Wait for the first HELLO; silence means the programmer is probably already running. */
  helloTimeoutMs?: number;
  onEvent?: (e: SaharaEvent) => void;
}

export type SaharaResult =
  | { mode: 'uploaded'; imagesServed: number[]; chip: ChipIdentity }
  /** No HELLO: Firehose is (probably) running already. `pending` = bytes already read (banner). */
  | { mode: 'firehose-running'; pending: Buffer };

const XML_START = Buffer.from('<?xml');

/** Run the Sahara upload. Returns early, without sending anything, when Firehose already answers. */
export async function runSahara(t: Transport, images: ReadonlyMap<number, SaharaImage>, opts: SaharaOptions = {}): Promise<SaharaResult> {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const host = new SaharaHost(images, { chipInfo: opts.chipInfo });
  let first = true;
  for (;;) {
    let packet: Buffer;
    try {
      packet = await t.read(4096, { timeoutMs: first ? (opts.helloTimeoutMs ?? timeoutMs) : timeoutMs });
    } catch (err) {
      if (first && err instanceof TransportTimeoutError) return { mode: 'firehose-running', pending: Buffer.alloc(0) };
      if (err instanceof TransportTimeoutError) {
        throw new TransportTimeoutError('Sahara: waiting for the next request from the boot ROM', timeoutMs, {
          hint: 'the boot ROM stopped answering (often: programmer not accepted); power-cycle the phone into EDL and retry',
        });
      }
      throw err;
    }
    if (packet.length === 0) continue; // a ZLP is not a packet
    if (first && stripJunk(packet).subarray(0, XML_START.length).equals(XML_START)) {
      return { mode: 'firehose-running', pending: packet };
    }
    first = false;
    const step = host.receive(packet);
    for (const e of step.events) opts.onEvent?.(e);
    for (const w of step.writes) await t.write(w, { timeoutMs });
    if (step.error) throw step.error;
    if (host.complete) return { mode: 'uploaded', imagesServed: host.imagesServed, chip: { ...host.chip } };
  }
}

/** Some targets prefix output with F0 E9 88 14 (seen by bkerler/edl). */
export function stripJunk(b: Buffer): Buffer {
  return b.length >= 4 && b[0] === 0xf0 && b[1] === 0xe9 && b[2] === 0x88 && b[3] === 0x14 ? b.subarray(4) : b;
}
