// What an EDL flash of a ROM would do, computed without a device: the
// rawprogram files (rawprogram0..N.xml, LUN by LUN), their programs with a
// file (filename="" skipped), the DISK patches, the programmer, the memory
// type, the bootable LUN. Everything is validated here, before anything is sent.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { EdlInputError } from './errors.js';
import type { MemoryType } from './firehose.js';
import { prepareProgram, imagePath, type PreparedProgram } from './program.js';
import { discoverProgrammer, memoryFromName, programmerFromPath, type ProgrammerSet } from './programmer.js';
import { parseEdlXml, type EraseEntry, type PatchEntry, type ProgramEntry } from './rawprogram-xml.js';
import { diskPatches } from './patch.js';
import { PROTECTED_PARTITIONS } from './protected.js';

export interface PlannedProgram {
  lun: number;
  /** As written in the XML (sent unchanged). */
  startSector: string;
  sectorSize: number;
  /** Sectors the image covers (sparse: expanded); the XML's num_partition_sectors when the file is missing. */
  sectors: number;
  file: string;
  label: string;
  /** The XML's sparse attribute. */
  sparse: boolean;
  path: string;
  /** "rawprogram0.xml:12" */
  source: string;
  missing: boolean;
  /** Absent when the file is missing. */
  prepared?: PreparedProgram;
}

export interface EdlPlan {
  imagesDir: string;
  rawprogramFiles: string[];
  patchFiles: string[];
  /** Programs and erases in execution order. */
  operations: ({ kind: 'program'; program: PlannedProgram } | { kind: 'erase'; erase: EraseEntry })[];
  programs: PlannedProgram[];
  patches: PatchEntry[];
  /** Entries with filename="" (the partition keeps its content). */
  skipped: ProgramEntry[];
  /** Patches aimed at host files (gpt_main0.bin …): never sent. */
  hostPatches: number;
  programmer?: ProgrammerSet;
  memory: MemoryType;
  memorySource: 'flag' | 'programmer-name' | 'sector-size' | 'default';
  sectorSize?: number;
  bootableLun?: number;
  warnings: string[];
}

export interface EdlPlanOptions {
  memory?: MemoryType;
  /** Explicit programmer (file or multi-image list). */
  programmer?: string;
  /** flash: every file must exist (plan only reports missing ones). */
  requireFiles?: boolean;
  /** Unknown XML attributes are errors instead of warnings. */
  strict?: boolean;
}

const RAWPROGRAM = /^rawprogram(\d+)\.xml$/i;
const RAWPROGRAM_UNSPARSE = /^rawprogram_unsparse\d*\.xml$/i;
const PATCH = /^patch(\d+)\.xml$/i;

/** Inputs: one ROM folder (with images/), an images folder, or rawprogram/patch XML files. */
export async function buildEdlPlan(inputs: string[], opts: EdlPlanOptions = {}): Promise<EdlPlan> {
  if (inputs.length === 0) throw new EdlInputError('no ROM given: pass the ROM folder (or its rawprogram*.xml / patch*.xml files)');
  const { imagesDir, xmlFiles, warnings } = await locateXml(inputs);
  const rawprogramFiles: string[] = [];
  const patchFiles: string[] = [];
  const operations: EdlPlan['operations'] = [];
  const programs: PlannedProgram[] = [];
  const skipped: ProgramEntry[] = [];
  const patchLists: PatchEntry[][] = [];
  const allEntries: ProgramEntry[] = [];
  for (const file of xmlFiles) {
    const text = await readXml(file);
    const doc = parseEdlXml(text, file);
    if (opts.strict && doc.warnings.length > 0) throw new EdlInputError(`${doc.warnings[0]!.replace(/ ignored$/, '')} (--strict)`, { code: 'edl.xml.attribute' });
    warnings.push(...doc.warnings);
    if (doc.type === 'patch') {
      patchFiles.push(file);
      patchLists.push(doc.patches);
      continue;
    }
    rawprogramFiles.push(file);
    for (const e of doc.entries) {
      if (e.kind === 'erase') {
        if (e.label && PROTECTED_PARTITIONS.test(e.label)) {
          throw new EdlInputError(`${e.source}:${e.line}: refusing to erase "${e.label}" (device identity/calibration data)`, { code: 'edl.protected' });
        }
        operations.push({ kind: 'erase', erase: e });
        continue;
      }
      allEntries.push(e);
      if (e.filename === '') {
        skipped.push(e);
        continue;
      }
      if (/^secdata$/i.test(e.label)) {
        throw new EdlInputError(`${e.source}:${e.line}: refusing to flash "secdata" (can make irreversible changes to the device's security state)`, {
          code: 'edl.protected',
        });
      }
      const planned = await planProgram(e, opts.requireFiles ?? false);
      programs.push(planned);
      operations.push({ kind: 'program', program: planned });
      warnings.push(...(planned.prepared?.warnings ?? []));
    }
  }
  if (rawprogramFiles.length === 0) throw new EdlInputError(`no rawprogram XML among ${inputs.join(', ')}`, { code: 'edl.no-rawprogram' });
  const { patches, hostPatches } = diskPatches(patchLists.flat());

  const sizes = new Set([...allEntries.map((e) => e.sectorSize), ...patches.map((p) => p.sectorSize)]);
  if (sizes.size > 1) throw new EdlInputError(`the XML files mix sector sizes (${[...sizes].join(', ')}); a device has one`, { code: 'edl.sector-size' });
  const sectorSize = sizes.size === 1 ? [...sizes][0] : undefined;

  const programmer = opts.programmer ? await programmerFromPath(opts.programmer) : await discoverProgrammer(imagesDir, opts.memory);
  if (!programmer) warnings.push(`no Firehose programmer found in ${imagesDir} (prog_*firehose*, *devprg*, or a multi-image list)`);
  else if (programmer.alternatives.length > 0) warnings.push(`programmer ${basename(programmer.main)} chosen; also found: ${programmer.alternatives.map((p) => basename(p)).join(', ')}`);

  const { memory, memorySource } = chooseMemory(opts.memory, programmer, sectorSize);
  const bootableLun = findBootable(allEntries, warnings);
  return { imagesDir, rawprogramFiles, patchFiles, operations, programs, patches, skipped, hostPatches, programmer, memory, memorySource, sectorSize, bootableLun, warnings };
}

async function planProgram(e: ProgramEntry, requireFiles: boolean): Promise<PlannedProgram> {
  const base = {
    lun: e.lun,
    startSector: e.startSector,
    sectorSize: e.sectorSize,
    file: e.filename,
    label: e.label,
    sparse: e.sparse,
    path: imagePath(e),
    source: `${e.source}:${e.line}`,
  };
  const exists = await stat(base.path).then((s) => s.isFile(), () => false);
  if (!exists && !requireFiles) return { ...base, sectors: e.numPartitionSectors, missing: true };
  const prepared = await prepareProgram(e);
  return { ...base, sectors: prepared.sectors, missing: false, prepared };
}

function chooseMemory(flag: MemoryType | undefined, programmer: ProgrammerSet | undefined, sectorSize: number | undefined): Pick<EdlPlan, 'memory' | 'memorySource'> {
  if (flag) return { memory: flag, memorySource: 'flag' };
  const fromName = programmer ? memoryFromName(programmer.main) : undefined;
  if (fromName) return { memory: fromName, memorySource: 'programmer-name' };
  if (sectorSize === 4096) return { memory: 'ufs', memorySource: 'sector-size' };
  if (sectorSize === 512) return { memory: 'emmc', memorySource: 'sector-size' };
  return { memory: 'ufs', memorySource: 'default' };
}

/** qdl: the LUN holding xbl / xbl_a / sbl1 becomes the bootable storage drive. */
function findBootable(entries: ProgramEntry[], warnings: string[]): number | undefined {
  const luns = [...new Set(entries.filter((e) => /^(xbl|xbl_a|sbl1)$/i.test(e.label)).map((e) => e.lun))];
  if (luns.length > 1) warnings.push(`boot loader entries on several LUNs (${luns.join(', ')}); LUN ${luns[0]} will be made bootable`);
  return luns[0];
}

async function locateXml(inputs: string[]): Promise<{ imagesDir: string; xmlFiles: string[]; warnings: string[] }> {
  const warnings: string[] = [];
  const abs = inputs.map((p) => resolve(p));
  const kinds = await Promise.all(abs.map((p) => stat(p).then((s) => (s.isDirectory() ? 'dir' : 'file'), () => 'missing')));
  const missing = abs.filter((_, i) => kinds[i] === 'missing');
  if (missing.length > 0) throw new EdlInputError(`${missing.join(', ')}: no such file or folder`, { code: 'edl.input-missing' });
  if (kinds.every((k) => k === 'file')) return { imagesDir: dirname(abs[0]!), xmlFiles: abs, warnings };
  if (abs.length !== 1) throw new EdlInputError('pass either one ROM folder or a list of XML files', { code: 'edl.input' });
  let dir = abs[0]!;
  const images = join(dir, 'images');
  if (await stat(images).then((s) => s.isDirectory(), () => false)) dir = images;
  const names = await readdir(dir);
  const numbered = names
    .filter((n) => RAWPROGRAM.test(n))
    .sort((a, b) => Number(RAWPROGRAM.exec(a)![1]) - Number(RAWPROGRAM.exec(b)![1]));
  const unsparse = names.filter((n) => RAWPROGRAM_UNSPARSE.test(n)).sort();
  let raw = numbered;
  if (numbered.length === 0) raw = unsparse;
  else if (unsparse.length > 0) warnings.push(`${unsparse.join(', ')} ignored: ${numbered.join(', ')} describe the same partitions`);
  if (raw.length === 0) throw new EdlInputError(`no rawprogram*.xml in ${dir}`, { code: 'edl.no-rawprogram', hint: 'EDL flashing needs a ROM with rawprogram0.xml … (Xiaomi "fastboot" ROMs for Qualcomm carry them in images/)' });
  const patches = names.filter((n) => PATCH.test(n)).sort((a, b) => Number(PATCH.exec(a)![1]) - Number(PATCH.exec(b)![1]));
  return { imagesDir: dir, xmlFiles: [...raw, ...patches].map((n) => join(dir, n)), warnings };
}

async function readXml(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new EdlInputError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { code: 'edl.input-missing' });
  }
}
