// -v / --verbose: every command sent and every reply received printed on
// stderr as it happens ("> getvar:product", "< OKAYlmi"), data phases as one
// line with their size. AOSP's -v prints the client's own notes instead (e.g.
// "target reported max-download-size of N bytes"); the wire is what a
// miflash user needs to see what the device was told and said.
import type { Transport } from '../transport/transport.js';
import { tapTransport } from './tap.js';

export function verboseTransport(t: Transport, write: (line: string) => void): Transport {
  return tapTransport(t, { line: write });
}
