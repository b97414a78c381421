// What a Firehose session knows about the storage: the LUNs (getstorageinfo),
// each LUN's GPT (primary at LBA 1, backup where the primary says, else at the
// last sector) and the partition a label names. Small reads only: a GPT is a
// few sectors.
import { EdlInputError, FirehoseNakError } from './errors.js';
import type { FirehoseClient, MemoryType, StorageInfo } from './firehose.js';
import { checkGpt, decodeGptHeader, entryArraySectors, type GptCopy, type GptPartition, type GptReport } from './gpt.js';

export interface LunInfo {
  lun: number;
  sectorSize: number;
  /** NUM_DISK_SECTORS; undefined when the programmer does not tell (no getstorageinfo). */
  sectors?: number;
  storage?: StorageInfo;
}

/** UFS has at most 8 user LUNs (0-7); eMMC's user area is LUN 0. */
const MAX_LUNS = 8;

/**
 * Storage information per LUN: LUN 0 first; on UFS its num_physical tells how
 * many LUNs there are. A programmer without getstorageinfo leaves sizes unknown.
 */
export async function discoverLuns(fh: FirehoseClient, memory: MemoryType, sectorSize: number): Promise<LunInfo[]> {
  const one = async (lun: number): Promise<LunInfo> => {
    try {
      const storage = await fh.getStorageInfo(lun);
      if (storage.blockSize !== undefined && storage.blockSize !== sectorSize) {
        throw new EdlInputError(`LUN ${lun}: getstorageinfo reports ${storage.blockSize}-byte blocks but reads work with ${sectorSize}-byte sectors`, {
          code: 'edl.sector-size',
        });
      }
      return { lun, sectorSize, sectors: storage.totalBlocks, storage };
    } catch (err) {
      if (err instanceof FirehoseNakError) return { lun, sectorSize };
      throw err;
    }
  };
  const first = await one(0);
  if (memory !== 'ufs') return [first];
  const count = Math.min(first.storage?.numPhysical ?? 1, MAX_LUNS);
  const out = [first];
  for (let lun = 1; lun < count; lun++) out.push(await one(lun));
  return out;
}

/** Read `count` sectors of a LUN into memory (GPT-sized reads only). */
export async function readSectors(fh: FirehoseClient, lun: LunInfo, start: number, count: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await fh.read({ lun: lun.lun, sectorSize: lun.sectorSize, startSector: start, sectors: count }, (chunk) => {
    parts.push(Buffer.from(chunk));
  });
  return Buffer.concat(parts);
}

export interface LunGpt extends GptReport {
  lun: number;
  sectorSize: number;
  sectors?: number;
  /** What could not be checked (not faults of the table). */
  notes: string[];
}

/** Entry arrays larger than this are not believed (a corrupt header must not make us read gigabytes). */
const MAX_ARRAY_BYTES = 1024 * 1024;

async function readCopy(fh: FirehoseClient, lun: LunInfo, lba: number): Promise<GptCopy> {
  const header = decodeGptHeader(await readSectors(fh, lun, lba, 1));
  if (!header) return { lba };
  const bytes = header.entryCount * header.entrySize;
  const sectors = entryArraySectors(header, lun.sectorSize);
  const total = lun.sectors ?? Number.MAX_SAFE_INTEGER;
  if (bytes === 0 || bytes > MAX_ARRAY_BYTES || header.entriesLba + sectors > total) return { lba, header };
  const array = await readSectors(fh, lun, header.entriesLba, sectors);
  return { lba, header, entries: array.subarray(0, bytes) };
}

/** Both GPT copies of one LUN, checked. Needs the LUN size (the backup lives at its end). */
export async function readLunGpt(fh: FirehoseClient, lun: LunInfo): Promise<LunGpt> {
  const primary = await readCopy(fh, lun, 1);
  const last = lun.sectors !== undefined ? lun.sectors - 1 : undefined;
  // The backup belongs at the last sector; if the primary points elsewhere, that is reported, and the last sector is still what counts.
  const backupLba = last ?? primary.header?.alternateLba;
  const backup = backupLba !== undefined && backupLba > 1 ? await readCopy(fh, lun, backupLba) : { lba: backupLba ?? 0 };
  const report = checkGpt(primary, backup, lun.sectors ?? (primary.header ? primary.header.alternateLba + 1 : 0));
  const notes =
    lun.sectors === undefined && report.status !== 'none'
      ? [`LUN ${lun.lun} size unknown (no getstorageinfo): the backup was looked for where the primary header points, not at the last sector`]
      : [];
  return { lun: lun.lun, sectorSize: lun.sectorSize, sectors: lun.sectors, ...report, notes };
}

export interface FoundPartition {
  lun: LunGpt;
  partition: GptPartition;
}

/**
 * The partition named `label` (exact, case-sensitive as GPT names are): on the
 * given LUN, else the only LUN that has it. Names the alternatives otherwise.
 */
export function findPartition(gpts: LunGpt[], label: string, lun?: number): FoundPartition {
  const scope = lun === undefined ? gpts : gpts.filter((g) => g.lun === lun);
  if (lun !== undefined && scope.length === 0) throw new EdlInputError(`--lun ${lun}: the device has LUNs ${gpts.map((g) => g.lun).join(', ')}`, { code: 'edl.no-lun' });
  const hits = scope.flatMap((g) => g.partitions.filter((p) => p.name === label).map((partition) => ({ lun: g, partition })));
  if (hits.length === 1) return hits[0]!;
  const where = lun === undefined ? 'on any LUN' : `on LUN ${lun}`;
  if (hits.length > 1) {
    const luns = [...new Set(hits.map((h) => h.lun.lun))];
    throw new EdlInputError(
      luns.length > 1 ? `partition "${label}" exists on LUNs ${luns.join(', ')}: pass --lun N` : `partition "${label}" appears ${hits.length} times in the GPT of LUN ${luns[0]}`,
      { code: 'edl.ambiguous-partition' },
    );
  }
  const broken = scope.filter((g) => g.status === 'corrupt' || g.status === 'none').map((g) => `LUN ${g.lun} (${g.status === 'none' ? 'no GPT' : 'GPT corrupt'})`);
  const lower = label.toLowerCase();
  const similar = [...new Set(scope.flatMap((g) => g.partitions.map((p) => p.name)).filter((n) => n.toLowerCase().startsWith(lower) || lower.startsWith(n.toLowerCase())))];
  throw new EdlInputError(`no partition "${label}" ${where}`, {
    code: 'edl.no-partition',
    hint: [
      similar.length > 0 ? `similar names: ${similar.slice(0, 8).join(', ')}` : 'list the partitions with `miflash edl gpt`',
      broken.length > 0 ? `unreadable tables: ${broken.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  });
}
