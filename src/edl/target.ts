// What `edl read` / `edl erase` act on: a partition named by its GPT label, or
// a raw range (LUN, start sector, count). Resolved against the device before
// anything moves; the erase guard says why a range needs --force.
import { EdlInputError } from './errors.js';
import { evalExpr, parseExpr, usesDiskSize } from './expr.js';
import type { FirehoseClient } from './firehose.js';
import { findPartition, readLunGpt, type LunGpt, type LunInfo } from './luns.js';
import { PROTECTED_PARTITIONS } from './protected.js';

export type TargetSpec = { kind: 'label'; label: string; lun?: number } | { kind: 'range'; lun: number; start: string; sectors: number };

export interface Target {
  lun: number;
  sectorSize: number;
  start: number;
  sectors: number;
  /** The GPT name when addressed by label. */
  label?: string;
  /** NUM_DISK_SECTORS of the LUN, when known. */
  lunSectors?: number;
  /** The LUN's table, when it was read. */
  gpt?: LunGpt;
}


export function describeTarget(t: Target): string {
  const what = t.label ? `"${t.label}" ` : '';
  return `${what}(LUN ${t.lun}, sectors ${t.start}..${t.start + t.sectors - 1}, ${t.sectors} x ${t.sectorSize} bytes)`;
}

/**
 * Resolve a spec on the device. A label needs the GPTs (all LUNs, or --lun's);
 * a range needs the LUN size when its start uses NUM_DISK_SECTORS, and the LUN's
 * GPT only when `withGpt` (the erase guard).
 */
export async function resolveTarget(fh: FirehoseClient, luns: LunInfo[], spec: TargetSpec, opts: { withGpt?: boolean } = {}): Promise<{ target: Target; gpts: LunGpt[] }> {
  if (spec.kind === 'label') {
    const scope = spec.lun === undefined ? luns : luns.filter((l) => l.lun === spec.lun);
    if (scope.length === 0) throw new EdlInputError(`--lun ${spec.lun}: the device has LUNs ${luns.map((l) => l.lun).join(', ')}`, { code: 'edl.no-lun' });
    const gpts: LunGpt[] = [];
    for (const l of scope) gpts.push(await readLunGpt(fh, l));
    const { lun, partition } = findPartition(gpts, spec.label, spec.lun);
    const target: Target = {
      lun: lun.lun,
      sectorSize: lun.sectorSize,
      start: partition.firstLba,
      sectors: partition.lastLba - partition.firstLba + 1,
      label: partition.name,
      lunSectors: lun.sectors,
      gpt: lun,
    };
    return { target, gpts };
  }
  const info = luns.find((l) => l.lun === spec.lun);
  if (!info) throw new EdlInputError(`--lun ${spec.lun}: the device has LUNs ${luns.map((l) => l.lun).join(', ')}`, { code: 'edl.no-lun' });
  const expr = parseExpr(spec.start);
  if (usesDiskSize(expr) && info.sectors === undefined) {
    throw new EdlInputError(`--start ${spec.start}: the size of LUN ${spec.lun} is unknown (the programmer has no getstorageinfo)`, { code: 'edl.lun-size' });
  }
  const start = Number(evalExpr(expr, info.sectors === undefined ? undefined : BigInt(info.sectors)));
  if (!Number.isSafeInteger(start) || start < 0) throw new EdlInputError(`--start ${spec.start}: not a sector number (${start})`, { code: 'edl.range' });
  if (!Number.isSafeInteger(spec.sectors) || spec.sectors < 1) throw new EdlInputError(`--sectors ${spec.sectors}: expected a count >= 1`, { code: 'edl.range' });
  if (info.sectors !== undefined && start + spec.sectors > info.sectors) {
    throw new EdlInputError(`sectors ${start}..${start + spec.sectors - 1} are beyond the end of LUN ${spec.lun} (${info.sectors} sectors)`, { code: 'edl.range' });
  }
  const gpt = opts.withGpt ? await readLunGpt(fh, info) : undefined;
  return { target: { lun: spec.lun, sectorSize: info.sectorSize, start, sectors: spec.sectors, lunSectors: info.sectors, gpt }, gpts: gpt ? [gpt] : [] };
}

/**
 * Why erasing `t` needs --force (empty: it does not): device-unique partitions,
 * the GPT's own sectors, or a LUN whose table cannot say what the range holds.
 */
export function eraseRefusals(t: Target): string[] {
  const out: string[] = [];
  const gpt = t.gpt;
  const end = t.start + t.sectors - 1;
  if (t.label && PROTECTED_PARTITIONS.test(t.label)) {
    out.push(`"${t.label}" holds identity / calibration data unique to this phone that no ROM can restore`);
  }
  if (!gpt || gpt.status === 'none' || gpt.status === 'corrupt') {
    if (!t.label) out.push(`LUN ${t.lun} has no valid GPT, so miflash cannot tell which partitions sectors ${t.start}..${end} belong to`);
    return out;
  }
  if (!t.label) {
    const touched = gpt.partitions.filter((p) => p.firstLba <= end && p.lastLba >= t.start);
    const prot = touched.filter((p) => PROTECTED_PARTITIONS.test(p.name)).map((p) => p.name);
    if (prot.length > 0) out.push(`the range covers ${prot.map((n) => `"${n}"`).join(', ')}: identity / calibration data unique to this phone`);
    const src = gpt.source === 'backup' ? gpt.backup.header : gpt.primary.header;
    if (src && (t.start < src.firstUsableLba || end > src.lastUsableLba)) {
      out.push(`the range reaches the partition table itself (usable sectors are ${src.firstUsableLba}..${src.lastUsableLba}); the LUN would lose its GPT`);
    }
  }
  return out;
}
