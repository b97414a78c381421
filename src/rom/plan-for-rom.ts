// ROM + mode (or an explicit script) → one validated plan: picks the script,
// merges its .sh/.bat twin (stricter failure policy wins), resolves host-side
// conditions (`if exist`), fills the package anti version and android-info
// requirements, and adds a misc.txt product gate when the script has no blocking one.
import { closeSync, fstatSync, openSync, readdirSync, readSync, realpathSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { BadInputError } from '../errors.js';
import { checksOf, checksProduct } from '../plan/checks.js';
import { lit, type Pred } from '../plan/predicate.js';
import { FlashPlanSchema, isDeviceOp, type FlashPlan, type PlanStep } from '../plan/schema.js';
import { cachedParse } from './plan-cache.js';
import { readAndroidInfoFromZip, type Rom, type RomScript } from './rom.js';
import { mergeTwin, parseScript, touchesUserData } from './script/index.js';

export type RomMode = 'clean' | 'keep-data' | 'lock';

/** MiFlash's three modes → script variants, newest name first (§9). */
export const MODE_VARIANTS: Record<RomMode, string[]> = {
  clean: ['flash_all', 'flash-all'],
  'keep-data': ['flash_all_except_storage', 'flash_all_except_data_storage', 'flash_all_except_data'],
  lock: ['flash_all_lock'],
};

export interface PlanForRomOptions {
  mode?: RomMode;
  /** A script by name (`flash_all.bat`) or path; overrides mode. */
  script?: string;
  /** Lines for the script's `read` (`--input`); none = end of input. */
  inputs?: readonly string[];
}

export function selectScript(rom: Rom, opts: PlanForRomOptions): RomScript {
  if (opts.script !== undefined) {
    const want = opts.script;
    const exact = rom.scripts.find((s) => s.name === want) ?? rom.scripts.find((s) => s.name === basename(want));
    if (exact) return exact;
    throw new BadInputError(`script ${want} is not in ${rom.root} (available: ${names(rom)})`, { code: 'rom.no-script' });
  }
  const mode = opts.mode ?? 'clean';
  for (const variant of MODE_VARIANTS[mode]) {
    const found = rom.scripts.filter((s) => s.variant === variant);
    const pick = found.find((s) => s.dialect === 'sh') ?? found[0];
    if (pick) return pick;
  }
  throw new BadInputError(`this ROM has no script for mode ${mode} (${MODE_VARIANTS[mode].join(' / ')}); available: ${names(rom)}`, {
    code: 'rom.no-script',
    hint: 'pick another --mode or a script with --script',
  });
}

function names(rom: Rom): string {
  return rom.scripts.length === 0 ? 'none' : rom.scripts.map((s) => s.name).join(', ');
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function parseFile(rom: Rom, s: RomScript, inputs?: readonly string[]): Promise<FlashPlan> {
  const text = await readFile(s.path, 'utf8');
  let files: string[] | undefined;
  // Remembered across runs (plan-cache.ts): every option and every ROM read is part of the key.
  return cachedParse(
    text,
    {
      ...(inputs ? { inputs } : {}),
      listRomFiles: () => (files ??= listFiles(rom.root)),
      file: s.name,
      dialect: s.dialect,
      folderName: basename(rom.root),
      readRomText: (file: string) => readSmallText(rom.root, file),
    },
    parseScript,
  );
}

/** Every regular file under the ROM root (ROM-relative, '/'-separated), bounded; symlinks are not followed. */
function listFiles(root: string, max = 20_000): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (out.length >= max) return;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(dir, e.name), r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk(root, '');
  return out.sort();
}

/** A side-car text file a gate compares against (e.g. images/security_patch_level.txt); undefined when missing or not a regular file. */
function readSmallText(root: string, file: string): string | undefined {
  // The parser only passes paths it resolved inside the ROM (no `..`, not absolute);
  // a symlink inside the ROM pointing elsewhere is treated as missing.
  let fd: number;
  try {
    const rel = relative(realpathSync(root), realpathSync(join(root, file)));
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
    fd = openSync(join(root, file), 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    // A value file is one short line; a larger one is read only far enough to be shown as invalid.
    const buf = Buffer.alloc(Math.min(st.size, 4096));
    readSync(fd, buf, 0, buf.length, 0);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export async function planForRom(rom: Rom, opts: PlanForRomOptions = {}): Promise<FlashPlan> {
  const script = selectScript(rom, opts);
  let plan = await parseFile(rom, script, opts.inputs);
  // --script overrides the mode: a keep-data (or lock) request must not silently run another kind of script.
  // 'clean' is the CLI default, so it cannot be told apart from "no --mode".
  const wanted = opts.mode;
  if (opts.script !== undefined && wanted !== undefined && wanted !== 'clean' && plan.source.mode !== wanted && !(wanted === 'lock' && plan.source.mode === 'lock-crc')) {
    throw new BadInputError(`${script.name} is a '${plan.source.mode}' script but --mode ${wanted} was given`, {
      code: 'input.mode',
      hint: `drop --script to use the ${wanted} script, or drop --mode to run ${script.name}; nothing has been sent to a device`,
    });
  }
  const twin = rom.scripts.find((s) => s.variant === script.variant && s.dialect !== script.dialect);
  if (twin) {
    try {
      plan = mergeTwin(plan, await parseFile(rom, twin, opts.inputs));
    } catch (err) {
      plan = { ...plan, warnings: [...plan.warnings, `twin ${twin.name} not merged: ${(err as Error).message}`] };
    }
  }
  const steps: PlanStep[] = [];
  for (const s of plan.steps) {
    const c = s.condition;
    if (c?.kind === 'file-exists' || c?.kind === 'file-missing') {
      const there = await exists(join(rom.root, c.file));
      if (there !== (c.kind === 'file-exists')) continue; // branch not taken
    }
    if (s.kind === 'gate.android-info') {
      const zip = join(rom.root, s.file);
      const info = (await exists(zip)) ? await readAndroidInfoFromZip(zip) : undefined;
      if (info) {
        for (const k of info.skipped) plan.warnings.push(`${s.file}/android-info.txt line ${k.line} ignored: ${k.text}`);
        steps.push({ ...s, requirements: info.requirements });
        continue;
      }
    }
    steps.push(s);
  }
  if (script.mode === 'keep-data') {
    const bad = steps.find(touchesUserData);
    if (bad) {
      throw new BadInputError(`${script.name} is a keep-data script but line ${bad.line} erases user data (${bad.kind})`, {
        code: 'plan.keep-data-violation',
      });
    }
  }
  const device = rom.misc?.device;
  // A product check the script ignores (only reported) does not protect the device either.
  if (device && !checksProduct(steps) && /^[A-Za-z0-9_-]+$/.test(device)) {
    const has = steps.some((s) => checksOf(s, steps).includes('product'));
    plan.warnings.push(`the script has no ${has ? 'blocking ' : ''}product check; miflash checks misc.txt device=${device}`);
    const firstOp = steps.findIndex(isDeviceOp);
    const ids = steps.flatMap((s) => (s.kind === 'query' ? [Number(s.id.slice(1))] : []));
    const id = `q${Math.max(0, ...ids) + 1}`;
    const query: PlanStep = { kind: 'query', line: 0, onFailure: 'abort', id, query: { kind: 'getvar', name: 'product' } };
    // The script's own words: `fastboot getvar product 2>&1 | grep -q "^product: *DEVICE$"` or stop.
    const matches: Pred = {
      kind: 'zero',
      term: { kind: 'tool', argv: [lit('grep'), lit('-q'), lit(`^product: *${device}$`)], stdin: { kind: 'output', query: id, stream: 'both' }, result: 'status' },
    };
    const gate: PlanStep = { kind: 'exit', line: 0, onFailure: 'abort', status: 1, message: `this ROM is for ${device} (misc.txt)`, when: { kind: 'not', of: matches } };
    steps.splice(firstOp === -1 ? steps.length : firstOp, 0, query, gate);
  }
  const rel = relative(rom.root, script.path);
  return FlashPlanSchema.parse({
    ...plan,
    source: { ...plan.source, script: isAbsolute(rel) ? script.path : rel, rom: rom.root },
    ...(rom.misc ? { product: { ...(rom.misc.device ? { device: rom.misc.device } : {}), ...(rom.misc.build_number ? { build: rom.misc.build_number } : {}) } } : {}),
    steps,
  });
}
