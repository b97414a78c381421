// The EDL flashing session, in qdl's order: Sahara upload -> configure ->
// sector-size probe -> programs (rawprogram0..N, sparse chunks expanded) ->
// DISK patches -> setbootablestoragedrive -> power reset. An auth NAK ends the
// session on the spot: nothing else is sent (no sig, no retry, no reset).
import type { Transport } from '../transport/transport.js';
import { EdlInputError, FirehoseNakError } from './errors.js';
import { evalExpr, parseExpr } from './expr.js';
import { FirehoseClient, type ConfigureResult, type FirehoseTimeouts, type MemoryType, type StorageInfo } from './firehose.js';
import { discoverLuns, type LunInfo } from './luns.js';
import { streamSource } from './program.js';
import type { EdlPlan } from './rom-plan.js';
import { runSahara, type SaharaEvent, type SaharaImage, type SaharaResult } from './sahara.js';

export type EdlFlashEvent =
  | { type: 'sahara'; event: SaharaEvent }
  | { type: 'firehose-running' }
  | { type: 'configured'; result: ConfigureResult; sectorSize: number }
  /** Every LUN the plan touches was measured; sectors undefined = the programmer did not say. */
  | { type: 'storage'; luns: { lun: number; sectors?: number }[] }
  | { type: 'dry-run'; programs: number; commands: number; bytes: number; patches: number }
  | { type: 'log'; text: string }
  | { type: 'program'; index: number; total: number; label: string; lun: number; startSector: string; bytes: number }
  | { type: 'progress'; label: string; sent: number; bytes: number }
  | { type: 'erase'; label?: string; lun: number }
  | { type: 'patch'; index: number; total: number; what?: string }
  | { type: 'bootable'; lun: number; ok: boolean; error?: string }
  | { type: 'reset' };

export interface EdlSessionOptions {
  timeouts?: Partial<FirehoseTimeouts>;
  saharaTimeoutMs?: number;
  helloTimeoutMs?: number;
  onEvent?: (e: EdlFlashEvent) => void;
  /** Programmer name for messages. */
  programmer?: string;
  maxPayload?: number;
  /** Read the chip serial / HWID in Sahara command mode before uploading (edl info). */
  chipInfo?: boolean;
  /** configure with SkipStorageInit=1 (power commands need no storage). */
  skipStorageInit?: boolean;
}

export interface EdlSession {
  firehose: FirehoseClient;
  sahara: SaharaResult;
  configure: ConfigureResult;
}

/** Sahara (unless Firehose already runs) + configure. */
export async function openEdlSession(t: Transport, images: ReadonlyMap<number, SaharaImage>, memory: MemoryType, opts: EdlSessionOptions = {}): Promise<EdlSession> {
  const emit = opts.onEvent ?? (() => undefined);
  const sahara = await runSahara(t, images, {
    timeoutMs: opts.saharaTimeoutMs,
    helloTimeoutMs: opts.helloTimeoutMs,
    chipInfo: opts.chipInfo,
    onEvent: (event) => emit({ type: 'sahara', event }),
  });
  if (sahara.mode === 'firehose-running') emit({ type: 'firehose-running' });
  const firehose = new FirehoseClient(t, {
    timeouts: opts.timeouts,
    onLog: (text) => emit({ type: 'log', text }),
    pending: sahara.mode === 'firehose-running' ? sahara.pending : undefined,
    programmer: opts.programmer,
    maxPayload: opts.maxPayload,
    chip: sahara.mode === 'uploaded' ? sahara.chip : undefined,
  });
  const configure = await firehose.configure(memory, { skipStorageInit: opts.skipStorageInit });
  return { firehose, sahara, configure };
}

/** The sector size the storage answers reads with, the memory type's usual one tried first. */
export function probeOrder(memory: MemoryType): number[] {
  return memory === 'emmc' ? [512, 4096] : [4096, 512];
}

export interface EdlFlashOptions extends EdlSessionOptions {
  /** Send power reset at the end (default true). */
  reset?: boolean;
  /** Dry run: everything up to the first write (Sahara, configure, sector size, LUN sizes), then stop. */
  skipWrite?: boolean;
}

export interface EdlFlashReport {
  sahara: SaharaResult['mode'];
  configure: ConfigureResult;
  sectorSize: number;
  programs: number;
  commands: number;
  bytes: number;
  patches: number;
  bootableLun?: number;
  reset: boolean;
  /** True when nothing was written (skipWrite). */
  dryRun: boolean;
}

/** Flash a prepared plan (built with requireFiles: true). */
export async function flashEdl(t: Transport, plan: EdlPlan, images: ReadonlyMap<number, SaharaImage>, opts: EdlFlashOptions = {}): Promise<EdlFlashReport> {
  const emit = opts.onEvent ?? (() => undefined);
  const missing = plan.programs.filter((p) => !p.prepared);
  if (missing.length > 0) throw new EdlInputError(`image files missing: ${missing.map((p) => p.path).join(', ')}`, { code: 'edl.file-missing' });
  const { firehose, sahara, configure } = await openEdlSession(t, images, plan.memory, { ...opts, programmer: opts.programmer ?? plan.programmer?.main });
  const sectorSize = await firehose.probeSectorSize(probeOrder(plan.memory));
  emit({ type: 'configured', result: configure, sectorSize });
  if (plan.sectorSize !== undefined && plan.sectorSize !== sectorSize) {
    throw new EdlInputError(
      `the ROM's XML uses ${plan.sectorSize}-byte sectors but the device storage (${configure.memoryName}) uses ${sectorSize}-byte sectors`,
      { code: 'edl.sector-size', hint: 'this ROM is not for this device (UFS ROMs use 4096, eMMC ROMs 512)' },
    );
  }
  const luns = await discoverLuns(firehose, plan.memory, sectorSize);
  emit({ type: 'storage', luns: luns.map((l) => ({ lun: l.lun, sectors: l.sectors })) });
  checkPlanFits(plan, luns);
  const programs = plan.operations.filter((o) => o.kind === 'program').length;
  const report = { sahara: sahara.mode, configure, sectorSize, programs, patches: plan.patches.length, bootableLun: plan.bootableLun };
  if (opts.skipWrite) {
    const prepared = plan.programs.map((p) => p.prepared!);
    const commands = prepared.reduce((n, p) => n + p.commands.length, 0);
    const bytes = prepared.reduce((n, p) => n + p.bytes, 0);
    emit({ type: 'dry-run', programs, commands, bytes, patches: plan.patches.length });
    return { ...report, commands, bytes, reset: false, dryRun: true };
  }
  let commands = 0;
  let bytes = 0;
  let index = 0;
  for (const op of plan.operations) {
    if (op.kind === 'erase') {
      const e = op.erase;
      emit({ type: 'erase', label: e.label, lun: e.lun });
      await firehose.erase({ lun: e.lun, sectorSize: e.sectorSize, startSector: e.startSector, sectors: e.numPartitionSectors, label: e.label });
      continue;
    }
    const p = op.program.prepared!;
    index++;
    emit({ type: 'program', index, total: programs, label: p.entry.label, lun: p.entry.lun, startSector: p.entry.startSector, bytes: p.bytes });
    let done = 0;
    for (const cmd of p.commands) {
      const before = done;
      await firehose.program(cmd, streamSource(cmd.source), (sent) => emit({ type: 'progress', label: cmd.label, sent: before + sent, bytes: p.bytes }));
      done += cmd.sectors * cmd.sectorSize;
      commands++;
    }
    bytes += done;
  }
  for (const [i, patch] of plan.patches.entries()) {
    emit({ type: 'patch', index: i + 1, total: plan.patches.length, what: patch.what });
    await firehose.patch(patch);
  }
  if (plan.bootableLun !== undefined) {
    // qdl: a failure here is reported, not fatal (older programmers lack the command).
    try {
      await firehose.setBootableStorageDrive(plan.bootableLun);
      emit({ type: 'bootable', lun: plan.bootableLun, ok: true });
    } catch (err) {
      if (!(err instanceof FirehoseNakError)) throw err;
      emit({ type: 'bootable', lun: plan.bootableLun, ok: false, error: (err as Error).message });
    }
  }
  const reset = opts.reset ?? true;
  if (reset) {
    await firehose.power('reset', 1);
    emit({ type: 'reset' });
  }
  return { ...report, commands, bytes, reset, dryRun: false };
}

/**
 * Every program, erase and patch of the plan lies inside a LUN the device has
 * (NUM_DISK_SECTORS expressions evaluated with that LUN's size). LUNs whose size
 * the programmer does not report are only checked for existence on UFS.
 */
export function checkPlanFits(plan: EdlPlan, luns: LunInfo[]): void {
  const byLun = new Map(luns.map((l) => [l.lun, l]));
  const lunOf = (lun: number, where: string): LunInfo => {
    const l = byLun.get(lun);
    if (!l) {
      throw new EdlInputError(`${where}: the ROM writes LUN ${lun} but the device has LUN${luns.length > 1 ? 's' : ''} ${luns.map((x) => x.lun).join(', ')}`, {
        code: 'edl.no-lun',
        hint: 'this ROM is not for this device (or pass --memory: eMMC has one LUN)',
      });
    }
    return l;
  };
  const fits = (where: string, lun: number, start: string, sectors: number): void => {
    const l = lunOf(lun, where);
    if (l.sectors === undefined) return;
    const first = Number(evalExpr(parseExpr(start), BigInt(l.sectors)));
    if (first < 0 || first + sectors > l.sectors) {
      throw new EdlInputError(`${where}: sectors ${first}..${first + sectors - 1} are beyond the end of LUN ${lun} (${l.sectors} sectors)`, {
        code: 'edl.beyond-lun',
        hint: 'this ROM\'s partition layout does not fit this device\'s storage',
      });
    }
  };
  for (const op of plan.operations) {
    if (op.kind === 'erase') {
      const e = op.erase;
      fits(`${e.source}:${e.line}: <erase label="${e.label ?? ''}">`, e.lun, e.startSector, e.numPartitionSectors);
      continue;
    }
    const p = op.program;
    for (const c of p.prepared?.commands ?? []) fits(`${p.source}: <program label="${p.label}" filename="${p.file}">`, c.lun, c.startSector, c.sectors);
  }
  for (const patch of plan.patches) {
    const where = `${patch.source}:${patch.line}: <patch${patch.what ? ` what="${patch.what}"` : ''}>`;
    fits(where, patch.lun, patch.startSector, Math.ceil((patch.byteOffset + patch.sizeInBytes) / patch.sectorSize));
  }
}

/** Storage information for LUN 0 and, on UFS, every other LUN the device reports. */
export async function readStorageInfo(session: EdlSession, memory: MemoryType): Promise<StorageInfo[]> {
  const first = await session.firehose.getStorageInfo(0);
  const out = [first];
  if (memory === 'ufs' && first.numPhysical !== undefined) {
    for (let lun = 1; lun < Math.min(first.numPhysical, 8); lun++) out.push(await session.firehose.getStorageInfo(lun));
  }
  return out;
}
