// Finding the Firehose programmer in a Xiaomi ROM's images/ folder: the
// multi-image list (qsahara_device_programmer.xml: <sahara_config><images>
// <image image_id=.. image_path=../>) for the newest SoCs, else a single
// programmer file (prog_*firehose*, MPRG*, *devprg*; .mbn/.elf/.melf/.bin).
// The memory type comes from --memory, else the programmer's name (MiFlash's
// rule: "ufs" -> UFS, "emmc" -> eMMC), else the rawprogram sector size.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from '../zod.js';
import { EdlInputError } from './errors.js';
import type { MemoryType } from './firehose.js';
import { FIREHOSE_IMAGE_ID } from './sahara-packets.js';
import type { SaharaImage } from './sahara.js';

export interface ProgrammerSet {
  /** 'single' = one programmer (image 13); 'multi' = list file with several images. */
  kind: 'single' | 'multi';
  /** The list file, for 'multi'. */
  listFile?: string;
  /** The Firehose programmer's path (image 13), for naming. */
  main: string;
  images: { id: number; path: string }[];
  /** Other candidates that were not chosen. */
  alternatives: string[];
}

const PROGRAMMER_NAME = /^(prog_.*firehose.*|.*firehose.*\.(mbn|elf|melf|bin|hex)|mprg.*\.(hex|mbn)|.*devprg.*\.(mbn|elf|melf|bin))$/i;
const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

const saharaConfigSchema = z.object({
  sahara_config: z.object({
    images: z.object({
      image: z.array(
        z.object({
          image_id: z.string().regex(/^\d+$/, 'image_id must be a number').transform(Number).refine((n) => n >= 1 && n <= 127, 'image_id must be 1..127'),
          image_path: z.string().min(1, 'image_path is empty'),
        }),
      ),
    }),
  }),
});

/** Parse a Sahara multi-image list; paths are resolved against the list's folder. */
export function parseSaharaConfig(text: string, source: string): { id: number; path: string }[] {
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new EdlInputError(`${source}:${valid.err.line}: malformed XML: ${valid.err.msg}`, { code: 'edl.xml' });
  const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', parseAttributeValue: false, isArray: (name) => name === 'image' }).parse(text);
  const r = saharaConfigSchema.safeParse(parsed);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new EdlInputError(`${source}: not a Sahara image list (${i.path.join('/')}: ${i.message})`, { code: 'edl.xml' });
  }
  const seen = new Set<number>();
  return r.data.sahara_config.images.image.map((img) => {
    if (seen.has(img.image_id)) throw new EdlInputError(`${source}: image_id ${img.image_id} is listed twice`, { code: 'edl.xml' });
    seen.add(img.image_id);
    return { id: img.image_id, path: resolve(dirname(source), img.image_path) };
  });
}

/** MiFlash's rule on the programmer's file name. */
export function memoryFromName(name: string): MemoryType | undefined {
  const n = basename(name).toLowerCase();
  if (n.includes('ufs')) return 'ufs';
  if (n.includes('emmc')) return 'emmc';
  return undefined;
}

/** Use an explicit --programmer: a list file (.xml) or a single programmer. */
export async function programmerFromPath(path: string): Promise<ProgrammerSet> {
  const abs = resolve(path);
  if (abs.toLowerCase().endsWith('.xml')) {
    const images = parseSaharaConfig(await readText(abs), abs);
    return { kind: 'multi', listFile: abs, main: mainOf(images, abs), images, alternatives: [] };
  }
  await mustExist(abs, 'programmer');
  return { kind: 'single', main: abs, images: [{ id: FIREHOSE_IMAGE_ID, path: abs }], alternatives: [] };
}

/** Look in `dir` for a multi-image list, else a programmer file. undefined when there is none. */
export async function discoverProgrammer(dir: string, prefer?: MemoryType): Promise<ProgrammerSet | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return undefined;
  }
  for (const name of names.filter((n) => n.toLowerCase().endsWith('.xml'))) {
    const p = join(dir, name);
    const st = await stat(p);
    if (st.size > 256 * 1024) continue;
    const text = await readFile(p, 'utf8');
    if (!/<sahara_config[\s>]/.test(text)) continue;
    const images = parseSaharaConfig(text, p);
    return { kind: 'multi', listFile: p, main: mainOf(images, p), images, alternatives: [] };
  }
  const candidates = names.filter((n) => PROGRAMMER_NAME.test(n));
  if (candidates.length === 0) return undefined;
  const score = (n: string): number => {
    const l = n.toLowerCase();
    let s = 0;
    if (prefer && memoryFromName(l) === prefer) s += 4;
    if (prefer && memoryFromName(l) !== undefined && memoryFromName(l) !== prefer) s -= 8;
    if (l.startsWith('prog_')) s += 2;
    if (l.includes('ddr')) s += 1;
    if (l.includes('lite')) s -= 1;
    return s;
  };
  const ranked = [...candidates].sort((a, b) => score(b) - score(a) || a.localeCompare(b));
  const main = join(dir, ranked[0]!);
  return { kind: 'single', main, images: [{ id: FIREHOSE_IMAGE_ID, path: main }], alternatives: ranked.slice(1).map((n) => join(dir, n)) };
}

function mainOf(images: { id: number; path: string }[], source: string): string {
  const main = images.find((i) => i.id === FIREHOSE_IMAGE_ID);
  if (!main) throw new EdlInputError(`${source}: the image list has no image_id 13 (the Firehose programmer)`, { code: 'edl.xml' });
  return main.path;
}

/** Read every image of the set (programmers are small). Throws EdlInputError naming a missing file. */
export async function loadSaharaImages(set: ProgrammerSet): Promise<Map<number, SaharaImage>> {
  const out = new Map<number, SaharaImage>();
  for (const img of set.images) {
    await mustExist(img.path, `Sahara image ${img.id}${set.listFile ? ` (listed in ${set.listFile})` : ''}`);
    const st = await stat(img.path);
    if (st.size > MAX_IMAGE_BYTES) throw new EdlInputError(`${img.path}: ${st.size} bytes is too large for a Sahara image`);
    out.set(img.id, { id: img.id, name: basename(img.path), data: await readFile(img.path) });
  }
  return out;
}

/** Programmers are ELF files; some Xiaomi ones have an altered magic, so this only warns. */
export function programmerWarnings(images: Map<number, SaharaImage>): string[] {
  const out: string[] = [];
  for (const img of images.values()) {
    const d = img.data;
    if (d.length < 4 || d[0] !== 0x7f || d[1] !== 0x45 || d[2] !== 0x4c || d[3] !== 0x46) {
      out.push(`${img.name}: does not start with the ELF magic; the boot ROM may refuse it`);
    }
  }
  return out;
}

async function mustExist(path: string, what: string): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a file');
  } catch {
    throw new EdlInputError(`${what} ${path} is missing`, { code: 'edl.programmer-missing', hint: 'pass --programmer FILE or use a complete ROM package' });
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new EdlInputError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { code: 'edl.programmer-missing' });
  }
}
