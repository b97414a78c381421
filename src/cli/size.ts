// Byte sizes on the command line: 123, 64K, 256M, 1G (binary units, like
// fastboot's -S), optionally with a "B"/"iB" suffix, or hex (0x20000000).
import { BadInputError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses a size; `what` names the option in the error message. */
export function parseSize(text: string, what = 'size'): number {
  const s = text.trim();
  const hex = /^0x([0-9a-f]+)$/i.exec(s);
  if (hex) return checked(parseInt(hex[1]!, 16), text, what);
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s);
  if (!m) {
    throw new BadInputError(`invalid ${what} '${text}': expected a byte count like 123, 64K, 256M or 1G`, {
      code: 'input.size',
    });
  }
  const value = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isInteger(value)) {
    throw new BadInputError(`invalid ${what} '${text}': not a whole number of bytes`, { code: 'input.size' });
  }
  return checked(value, text, what);
}

function checked(value: number, text: string, what: string): number {
  if (!Number.isSafeInteger(value)) {
    throw new BadInputError(`invalid ${what} '${text}': too large`, { code: 'input.size' });
  }
  return value;
}

/** Human-readable size: 1536 -> "1.5 KiB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}
