// Turns rawprogram <program> entries into Firehose program commands with their
// data sources, before anything is sent: files must exist and fit, sparse
// images are validated (headers only) and expanded chunk by chunk as qdl does
// (RAW -> program from the file, FILL -> program of the repeated pattern,
// DONT_CARE -> skipped). Data is streamed from disk through a bounded buffer.
import { open, stat } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import { isSparseFile, readSparseFile } from '../sparse/file.js';
import { EdlInputError } from './errors.js';
import { evalExpr, usesDiskSize } from './expr.js';
import type { ProgramEntry } from './rawprogram-xml.js';

export type DataSource =
  | { kind: 'file'; path: string; offset: number; length: number }
  | { kind: 'fill'; value: number; length: number };

export interface ProgramCommand {
  lun: number;
  sectorSize: number;
  /** Verbatim from the XML for whole files; computed for sparse chunks. */
  startSector: string;
  sectors: number;
  filename: string;
  label: string;
  source: DataSource;
}

export interface PreparedProgram {
  entry: ProgramEntry;
  /** Absolute path of the image. */
  path: string;
  /** True when the file really is an Android sparse image (expanded on the fly). */
  sparse: boolean;
  /** Sectors the image covers on the LUN (sparse: expanded size). */
  sectors: number;
  /** Bytes that will travel (DONT_CARE ranges do not). */
  bytes: number;
  commands: ProgramCommand[];
  warnings: string[];
}

function where(e: ProgramEntry): string {
  return `${e.source}:${e.line}: <program label="${e.label}" filename="${e.filename}">`;
}

/** Resolve an entry's file against the XML's folder (or `imagesDir`). */
export function imagePath(entry: ProgramEntry, imagesDir?: string): string {
  return resolve(imagesDir ?? dirname(entry.source), entry.filename);
}

/** Validate one entry with a filename and compute its commands. Throws EdlInputError. */
export async function prepareProgram(entry: ProgramEntry, imagesDir?: string): Promise<PreparedProgram> {
  const path = imagePath(entry, imagesDir);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new EdlInputError(`${where(entry)}: image file ${path} is missing or unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      code: 'edl.file-missing',
      hint: 'extract the complete ROM package; every program entry with a filename needs its image',
    });
  }
  const warnings: string[] = [];
  if (entry.sparse && (await isSparseFile(path))) return prepareSparse(entry, path, warnings);
  if (entry.sparse) warnings.push(`${where(entry)}: sparse="true" but the file has no sparse header; flashing it as a raw image`);
  return prepareRaw(entry, path, size, warnings);
}

function prepareRaw(entry: ProgramEntry, path: string, size: number, warnings: string[]): PreparedProgram {
  const ss = entry.sectorSize;
  const offset = entry.fileSectorOffset * ss;
  if (offset > size) {
    throw new EdlInputError(`${where(entry)}: file_sector_offset ${entry.fileSectorOffset} (byte ${offset}) is past the end of ${path} (${size} bytes)`);
  }
  const length = size - offset;
  const sectors = Math.ceil(length / ss);
  if (entry.numPartitionSectors > 0 && sectors > entry.numPartitionSectors) {
    throw new EdlInputError(
      `${where(entry)}: ${path} needs ${sectors} sectors of ${ss} bytes (${length} bytes) but the partition has ${entry.numPartitionSectors}`,
      { code: 'edl.too-big', hint: 'the image does not belong to this ROM\'s partition layout' },
    );
  }
  if (sectors === 0) warnings.push(`${where(entry)}: ${path} is empty; nothing to write`);
  const commands: ProgramCommand[] =
    sectors === 0
      ? []
      : [{ lun: entry.lun, sectorSize: ss, startSector: entry.startSector, sectors, filename: entry.filename, label: entry.label, source: { kind: 'file', path, offset, length } }];
  return { entry, path, sparse: false, sectors, bytes: sectors * ss, commands, warnings };
}

async function prepareSparse(entry: ProgramEntry, path: string, warnings: string[]): Promise<PreparedProgram> {
  const ss = entry.sectorSize;
  if (usesDiskSize(entry.startSectorExpr)) {
    throw new EdlInputError(`${where(entry)}: a sparse image needs a numeric start_sector, found "${entry.startSector}"`);
  }
  const base = Number(evalExpr(entry.startSectorExpr));
  if (entry.fileSectorOffset !== 0) throw new EdlInputError(`${where(entry)}: file_sector_offset is not supported for sparse images`);
  const info = await readSparseFile(path);
  const blk = info.header.blockSize;
  const spanBytes = info.header.totalBlocks * blk;
  if (spanBytes % ss !== 0) {
    throw new EdlInputError(`${where(entry)}: sparse image expands to ${spanBytes} bytes, not a whole number of ${ss}-byte sectors`);
  }
  const sectors = spanBytes / ss;
  if (entry.numPartitionSectors > 0 && sectors > entry.numPartitionSectors) {
    throw new EdlInputError(
      `${where(entry)}: sparse image ${path} expands to ${sectors} sectors but the partition has ${entry.numPartitionSectors}`,
      { code: 'edl.too-big' },
    );
  }
  const commands: ProgramCommand[] = [];
  let bytes = 0;
  for (const c of info.chunks) {
    if (c.type === 'dont-care' || c.type === 'crc32') continue;
    const at = c.startBlock * blk;
    const length = c.blocks * blk;
    if (at % ss !== 0 || length % ss !== 0) {
      throw new EdlInputError(`${where(entry)}: sparse chunk ${c.index} (${length} bytes at byte ${at}) is not aligned to ${ss}-byte sectors`);
    }
    const source: DataSource = c.type === 'raw' ? { kind: 'file', path, offset: c.dataOffset, length } : { kind: 'fill', value: c.fill, length };
    commands.push({ lun: entry.lun, sectorSize: ss, startSector: String(base + at / ss), sectors: length / ss, filename: entry.filename, label: entry.label, source });
    bytes += length;
  }
  if (info.trailingBytes > 0) warnings.push(`${where(entry)}: ${info.trailingBytes} bytes after the last sparse chunk ignored`);
  return { entry, path, sparse: true, sectors, bytes, commands, warnings };
}

/** The bytes of a source, in pieces of at most `chunk` bytes. Memory: one buffer per piece. */
export async function* streamSource(src: DataSource, chunk = 1024 * 1024): AsyncGenerator<Uint8Array> {
  if (src.kind === 'fill') {
    const pattern = Buffer.alloc(4);
    pattern.writeUInt32LE(src.value >>> 0, 0);
    const block = Buffer.alloc(Math.min(chunk - (chunk % 4) || 4, src.length));
    for (let i = 0; i < block.length; i += 4) pattern.copy(block, i);
    for (let done = 0; done < src.length; done += block.length) yield block.subarray(0, Math.min(block.length, src.length - done));
    return;
  }
  const fh = await open(src.path, 'r');
  try {
    for (let done = 0; done < src.length; ) {
      const buf = Buffer.allocUnsafe(Math.min(chunk, src.length - done));
      const { bytesRead } = await fh.read(buf, 0, buf.length, src.offset + done);
      if (bytesRead === 0) throw new EdlInputError(`${src.path}: file shrank while flashing (ended at byte ${src.offset + done})`);
      done += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
