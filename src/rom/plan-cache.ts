// Plans parsed from flash scripts, remembered across runs: interpreting a
// vendor script costs far more than the rest of miflash's start-up, and a ROM
// is usually flashed with the same script many times. An entry is used only
// when everything the parse read is provably the same:
//  - the script text and every parse option that is data, compared in full (the
//    file name is a hash of them, never trusted alone); options added later join
//    the key by themselves, and an option that is a function other than the two
//    ROM readers below turns the cache off (its answers could not be checked);
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
  readRomText?: (file: string) => string | undefined;
  listRomFiles?: () => readonly string[];
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
  listing?: readonly string[];
  plan: unknown;
}

/**
 * `parse(text, options)` (a pure function of them and of what it reads through
 * the options' ROM readers), or the plan an earlier run got from the same text,
 * options and ROM reads.
 */
export function cachedParse<O extends RomReader>(text: string, options: O, parse: (text: string, options: O) => FlashPlan, opts: PlanCacheOptions = {}): FlashPlan {
  const sourceId = 'sourceId' in opts ? opts.sourceId : BUILD_SOURCE_ID;
  const data = dataOf(options);
  if (sourceId === undefined || data === undefined) return parse(text, options);
  const key = JSON.stringify({ sourceId, text, options: data });
  const dir = opts.dir ?? cacheDir();
  const file = join(dir, `plan-${hashName(key)}.json`);
  const hit = lookup(file, key, options);
  if (hit) return hit;
  // The parse, watched: what it reads becomes part of the entry.
  const texts: Record<string, string | null> = {};
  let listing: readonly string[] | undefined;
  const { readRomText, listRomFiles } = options;
  const watched: O = {
    ...options,
    readRomText: (f: string) => {
      const t = readRomText?.(f);
      texts[f] = t ?? null;
      return t;
    },
    ...(listRomFiles ? { listRomFiles: () => (listing = listRomFiles()) } : {}),
  };
  const plan = parse(text, watched);
  store(dir, file, { key, texts, ...(listing ? { listing } : {}), plan });
  return plan;
}

/**
 * The options but the ROM readers, as JSON with sorted keys (so the order they
 * were written in does not matter); undefined when some other option is code.
 */
function dataOf(options: object): string | undefined {
  let code = false;
  const json = JSON.stringify(options, (k, v: unknown) => {
    if (typeof v === 'function') {
      if (k !== 'readRomText' && k !== 'listRomFiles') code = true;
      return undefined;
    }
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return v;
  });
  return code ? undefined : json;
}

function lookup(file: string, key: string, rom: RomReader): FlashPlan | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(readFileSync(file, 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  if (typeof entry !== 'object' || entry === null || entry.key !== key || typeof entry.texts !== 'object' || entry.texts === null) return undefined;
  for (const [f, text] of Object.entries(entry.texts)) if ((rom.readRomText?.(f) ?? null) !== text) return undefined;
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
