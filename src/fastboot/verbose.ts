// -v / --verbose: every command sent and every reply received printed on
// stderr as it happens ("> getvar:product", "< OKAYlmi"), data phases as one
// line with their size. AOSP's -v prints the client's own notes instead (e.g.
// "target reported max-download-size of N bytes"); the wire is what a
// miflash user needs to see what the device was told and said.
import type { IoOptions, Transport } from '../transport/transport.js';

/** Printable form of a packet: ASCII as is, anything else as \xNN. */
function printable(b: Uint8Array): string {
  let out = '';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : c === 0x5c ? '\\\\' : `\\x${c.toString(16).padStart(2, '0')}`;
  return out;
}

export function verboseTransport(t: Transport, write: (line: string) => void): Transport {
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
        if (sending === 0) write(`> (${sent} bytes of data)`);
      } else {
        lastCommand = printable(data);
        write(`> ${lastCommand}`);
      }
      await t.write(data, opts);
    },
    async read(max: number, opts?: IoOptions): Promise<Buffer> {
      const b = await t.read(max, opts);
      if (receiving > 0) {
        receiving = Math.max(0, receiving - b.length);
        received += b.length;
        if (receiving === 0) write(`< (${received} bytes of data)`);
        return b;
      }
      if (b.length === 0) return b;
      const text = printable(b);
      write(`< ${text}`);
      if (text.startsWith('DATA')) {
        const size = Number.parseInt(text.slice(4, 12), 16);
        if (Number.isFinite(size) && size > 0) {
          if (lastCommand.startsWith('download')) [sending, sent] = [size, 0];
          else [receiving, received] = [size, 0];
        }
      }
      return b;
    },
    close: () => t.close(),
  };
}
