// GUID Partition Table (UEFI spec, ch. 5): decoding and checking the primary
// and backup copies of one LUN, and building a table (what Qualcomm's ptool
// writes as gpt_main<N>.bin / gpt_backup<N>.bin, and what the emulated device
// creates on a blank LUN). Pure: bytes in, structures out; no device code.
// Not the npm `gpt` package: it computes the entry-array CRC over the whole
// 16 KiB reservation instead of entryCount x entrySize bytes, so it rejects the
// Qualcomm UFS tables this tool meets (32 entries, CRC over 4096 bytes).
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const GPT_SIGNATURE = 'EFI PART';
export const GPT_HEADER_SIZE = 92;
export const GPT_ENTRY_SIZE = 128;
/** The UEFI spec reserves at least this many bytes for the entry array. */
export const GPT_MIN_ARRAY_BYTES = 16384;
const NAME_CHARS = 36;

export interface GptHeader {
  revision: number;
  headerSize: number;
  headerCrc: number;
  /** CRC-32 of the header as stored (with the CRC field zeroed), for comparison with headerCrc. */
  computedHeaderCrc: number;
  myLba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

export interface GptPartition {
  /** 0-based slot in the entry array. */
  index: number;
  name: string;
  typeGuid: string;
  uniqueGuid: string;
  firstLba: number;
  lastLba: number;
  /** 64-bit attribute flags, hex ("0x..."). */
  attributes: string;
}

const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

/** The on-disk GUID layout: first three fields little-endian, the rest as bytes. */
export function decodeGuid(b: Uint8Array, at = 0): string {
  const buf = Buffer.from(b.buffer, b.byteOffset + at, 16);
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = Buffer.from(buf.subarray(from, to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`.toUpperCase();
}

export function encodeGuid(guid: string, out: Buffer, at: number): void {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(guid.trim());
  if (!m) throw new RangeError(`not a GUID: ${JSON.stringify(guid)}`);
  Buffer.from(m[1]!, 'hex').reverse().copy(out, at);
  Buffer.from(m[2]!, 'hex').reverse().copy(out, at + 4);
  Buffer.from(m[3]!, 'hex').reverse().copy(out, at + 6);
  Buffer.from(m[4]! + m[5]!, 'hex').copy(out, at + 8);
}

/** A stable, version-4-shaped GUID derived from a string (reproducible test and emulator tables). */
export function guidFromString(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`.toUpperCase();
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** The header in `sector` (one logical block), or undefined when the signature is absent. */
export function decodeGptHeader(sector: Uint8Array): GptHeader | undefined {
  const b = Buffer.from(sector.buffer, sector.byteOffset, sector.length);
  if (b.length < GPT_HEADER_SIZE || b.toString('latin1', 0, 8) !== GPT_SIGNATURE) return undefined;
  const headerSize = b.readUInt32LE(12);
  const crcLength = headerSize >= GPT_HEADER_SIZE && headerSize <= b.length ? headerSize : GPT_HEADER_SIZE;
  const copy = Buffer.from(b.subarray(0, crcLength));
  copy.writeUInt32LE(0, 16);
  return {
    revision: b.readUInt32LE(8),
    headerSize,
    headerCrc: b.readUInt32LE(16),
    computedHeaderCrc: crc32(copy),
    myLba: u64(b, 24),
    alternateLba: u64(b, 32),
    firstUsableLba: u64(b, 40),
    lastUsableLba: u64(b, 48),
    diskGuid: decodeGuid(b, 56),
    entriesLba: u64(b, 72),
    entryCount: b.readUInt32LE(80),
    entrySize: b.readUInt32LE(84),
    entriesCrc: b.readUInt32LE(88),
  };
}

/** Bytes the entry array of `h` occupies, rounded up to whole sectors. */
export function entryArraySectors(h: Pick<GptHeader, 'entryCount' | 'entrySize'>, sectorSize: number): number {
  return Math.ceil((h.entryCount * h.entrySize) / sectorSize);
}

/** Used entries (type GUID not all zero) of an entry array. */
export function decodeEntries(array: Uint8Array, count: number, size: number): GptPartition[] {
  const b = Buffer.from(array.buffer, array.byteOffset, array.length);
  const out: GptPartition[] = [];
  for (let i = 0; i < count && (i + 1) * size <= b.length; i++) {
    const at = i * size;
    const typeGuid = decodeGuid(b, at);
    if (typeGuid === ZERO_GUID) continue;
    const nameBytes = b.subarray(at + 56, at + 56 + NAME_CHARS * 2);
    let end = 0;
    while (end < nameBytes.length && (nameBytes[end] !== 0 || nameBytes[end + 1] !== 0)) end += 2;
    out.push({
      index: i,
      name: nameBytes.toString('utf16le', 0, end),
      typeGuid,
      uniqueGuid: decodeGuid(b, at + 16),
      firstLba: u64(b, at + 32),
      lastLba: u64(b, at + 40),
      attributes: `0x${b.readBigUInt64LE(at + 48).toString(16).padStart(16, '0')}`,
    });
  }
  return out;
}

// ---- checking -------------------------------------------------------------------

export interface GptCopy {
  /** Where the header was looked for. */
  lba: number;
  header?: GptHeader;
  /** The entry array as read (header.entryCount * entrySize bytes). */
  entries?: Uint8Array;
}

export interface GptCopyReport {
  lba: number;
  found: boolean;
  headerCrcOk: boolean;
  entriesCrcOk: boolean;
  header?: Omit<GptHeader, 'computedHeaderCrc'>;
  /** What is wrong with this copy (empty when it is valid). */
  problems: string[];
}

export type GptStatus = 'ok' | 'degraded' | 'corrupt' | 'none';

export interface GptReport {
  /** ok: both copies valid and consistent; degraded: one valid copy (partitions from it);
   *  corrupt: no valid copy; none: no GPT signature at all (blank LUN). */
  status: GptStatus;
  /** Which copy the partitions come from. */
  source?: 'primary' | 'backup';
  primary: GptCopyReport;
  backup: GptCopyReport;
  partitions: GptPartition[];
  problems: string[];
}

function checkCopy(copy: GptCopy, which: 'primary' | 'backup', diskSectors: number): GptCopyReport {
  const h = copy.header;
  if (!h) return { lba: copy.lba, found: false, headerCrcOk: false, entriesCrcOk: false, problems: [`${which} header: no "EFI PART" signature at LBA ${copy.lba}`] };
  const problems: string[] = [];
  const headerCrcOk = h.headerCrc === h.computedHeaderCrc;
  if (!headerCrcOk) problems.push(`${which} header CRC 0x${hex32(h.headerCrc)} does not match its content (0x${hex32(h.computedHeaderCrc)})`);
  if (h.headerSize < GPT_HEADER_SIZE) problems.push(`${which} header size ${h.headerSize} is below ${GPT_HEADER_SIZE}`);
  if (h.myLba !== copy.lba) problems.push(`${which} header says it lives at LBA ${h.myLba}, found at ${copy.lba}`);
  const expectedAlt = which === 'primary' ? diskSectors - 1 : 1;
  if (h.alternateLba !== expectedAlt) problems.push(`${which} header points to the other copy at LBA ${h.alternateLba}, expected ${expectedAlt}`);
  if (h.firstUsableLba > h.lastUsableLba || h.lastUsableLba >= diskSectors) {
    problems.push(`${which} header usable range ${h.firstUsableLba}..${h.lastUsableLba} does not fit the LUN (${diskSectors} sectors)`);
  }
  if (h.entrySize < GPT_ENTRY_SIZE || h.entrySize % 8 !== 0) problems.push(`${which} header entry size ${h.entrySize} is invalid`);
  let entriesCrcOk = false;
  if (copy.entries) {
    entriesCrcOk = crc32(copy.entries) === h.entriesCrc;
    if (!entriesCrcOk) problems.push(`${which} partition array CRC 0x${hex32(h.entriesCrc)} does not match the array at LBA ${h.entriesLba} (0x${hex32(crc32(copy.entries))})`);
  } else {
    problems.push(`${which} partition array at LBA ${h.entriesLba} could not be read`);
  }
  const { computedHeaderCrc: _c, ...header } = h;
  return { lba: copy.lba, found: true, headerCrcOk, entriesCrcOk, header, problems };
}

/** Partitions outside the usable range or overlapping each other. */
function layoutProblems(h: GptHeader, parts: GptPartition[]): string[] {
  const problems: string[] = [];
  for (const p of parts) {
    if (p.firstLba > p.lastLba) problems.push(`partition ${p.index + 1} "${p.name}" ends (${p.lastLba}) before it starts (${p.firstLba})`);
    else if (p.firstLba < h.firstUsableLba || p.lastLba > h.lastUsableLba) {
      problems.push(`partition ${p.index + 1} "${p.name}" (${p.firstLba}..${p.lastLba}) is outside the usable range ${h.firstUsableLba}..${h.lastUsableLba}`);
    }
  }
  const sorted = [...parts].sort((a, b) => a.firstLba - b.firstLba);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.firstLba <= a.lastLba) problems.push(`partitions "${a.name}" and "${b.name}" overlap`);
  }
  return problems;
}

/**
 * Judge both copies of a LUN's table. `diskSectors` is NUM_DISK_SECTORS (the
 * backup header belongs at its last sector).
 */
export function checkGpt(primary: GptCopy, backup: GptCopy, diskSectors: number): GptReport {
  if (!primary.header && !backup.header) {
    return { status: 'none', primary: checkCopy(primary, 'primary', diskSectors), backup: checkCopy(backup, 'backup', diskSectors), partitions: [], problems: [] };
  }
  const p = checkCopy(primary, 'primary', diskSectors);
  const b = checkCopy(backup, 'backup', diskSectors);
  const problems = [...p.problems, ...b.problems];
  const pValid = p.found && p.headerCrcOk && p.entriesCrcOk;
  const bValid = b.found && b.headerCrcOk && b.entriesCrcOk;
  if (pValid && bValid) {
    const ph = primary.header!;
    const bh = backup.header!;
    const same = (k: keyof GptHeader): boolean => ph[k] === bh[k];
    for (const k of ['firstUsableLba', 'lastUsableLba', 'diskGuid', 'entryCount', 'entrySize', 'entriesCrc'] as const) {
      if (!same(k)) problems.push(`primary and backup headers differ in ${k} (${String(ph[k])} vs ${String(bh[k])})`);
    }
    if (!Buffer.from(primary.entries!).equals(Buffer.from(backup.entries!))) problems.push('primary and backup partition arrays differ');
  }
  const source = pValid ? 'primary' : bValid ? 'backup' : undefined;
  if (!source) return { status: 'corrupt', primary: p, backup: b, partitions: [], problems };
  const use = source === 'primary' ? primary : backup;
  const partitions = decodeEntries(use.entries!, use.header!.entryCount, use.header!.entrySize);
  problems.push(...layoutProblems(use.header!, partitions));
  return { status: problems.length === 0 ? 'ok' : 'degraded', source, primary: p, backup: b, partitions, problems };
}

function hex32(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}

// ---- building ---------------------------------------------------------------------

export interface GptLayoutEntry {
  name: string;
  firstLba: number;
  /** Sectors; 0 = grow to the last usable sector (the last partition, as ptool's userdata). */
  sectors: number;
  typeGuid?: string;
  uniqueGuid?: string;
  attributes?: bigint;
}

export interface GptLayout {
  sectorSize: number;
  /** NUM_DISK_SECTORS the table is written for. */
  diskSectors: number;
  partitions: GptLayoutEntry[];
  diskGuid?: string;
  /** Entry slots; default: 32 for 4096-byte sectors, 128 for 512 (what ptool writes), more if needed. */
  entryCount?: number;
}

export interface BuiltGpt {
  /** LBA 0 .. firstUsable-1: protective MBR, header, entry array (gpt_main<N>.bin). */
  primary: Buffer;
  /** The entry array then the header, for the last sectors of the LUN (gpt_backup<N>.bin). */
  backup: Buffer;
  firstUsableLba: number;
  lastUsableLba: number;
  entryCount: number;
}

/** Microsoft basic data: the type used when a layout entry names none. */
export const BASIC_DATA_GUID = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';

export function buildGpt(layout: GptLayout): BuiltGpt {
  const ss = layout.sectorSize;
  const perSector = ss / GPT_ENTRY_SIZE;
  const minEntries = layout.entryCount ?? (ss >= 4096 ? 32 : 128);
  const entryCount = Math.max(minEntries, Math.ceil(layout.partitions.length / perSector) * perSector);
  const arraySectors = Math.max(Math.ceil((entryCount * GPT_ENTRY_SIZE) / ss), Math.ceil(GPT_MIN_ARRAY_BYTES / ss));
  const firstUsableLba = 2 + arraySectors;
  const lastUsableLba = layout.diskSectors - 2 - arraySectors;
  if (lastUsableLba < firstUsableLba) throw new RangeError(`a LUN of ${layout.diskSectors} sectors has no room for a GPT`);
  const array = Buffer.alloc(arraySectors * ss);
  layout.partitions.forEach((p, i) => {
    if (p.name.length > NAME_CHARS) throw new RangeError(`partition name "${p.name}" is longer than ${NAME_CHARS} characters`);
    const last = p.sectors === 0 ? lastUsableLba : p.firstLba + p.sectors - 1;
    if (p.firstLba < firstUsableLba || last > lastUsableLba) {
      throw new RangeError(`partition "${p.name}" (${p.firstLba}..${last}) is outside the usable range ${firstUsableLba}..${lastUsableLba}`);
    }
    const at = i * GPT_ENTRY_SIZE;
    encodeGuid(p.typeGuid ?? BASIC_DATA_GUID, array, at);
    encodeGuid(p.uniqueGuid ?? guidFromString(`${layout.diskGuid ?? ''}/${i}/${p.name}`), array, at + 16);
    array.writeBigUInt64LE(BigInt(p.firstLba), at + 32);
    array.writeBigUInt64LE(BigInt(last), at + 40);
    array.writeBigUInt64LE(p.attributes ?? 0n, at + 48);
    array.write(p.name, at + 56, NAME_CHARS * 2, 'utf16le');
  });
  const entriesCrc = crc32(array.subarray(0, entryCount * GPT_ENTRY_SIZE));
  const diskGuid = layout.diskGuid ?? guidFromString(`disk/${layout.diskSectors}/${layout.partitions.map((p) => p.name).join(',')}`);
  const header = (myLba: number, alternateLba: number, entriesLba: number): Buffer => {
    const h = Buffer.alloc(ss);
    h.write(GPT_SIGNATURE, 0, 'latin1');
    h.writeUInt32LE(0x00010000, 8);
    h.writeUInt32LE(GPT_HEADER_SIZE, 12);
    h.writeBigUInt64LE(BigInt(myLba), 24);
    h.writeBigUInt64LE(BigInt(alternateLba), 32);
    h.writeBigUInt64LE(BigInt(firstUsableLba), 40);
    h.writeBigUInt64LE(BigInt(lastUsableLba), 48);
    encodeGuid(diskGuid, h, 56);
    h.writeBigUInt64LE(BigInt(entriesLba), 72);
    h.writeUInt32LE(entryCount, 80);
    h.writeUInt32LE(GPT_ENTRY_SIZE, 84);
    h.writeUInt32LE(entriesCrc, 88);
    h.writeUInt32LE(crc32(h.subarray(0, GPT_HEADER_SIZE)), 16);
    return h;
  };
  const last = layout.diskSectors - 1;
  const primary = Buffer.concat([protectiveMbr(ss, layout.diskSectors), header(1, last, 2), array]);
  const backup = Buffer.concat([array, header(last, 1, last - arraySectors)]);
  return { primary, backup, firstUsableLba, lastUsableLba, entryCount };
}

/** LBA 0: one partition of type 0xEE covering the disk (capped at 2^32-1 sectors). */
function protectiveMbr(sectorSize: number, diskSectors: number): Buffer {
  const b = Buffer.alloc(sectorSize);
  const e = 446;
  b[e + 1] = 0x00;
  b[e + 2] = 0x02;
  b[e + 4] = 0xee;
  b[e + 5] = 0xff;
  b[e + 6] = 0xff;
  b[e + 7] = 0xff;
  b.writeUInt32LE(1, e + 8);
  b.writeUInt32LE(Math.min(diskSectors - 1, 0xffffffff), e + 12);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}
