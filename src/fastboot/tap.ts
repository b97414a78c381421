// A transport that reports the fastboot conversation passing through it: each
// command and reply as a printable line ("> getvar:product", "< OKAYlmi"),
// each data phase as one line with its size (it follows DATA to learn how many
// bytes are payload, not packets). Used by -v and by the per-device run log.
import type { IoOptions, Transport } from '../transport/transport.js';

/** Printable form of a packet: ASCII as is, anything else as \xNN. */
export function printable(b: Uint8Array): string {
  let out = '';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : c === 0x5c ? '\\\\' : `\\x${c.toString(16).padStart(2, '0')}`;
  return out;
}

export interface ConversationTap {
  /** A line of the conversation, without a newline. */
  line(text: string): void;
  /** A command packet was sent (after its line). */
  command?(text: string): void;
  /** A reply packet (not payload) arrived (after its line). */
  reply?(text: string, raw: Buffer): void;
  /** The transport failed; the error is rethrown after this. */
  failed?(op: 'write' | 'read', err: Error): void;
}

export function tapTransport(t: Transport, tap: ConversationTap): Transport {
  let lastCommand = '';
  let sending = 0; // data bytes still to send after DATA answering a download
  let sent = 0;
  let receiving = 0; // data bytes still to receive after DATA answering upload / fetch
  let received = 0;
  return {
    get id() {
      return t.id;
    },
    get kind() {
      return t.kind;
    },
    get preferredWriteSize() {
      return t.preferredWriteSize;
    },
    get maxInFlight() {
      return t.maxInFlight;
    },
    async write(data: Uint8Array, opts?: IoOptions): Promise<void> {
      if (sending > 0) {
        sending = Math.max(0, sending - data.length);
        sent += data.length;
        if (sending === 0) tap.line(`> (${sent} bytes of data)`);
      } else {
        lastCommand = printable(data);
        tap.line(`> ${lastCommand}`);
        tap.command?.(lastCommand);
      }
      try {
        await t.write(data, opts);
      } catch (err) {
        tap.failed?.('write', err as Error);
        throw err;
      }
    },
    async read(max: number, opts?: IoOptions): Promise<Buffer> {
      let b: Buffer;
      try {
        b = await t.read(max, opts);
      } catch (err) {
        tap.failed?.('read', err as Error);
        throw err;
      }
      if (receiving > 0) {
        receiving = Math.max(0, receiving - b.length);
        received += b.length;
        if (receiving === 0) tap.line(`< (${received} bytes of data)`);
        return b;
      }
      if (b.length === 0) return b;
      const text = printable(b);
      tap.line(`< ${text}`);
      if (text.startsWith('DATA')) {
        const size = Number.parseInt(text.slice(4, 12), 16);
        if (Number.isFinite(size) && size > 0) {
          if (lastCommand.startsWith('download')) [sending, sent] = [size, 0];
          else [receiving, received] = [size, 0];
        }
      }
      tap.reply?.(text, b);
      return b;
    },
    close: () => t.close(),
  };
}
