// Readers for a Xiaomi package's side-car files (flash-script-grammar.md §8):
// misc.txt, md5sum.xml, images/crclist.txt, images/sparsecrclist.txt,
// images/anti_version.txt, and Google's android-info.txt (§10). Every reader is
// strict: a malformed line is an error naming the file and line.
import { XMLParser } from 'fast-xml-parser';
import { z } from '../zod.js';
import { BadInputError } from '../errors.js';
import type { z as Z } from 'zod';
import type { AndroidInfoRequirementSchema } from '../plan/schema.js';

export type AndroidInfoRequirement = Z.infer<typeof AndroidInfoRequirementSchema>;

export class SidecarError extends BadInputError {
  constructor(file: string, line: number | undefined, why: string) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${why}`, {
      code: 'rom.sidecar-invalid',
      hint: 'the ROM package looks damaged or edited; re-download or re-extract it',
    });
  }
}

function lines(text: string): Array<{ no: number; text: string }> {
  return text
    .split('\n')
    .map((t, i) => ({ no: i + 1, text: t.replace(/\r$/, '').trim() }))
    .filter((l) => l.text !== '');
}

/** misc.txt: `key=value` lines. */
export function parseMisc(text: string, file = 'misc.txt'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines(text)) {
    const i = l.text.indexOf('=');
    if (i <= 0) throw new SidecarError(file, l.no, `expected key=value, found ${JSON.stringify(l.text)}`);
    out[l.text.slice(0, i).trim()] = l.text.slice(i + 1).trim();
  }
  return out;
}

const Md5XmlSchema = z.object({
  root: z.object({
    digests: z
      .object({
        digest: z
          .array(z.object({ '@_hash': z.string().optional(), '@_name': z.string(), '#text': z.string() }))
          .or(z.object({ '@_hash': z.string().optional(), '@_name': z.string(), '#text': z.string() }).transform((d) => [d])),
      })
      .or(z.literal('').transform(() => ({ digest: [] }))),
    'security-patch-level': z.object({ level: z.string() }).optional(),
  }),
});

export interface Md5Sums {
  /** Bare file name in images/ → 32 lowercase hex digits. */
  digests: Map<string, string>;
  /** PLATFORM_SECURITY_PATCH, YYYY-MM-DD. */
  securityPatchLevel?: string;
}

/** md5sum.xml: `<root><digests><digest hash="md5" name="F">HEX</digest>…` plus `<security-patch-level>`. */
export function parseMd5Xml(text: string, file = 'md5sum.xml'): Md5Sums {
  let raw: unknown;
  try {
    raw = new XMLParser({ ignoreAttributes: false, parseTagValue: false, isArray: (name) => name === 'digest' }).parse(text, true);
  } catch (err) {
    throw new SidecarError(file, undefined, `not well-formed XML (${(err as Error).message})`);
  }
  const parsed = Md5XmlSchema.safeParse(raw);
  if (!parsed.success) throw new SidecarError(file, undefined, `unexpected structure: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const digests = new Map<string, string>();
  for (const d of parsed.data.root.digests.digest) {
    const hex = d['#text'].trim().toLowerCase();
    if (d['@_hash'] !== undefined && d['@_hash'].toLowerCase() !== 'md5') throw new SidecarError(file, undefined, `digest for ${d['@_name']} is ${d['@_hash']}, expected md5`);
    if (!/^[0-9a-f]{32}$/.test(hex)) throw new SidecarError(file, undefined, `digest for ${d['@_name']} is not 32 hex digits: ${JSON.stringify(hex)}`);
    if (d['@_name'].includes('/') || d['@_name'].includes('\\') || d['@_name'] === '..') throw new SidecarError(file, undefined, `digest name ${d['@_name']} is not a bare file name`);
    digests.set(d['@_name'], hex);
  }
  const level = parsed.data.root['security-patch-level']?.level;
  let securityPatchLevel: string | undefined;
  if (level !== undefined) {
    const v = (level.includes(':=') ? level.split(':=')[1]! : level).trim();
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) throw new SidecarError(file, undefined, `security patch level ${JSON.stringify(level)} is not YYYY-MM-DD`);
    securityPatchLevel = v;
  }
  return { digests, ...(securityPatchLevel ? { securityPatchLevel } : {}) };
}

function parseHex32(s: string, file: string, no: number): number {
  if (!/^0x[0-9a-fA-F]{1,8}$/.test(s)) throw new SidecarError(file, no, `expected a CRC like 0x1a2b3c4d, found ${JSON.stringify(s)}`);
  return Number.parseInt(s.slice(2), 16) >>> 0;
}

/** images/crclist.txt: `CRC-LIST` then `PART 0xCRC`. */
export function parseCrcList(text: string, file = 'images/crclist.txt'): Map<string, number> {
  const ls = lines(text);
  if (ls[0]?.text !== 'CRC-LIST') throw new SidecarError(file, ls[0]?.no ?? 1, 'expected the header CRC-LIST');
  const out = new Map<string, number>();
  for (const l of ls.slice(1)) {
    const w = l.text.split(/\s+/);
    if (w.length !== 2) throw new SidecarError(file, l.no, `expected "PARTITION 0xCRC", found ${JSON.stringify(l.text)}`);
    if (out.has(w[0]!)) throw new SidecarError(file, l.no, `partition ${w[0]} listed twice`);
    out.set(w[0]!, parseHex32(w[1]!, file, l.no));
  }
  return out;
}

/** One sparsecrclist entry: old layout `PART 0xCRC N`, newer `PART N 0xCRC1 … 0xCRCN` (one CRC per piece). */
export type SparseCrcEntry = { crc: number; count: number } | { count: number; crcs: number[] };

/** images/sparsecrclist.txt: `SPARSECRC-LIST`, then entries; the layouts differ in whether token 2 starts with 0x. */
export function parseSparseCrcList(text: string, file = 'images/sparsecrclist.txt'): Map<string, SparseCrcEntry> {
  const ls = lines(text);
  if (ls[0]?.text !== 'SPARSECRC-LIST') throw new SidecarError(file, ls[0]?.no ?? 1, 'expected the header SPARSECRC-LIST');
  const out = new Map<string, SparseCrcEntry>();
  for (const l of ls.slice(1)) {
    const w = l.text.split(/\s+/);
    const count = (s: string | undefined) => {
      if (s === undefined || !/^[0-9]+$/.test(s) || Number(s) < 1) throw new SidecarError(file, l.no, `expected a piece count >= 1, found ${JSON.stringify(s ?? '')}`);
      return Number(s);
    };
    if (out.has(w[0]!)) throw new SidecarError(file, l.no, `partition ${w[0]} listed twice`);
    if (w.length === 3 && w[1]!.startsWith('0x')) {
      out.set(w[0]!, { crc: parseHex32(w[1]!, file, l.no), count: count(w[2]) });
    } else if (w.length >= 3 && !w[1]!.startsWith('0x')) {
      const n = count(w[1]);
      const crcs = w.slice(2).map((s) => parseHex32(s, file, l.no));
      if (crcs.length !== n) throw new SidecarError(file, l.no, `piece count ${n} but ${crcs.length} CRCs`);
      out.set(w[0]!, { count: n, crcs });
    } else throw new SidecarError(file, l.no, `expected "PARTITION 0xCRC COUNT" or "PARTITION COUNT 0xCRC…", found ${JSON.stringify(l.text)}`);
  }
  return out;
}

/**
 * images/anti_version.txt: one decimal integer. Whitespace (including a stray
 * CR, which would make the vendor sh test error out and pass) is trimmed.
 */
export function parseAntiVersion(text: string, file = 'images/anti_version.txt'): number {
  const ls = lines(text);
  if (ls.length !== 1) throw new SidecarError(file, ls[1]?.no, `expected one line with a number, found ${ls.length} lines`);
  if (!/^[0-9]+$/.test(ls[0]!.text)) throw new SidecarError(file, ls[0]!.no, `expected a decimal number, found ${JSON.stringify(ls[0]!.text)}`);
  return Number(ls[0]!.text);
}

export interface AndroidInfo {
  requirements: AndroidInfoRequirement[];
  /** Lines fastboot would skip (reported, not silently dropped). */
  skipped: Array<{ line: number; text: string }>;
}

/** android-info.txt (AOSP fastboot grammar): `[require|reject|require-for-product:P] VAR=v1|v2…`. */
export function parseAndroidInfo(text: string): AndroidInfo {
  const requirements: AndroidInfoRequirement[] = [];
  const skipped: AndroidInfo['skipped'] = [];
  for (const l of lines(text)) {
    const m = /^(?:(require|reject|require-for-product:(\S+))\s+)?([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(l.text);
    if (!m) {
      skipped.push({ line: l.no, text: l.text });
      continue;
    }
    const kind = m[1] === 'reject' ? 'reject' : 'require';
    const variable = m[3] === 'board' ? 'product' : m[3]!;
    const values = m[4]!.split('|').map((v) => v.trim()).filter((v) => v !== '');
    requirements.push({ kind, ...(m[2] ? { forProduct: m[2] } : {}), variable, values, line: l.no });
  }
  return { requirements, skipped };
}
