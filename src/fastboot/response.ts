// Fastboot reply parsing, as a state machine fed one packet at a time so it can
// be tested without a device. One command exchange = one ReplyMachine: INFO and
// TEXT keep it waiting (and restart the reply timeout), OKAY/DATA end it, FAIL
// throws a FastbootFailError, anything else is a protocol error.
import { FastbootFailError, FastbootProtocolError } from './errors.js';

/** Longest command the host may send (FB_COMMAND_SZ). */
export const FB_COMMAND_MAX = 4096;
/** Longest reply the device may send (FB_RESPONSE_SZ). */
export const FB_RESPONSE_MAX = 256;
/** Largest DATA size the protocol can express (%08x). */
export const FB_DATA_MAX = 0xffff_ffff;

export type FastbootReply =
  | { kind: 'OKAY'; message: string }
  | { kind: 'FAIL'; message: string }
  | { kind: 'DATA'; size: number }
  | { kind: 'INFO'; message: string }
  | { kind: 'TEXT'; message: string };

const latin1 = new TextDecoder('latin1');

/** Parses one reply packet; `command` only labels errors. */
export function parseReply(packet: Uint8Array, command: string): FastbootReply {
  if (packet.length > FB_RESPONSE_MAX) {
    throw new FastbootProtocolError(command, `reply of ${packet.length} bytes exceeds the ${FB_RESPONSE_MAX}-byte limit`);
  }
  if (packet.length < 4) {
    throw new FastbootProtocolError(command, `reply too short (${packet.length} bytes): ${JSON.stringify(latin1.decode(packet))}`);
  }
  const text = latin1.decode(packet);
  const status = text.slice(0, 4);
  const rest = text.slice(4);
  switch (status) {
    case 'OKAY':
    case 'FAIL':
    case 'INFO':
    case 'TEXT':
      return { kind: status, message: rest };
    case 'DATA': {
      if (!/^[0-9a-fA-F]{8}$/.test(rest)) {
        throw new FastbootProtocolError(command, `malformed DATA reply ${JSON.stringify(text)} (expected DATA + 8 hex digits)`);
      }
      return { kind: 'DATA', size: Number.parseInt(rest, 16) };
    }
    default:
      throw new FastbootProtocolError(command, `unknown reply status ${JSON.stringify(status)} in ${JSON.stringify(text.slice(0, 64))}`);
  }
}

/** What the exchange expects besides OKAY. */
export type DataExpectation =
  /** No DATA allowed (plain commands, the status after a data phase). */
  | { kind: 'none' }
  /** download: DATA must echo exactly the size the host asked for. */
  | { kind: 'exact'; size: number }
  /** upload / fetch: the device chooses the size, up to `max`. */
  | { kind: 'upTo'; max: number };

export type ReplyStep =
  /** Keep reading; the reply timeout restarts. */
  | { kind: 'info'; message: string }
  | { kind: 'text'; message: string }
  | { kind: 'okay'; message: string }
  | { kind: 'data'; size: number };

export class ReplyMachine {
  readonly info: string[] = [];
  readonly text: string[] = [];
  private finished = false;

  constructor(
    readonly command: string,
    private readonly expect: DataExpectation = { kind: 'none' },
  ) {}

  get done(): boolean {
    return this.finished;
  }

  /** Feeds one reply packet. Throws FastbootFailError on FAIL. */
  feed(packet: Uint8Array): ReplyStep {
    if (this.finished) throw new FastbootProtocolError(this.command, 'reply received after the exchange ended');
    const reply = parseReply(packet, this.command);
    switch (reply.kind) {
      case 'INFO':
        this.info.push(reply.message);
        return { kind: 'info', message: reply.message };
      case 'TEXT':
        this.text.push(reply.message);
        return { kind: 'text', message: reply.message };
      case 'OKAY':
        this.finished = true;
        return { kind: 'okay', message: reply.message };
      case 'FAIL':
        this.finished = true;
        throw new FastbootFailError(this.command, reply.message, [...this.info]);
      case 'DATA':
        this.finished = true;
        return { kind: 'data', size: this.checkData(reply.size) };
    }
  }

  private checkData(size: number): number {
    const e = this.expect;
    if (e.kind === 'none') {
      throw new FastbootProtocolError(this.command, `unexpected DATA${hex8(size)} reply (this command has no data phase)`);
    }
    if (e.kind === 'exact' && size !== e.size) {
      throw new FastbootProtocolError(
        this.command,
        `device asked for ${size} bytes (DATA${hex8(size)}) but the host offered ${e.size} (download:${hex8(e.size)}); refusing to send`,
      );
    }
    if (e.kind === 'upTo' && size > e.max) {
      throw new FastbootProtocolError(this.command, `device announced ${size} bytes, more than the ${e.max} expected`);
    }
    return size;
  }
}

export function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
