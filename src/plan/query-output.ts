// What the AOSP fastboot client prints for the read-only queries a flash
// script inspects, byte for byte as v29 (the reference client installed for
// the tests) prints them: the text scripts grep is this, not the device's raw
// reply. Timings are printed as a fixed 0.001s (no script can depend on them).
import type { Query } from './predicate.js';

/** The device's side of a query. */
export type QueryAnswer =
  /** OKAY with a value, or FAIL with the device's message. */
  | { kind: 'getvar'; value: string }
  | { kind: 'getvar'; error: string }
  /** INFO lines (without the INFO prefix) then OKAY, or FAIL with a message. */
  | { kind: 'oem'; info: string[]; error?: string }
  /** Serial numbers of the devices the host lists (miflash lists the device it talks to). */
  | { kind: 'devices'; serials: string[] }
  | { kind: 'version' };

export interface Printed {
  /** In the order the client writes them (what `2>&1` merges). */
  chunks: Array<{ stream: 'stdout' | 'stderr'; text: string }>;
  status: number;
}

/** The version miflash answers `fastboot --version` with: the AOSP release whose command set it follows. */
export const FASTBOOT_VERSION_TEXT = 'fastboot version 35.0.2-miflash\nInstalled as miflash\n';

const FINISHED = 'Finished. Total time: 0.001s\n';
/** AOSP Status(): the label left-aligned in 50 columns, then a space. */
const status = (label: string) => `${label.padEnd(50)} `;

export function renderQuery(q: Query, a: QueryAnswer): Printed {
  const err = (text: string) => ({ stream: 'stderr' as const, text });
  switch (q.kind) {
    case 'getvar':
      if (a.kind !== 'getvar') break;
      if ('value' in a) return { chunks: [err(`${q.name}: ${a.value}\n`), err(FINISHED)], status: 0 };
      // v29 reports the failure and still exits 0.
      return { chunks: [err(`${status(`getvar:${q.name}`)}FAILED (remote: '${a.error}')\n`), err(FINISHED)], status: 0 };
    case 'oem-device-info': {
      if (a.kind !== 'oem') break;
      const info = a.info.map((l) => `(bootloader) ${l}\n`).join('');
      const head = status('');
      if (a.error !== undefined) {
        return { chunks: [err(`${head}${info}FAILED (remote: '${a.error}')\n`), err('fastboot: error: Command failed\n')], status: 1 };
      }
      return { chunks: [err(`${head}${info}OKAY [  0.001s]\n`), err(FINISHED)], status: 0 };
    }
    case 'devices':
      if (a.kind !== 'devices') break;
      return { chunks: a.serials.map((s) => ({ stream: 'stdout' as const, text: `${s}\tfastboot\n` })), status: 0 };
    case 'version':
      return { chunks: [{ stream: 'stdout', text: FASTBOOT_VERSION_TEXT }], status: 0 };
  }
  throw new Error(`internal: answer ${a.kind} does not fit query ${q.kind}`);
}

/** One stream of what was printed, or both merged in write order. */
export function printedText(p: Printed, stream: 'stdout' | 'stderr' | 'both'): string {
  return p.chunks
    .filter((c) => stream === 'both' || c.stream === stream)
    .map((c) => c.text)
    .join('');
}
