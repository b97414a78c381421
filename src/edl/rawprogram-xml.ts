// Reader for Qualcomm rawprogram*.xml (<data><program/><erase/></data>) and
// patch*.xml (<patches><patch/></patches>). Every attribute is validated with
// zod; expressions go through the safe grammar in expr.ts. Errors name the
// file, line, element and attribute, with the value found.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from '../zod.js';
import { EdlInputError } from './errors.js';
import { parseExpr, parsePatchValue, type Expr, type PatchValue } from './expr.js';

interface Located {
  /** File the entry came from (as given to the reader). */
  source: string;
  /** 1-based line of the element. */
  line: number;
  /** Every attribute, verbatim. */
  attributes: Record<string, string>;
}

export interface ProgramEntry extends Located {
  kind: 'program';
  sectorSize: number;
  fileSectorOffset: number;
  /** '' = nothing to write (the partition keeps its content). */
  filename: string;
  label: string;
  /** 0 = grows to the end of the LUN. */
  numPartitionSectors: number;
  lun: number;
  /** Verbatim, sent to the device unchanged (may be an expression). */
  startSector: string;
  startSectorExpr: Expr;
  sparse: boolean;
  readbackVerify: boolean;
  partOfSingleImage: boolean;
  sizeInKB?: number;
  startByteHex?: string;
}

export interface EraseEntry extends Located {
  kind: 'erase';
  sectorSize: number;
  lun: number;
  startSector: string;
  startSectorExpr: Expr;
  numPartitionSectors: number;
  label?: string;
}

export interface PatchEntry extends Located {
  sectorSize: number;
  byteOffset: number;
  /** "DISK" = apply on the device; anything else patches a host file and is never sent. */
  filename: string;
  lun: number;
  sizeInBytes: number;
  startSector: string;
  startSectorExpr: Expr;
  value: string;
  valueParsed: PatchValue;
  what?: string;
}

export type EdlXml =
  | { type: 'rawprogram'; source: string; entries: (ProgramEntry | EraseEntry)[]; warnings: string[] }
  | { type: 'patch'; source: string; patches: PatchEntry[]; warnings: string[] };

// --- attribute schemas -------------------------------------------------------

const uint = z
  .string()
  .regex(/^\s*(\d+|0[xX][0-9a-fA-F]+)\s*$/, 'expected an unsigned integer')
  .transform((s) => Number(s.trim()))
  .refine((n) => Number.isSafeInteger(n), 'number too large');
const sectorSize = uint.refine((n) => n >= 512 && n <= 65536 && (n & (n - 1)) === 0, 'expected a power of two from 512 to 65536');
const bool = z
  .string()
  .regex(/^\s*(true|false|0|1)\s*$/i, 'expected "true" or "false"')
  .transform((s) => /^(true|1)$/i.test(s.trim()));
const decimal = z.string().regex(/^\s*\d+(\.\d+)?\s*$/, 'expected a decimal number').transform((s) => Number(s));
const expr = z.string().transform((s, ctx) => {
  try {
    return parseExpr(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
const patchValue = z.string().transform((s, ctx) => {
  try {
    return parsePatchValue(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const programSchema = z.object({
  SECTOR_SIZE_IN_BYTES: sectorSize,
  file_sector_offset: uint.optional(),
  filename: z.string(),
  label: z.string(),
  num_partition_sectors: uint,
  physical_partition_number: uint,
  start_sector: expr,
  sparse: bool.optional(),
  partofsingleimage: bool.optional(),
  readbackverify: bool.optional(),
  size_in_KB: decimal.optional(),
  start_byte_hex: expr.optional(),
  PAGES_PER_BLOCK: uint.optional(),
  last_sector: uint.optional(),
  slot: uint.optional(),
});

const eraseSchema = z.object({
  SECTOR_SIZE_IN_BYTES: sectorSize,
  num_partition_sectors: uint.refine((n) => n > 0, 'an <erase> must name a non-zero number of sectors'),
  physical_partition_number: uint,
  start_sector: expr,
  label: z.string().optional(),
  PAGES_PER_BLOCK: uint.optional(),
});

const patchSchema = z.object({
  SECTOR_SIZE_IN_BYTES: sectorSize,
  byte_offset: uint,
  filename: z.string(),
  physical_partition_number: uint,
  size_in_bytes: uint.refine((n) => n >= 1 && n <= 8, 'expected 1 to 8 bytes'),
  start_sector: expr,
  value: patchValue,
  what: z.string().optional(),
});

const KNOWN = {
  program: new Set(Object.keys(programSchema.shape)),
  erase: new Set(Object.keys(eraseSchema.shape)),
  patch: new Set(Object.keys(patchSchema.shape)),
};

// --- reader --------------------------------------------------------------------

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
});

/** Parse one rawprogram/patch XML document. `source` names it in errors. Throws EdlInputError. */
export function parseEdlXml(text: string, source: string): EdlXml {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new EdlInputError(`${source}:${valid.err.line}: malformed XML: ${valid.err.msg}`, {
      code: 'edl.xml',
      hint: 'the file is not well-formed XML; re-extract it from the ROM package',
    });
  }
  const nodes = parser.parse(text) as OrderedNode[];
  const roots = nodes.filter((n) => !('?xml' in n) && !('#text' in n));
  if (roots.length !== 1) throw new EdlInputError(`${source}: expected one root element, found ${roots.length}`, { code: 'edl.xml' });
  const root = roots[0]!;
  const rootName = tagOf(root);
  const children = ((root[rootName] as OrderedNode[]) ?? []).filter((n) => !('#text' in n));
  const lines = elementLines(text);
  const warnings: string[] = [];
  const counters = new Map<string, number>();
  const locate = (tag: string): number => {
    const i = counters.get(tag) ?? 0;
    counters.set(tag, i + 1);
    return lines.get(tag)?.[i] ?? 0;
  };

  const tags = new Set(children.map(tagOf));
  if (rootName === 'patches' || (rootName === 'data' && tags.size === 1 && tags.has('patch'))) {
    const patches = children.map((child) => {
      const tag = tagOf(child);
      const line = locate(tag);
      if (tag !== 'patch') throw unexpectedTag(source, line, tag, 'a patch file holds only <patch> elements');
      return readPatch(child[':@'] ?? {}, source, line, warnings);
    });
    return { type: 'patch', source, patches, warnings };
  }
  if (rootName !== 'data') {
    throw new EdlInputError(`${source}: root element <${rootName}> is neither <data> (rawprogram) nor <patches> (patch)`, { code: 'edl.xml' });
  }
  if (tags.has('ufs')) {
    throw new EdlInputError(`${source}: this is a UFS provisioning file (<ufs>); miflash refuses to provision storage (irreversible)`, {
      code: 'edl.provisioning',
    });
  }
  const entries = children.map((child) => {
    const tag = tagOf(child);
    const line = locate(tag);
    const attrs = child[':@'] ?? {};
    if (tag === 'program') return readProgram(attrs, source, line, warnings);
    if (tag === 'erase') return readErase(attrs, source, line, warnings);
    throw unexpectedTag(source, line, tag, 'a rawprogram file holds only <program> and <erase> elements');
  });
  return { type: 'rawprogram', source, entries, warnings };
}

function readProgram(attrs: Record<string, string>, source: string, line: number, warnings: string[]): ProgramEntry {
  const a = validate(programSchema, attrs, 'program', source, line, warnings);
  return {
    kind: 'program',
    source,
    line,
    attributes: attrs,
    sectorSize: a.SECTOR_SIZE_IN_BYTES,
    fileSectorOffset: a.file_sector_offset ?? 0,
    filename: a.filename.trim(),
    label: a.label,
    numPartitionSectors: a.num_partition_sectors,
    lun: a.physical_partition_number,
    startSector: attrs.start_sector!.trim(),
    startSectorExpr: a.start_sector,
    sparse: a.sparse ?? false,
    readbackVerify: a.readbackverify ?? false,
    partOfSingleImage: a.partofsingleimage ?? false,
    sizeInKB: a.size_in_KB,
    startByteHex: attrs.start_byte_hex,
  };
}

function readErase(attrs: Record<string, string>, source: string, line: number, warnings: string[]): EraseEntry {
  const a = validate(eraseSchema, attrs, 'erase', source, line, warnings);
  return {
    kind: 'erase',
    source,
    line,
    attributes: attrs,
    sectorSize: a.SECTOR_SIZE_IN_BYTES,
    lun: a.physical_partition_number,
    startSector: attrs.start_sector!.trim(),
    startSectorExpr: a.start_sector,
    numPartitionSectors: a.num_partition_sectors,
    label: a.label,
  };
}

function readPatch(attrs: Record<string, string>, source: string, line: number, warnings: string[]): PatchEntry {
  const a = validate(patchSchema, attrs, 'patch', source, line, warnings);
  return {
    source,
    line,
    attributes: attrs,
    sectorSize: a.SECTOR_SIZE_IN_BYTES,
    byteOffset: a.byte_offset,
    filename: a.filename,
    lun: a.physical_partition_number,
    sizeInBytes: a.size_in_bytes,
    startSector: attrs.start_sector!.trim(),
    startSectorExpr: a.start_sector,
    value: attrs.value!.trim(),
    valueParsed: a.value,
    what: a.what,
  };
}

function validate<S extends z.ZodType>(
  schema: S,
  attrs: Record<string, string>,
  tag: keyof typeof KNOWN,
  source: string,
  line: number,
  warnings: string[],
): z.output<S> {
  const r = schema.safeParse(attrs);
  const name = attrs.label ? ` label="${attrs.label}"` : '';
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const attr = String(issue.path[0] ?? '?');
    const found = attrs[attr];
    const detail = found === undefined ? `required attribute ${attr} is missing` : `attribute ${attr}="${found}": ${issue.message}`;
    throw new EdlInputError(`${source}:${line}: <${tag}${name}>: ${detail}`, { code: 'edl.xml.attribute' });
  }
  for (const key of Object.keys(attrs)) {
    if (!KNOWN[tag].has(key)) warnings.push(`${source}:${line}: <${tag}${name}>: unknown attribute ${key}="${attrs[key]}" ignored`);
  }
  return r.data;
}

function unexpectedTag(source: string, line: number, tag: string, why: string): EdlInputError {
  return new EdlInputError(`${source}:${line}: unexpected element <${tag}>: ${why}`, { code: 'edl.xml' });
}

function tagOf(node: OrderedNode): string {
  return Object.keys(node).find((k) => k !== ':@')!;
}

/** Line numbers of every element start, by tag name, in document order (comments blanked out first). */
function elementLines(text: string): Map<string, number[]> {
  const blanked = text.replace(/<!--[\s\S]*?-->/g, (m) => m.replace(/[^\n]/g, ' '));
  const out = new Map<string, number[]>();
  const re = /<([A-Za-z_][\w.-]*)/g;
  let line = 1;
  let last = 0;
  for (let m = re.exec(blanked); m; m = re.exec(blanked)) {
    for (let i = last; i < m.index; i++) if (blanked.charCodeAt(i) === 10) line++;
    last = m.index;
    const list = out.get(m[1]!) ?? [];
    list.push(line);
    out.set(m[1]!, list);
  }
  return out;
}
