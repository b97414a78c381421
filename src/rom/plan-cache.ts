// Plans parsed from flash scripts, remembered across runs: interpreting a
// vendor script costs far more than the rest of miflash's start-up, and a ROM
// is usually flashed with the same script many times. An entry is used only
// when everything the parse read is provably the same:
//  - the script text and every parse option, compared in full (the file name is
//    a hash of them, never trusted alone);
//  - every ROM file the parse read (the content it saw, or that it was missing)
//    and, if it listed the ROM's files, the listing; both read again and compared;
//  - the parser's own code (the build's source id; without one, no caching).
// The plan read back is validated by the plan schema like any outside input.
// Stored as one JSON file per plan in the miflash cache folder (digest-cache.ts);
// any failure to read or write only costs a parse.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlashPlanSchema, type FlashPlan } from '../plan/schema.js';
import { cacheDir } from './cache-dir.js';

/** What a parse may read from the ROM besides the script (rom/script/types.ts ParseOptions). */
export interface RomReader {
  readRomText(file: string): string | undefined;
  listRomFiles?(): string[];
}

export interface PlanCacheOptions {
  /** Identifies the parser's code; undefined turns the cache off. Default: the bundle's source id. */
  sourceId?: string;
  /** Default: the miflash cache folder. */
  dir?: string;
}

/** Plan files kept (the oldest go first). */
const MAX_PLANS = 64;

declare const __MIFLASH_SOURCE_ID__: string | undefined;
/** Set by scripts/bundle.js (a hash of src/ and the dependencies); absent when running tsc's output or tests. */
const BUILD_SOURCE_ID = typeof __MIFLASH_SOURCE_ID__ === 'string' ? __MIFLASH_SOURCE_ID__ : undefined;

interface Entry {
  key: string;
  texts: Record<string, string | null>;
  listing?: string[];
  plan: unknown;
}

/**
 * `parse(rom)` (a pure function of `inputs` and what it reads through `rom`),
 * or the plan an earlier run got from the same inputs and the same ROM reads.
 */
export function cachedParse(inputs: unknown, rom: RomReader, parse: (rom: RomReader) => FlashPlan, opts: PlanCacheOptions = {}): FlashPlan {
  const sourceId = 'sourceId' in opts ? opts.sourceId : BUILD_SOURCE_ID;
  if (sourceId === undefined) return parse(rom);
  const key = JSON.stringify({ sourceId, inputs });
  const dir = opts.dir ?? cacheDir();
  const file = join(dir, `plan-${hashName(key)}.json`);
  const hit = lookup(file, key, rom);
  if (hit) return hit;
  // The parse, watched: what it reads becomes part of the entry.
  const texts: Record<string, string | null> = {};
  let listing: string[] | undefined;
  const watched: RomReader = {
    readRomText: (f) => {
      const t = rom.readRomText(f);
      texts[f] = t ?? null;
      return t;
    },
    ...(rom.listRomFiles ? { listRomFiles: () => (listing = rom.listRomFiles!()) } : {}),
  };
  const plan = parse(watched);
  store(dir, file, { key, texts, ...(listing ? { listing } : {}), plan });
  return plan;
}

function lookup(file: string, key: string, rom: RomReader): FlashPlan | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(readFileSync(file, 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  if (typeof entry !== 'object' || entry === null || entry.key !== key || typeof entry.texts !== 'object' || entry.texts === null) return undefined;
  for (const [f, text] of Object.entries(entry.texts)) if ((rom.readRomText(f) ?? null) !== text) return undefined;
  if (entry.listing !== undefined) {
    const now = rom.listRomFiles?.();
    if (!now || !Array.isArray(entry.listing) || now.length !== entry.listing.length || now.some((f, i) => f !== entry.listing![i])) return undefined;
  }
  const parsed = FlashPlanSchema.safeParse(entry.plan);
  return parsed.success ? parsed.data : undefined;
}

function store(dir: string, file: string, entry: Entry): void {
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry));
    renameSync(tmp, file);
    const plans = readdirSync(dir).filter((f) => /^plan-[0-9a-f]+\.json$/.test(f));
    if (plans.length > MAX_PLANS) {
      const byAge = plans.map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs })).sort((a, b) => a.t - b.t);
      for (const { f } of byAge.slice(0, plans.length - MAX_PLANS)) rmSync(join(dir, f), { force: true });
    }
  } catch {
    // A read-only home or a full disk: the next run parses again.
  }
}

/** Two 32-bit FNV-1a lanes of the key, in hex: a file name only (the entry holds the key itself, compared in full). */
function hashName(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}
