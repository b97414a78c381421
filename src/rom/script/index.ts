// Flash script → typed plan. Pure: no file system, no device.
import { checksOf, productMatchWarnings } from '../../plan/checks.js';
import { toolBox } from './tools/index.js';
import { FlashPlanSchema, isDeviceOp, type FlashPlan, type PlanStep } from '../../plan/schema.js';
import { modeFromName } from './common.js';
import { planBatScript } from './bat/index.js';
import { planShScript } from './sh/index.js';
import type { ParseOptions } from './types.js';

export { modeFromName } from './common.js';
export { ScriptInterpretError } from './interp/engine.js';
export type { ParseOptions } from './types.js';

/** Interpret one flash script into a plan. Throws ScriptInterpretError (exit 2) naming file, line and construct for anything it does not interpret. */
export function parseScript(text: string, opts: ParseOptions): FlashPlan {
  const common = {
    file: opts.file,
    ...(opts.readRomText ? { readRomText: opts.readRomText } : {}),
    ...(opts.listRomFiles ? { listRomFiles: opts.listRomFiles } : {}),
    ...(opts.inputs ? { inputs: opts.inputs } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
  };
  const parsed =
    opts.dialect === 'sh'
      ? planShScript(text, common)
      : planBatScript(text, { ...common, ...(opts.folderName !== undefined ? { folderName: opts.folderName } : {}) });
  const mode = modeFromName(opts.file);
  const warnings = [...parsed.warnings, ...productMatchWarnings(parsed.steps, parsed.shell, toolBox)];
  if (mode === 'keep-data') {
    const touches = parsed.steps.filter(touchesUserData);
    for (const s of touches) warnings.push(`line ${s.line}: a keep-data script touches user data (${describe(s)})`);
  }
  if ((mode === 'lock' || mode === 'lock-crc') && !parsed.steps.some((s) => s.kind === 'lock')) {
    warnings.push('a lock script without a lock step');
  }
  const plan: FlashPlan = {
    version: 1,
    source: { script: opts.file, dialect: opts.dialect, ...(parsed.shell ? { shell: parsed.shell } : {}), mode, family: parsed.family },
    warnings,
    steps: hoistAndroidInfo(parsed.steps),
  };
  return FlashPlanSchema.parse(plan);
}

/**
 * fastboot checks an update zip's android-info.txt only when it reaches the
 * update; miflash checks it with the other gates, before the first write.
 */
function hoistAndroidInfo(steps: PlanStep[]): PlanStep[] {
  const gates = steps.filter((s) => s.kind === 'gate.android-info');
  if (gates.length === 0) return steps;
  const rest = steps.filter((s) => s.kind !== 'gate.android-info');
  const at = rest.findIndex(isDeviceOp);
  const i = at === -1 ? rest.length : at;
  return [...rest.slice(0, i), ...gates, ...rest.slice(i)];
}

export function touchesUserData(s: PlanStep): boolean {
  if (s.kind === 'wipe') return true;
  if (s.kind === 'update') return s.wipe;
  if (s.kind === 'flash' || s.kind === 'erase' || s.kind === 'format') return /^userdata(_[ab])?$/.test(s.partition);
  return false;
}

function describe(s: PlanStep): string {
  return 'partition' in s ? `${s.kind} ${s.partition}` : s.kind;
}

/** What identifies a device operation for twin comparison (not its failure policy or line). */
export function opSignature(s: PlanStep): string {
  // Conditions are compared by what they mean at run time, not how each dialect spells them.
  const { line: _l, onFailure: _o, message: _m, vendorUnchecked: _v, when: _w, condition: _c, ...rest } = s;
  void _l;
  void _o;
  void _m;
  void _v;
  void _w;
  void _c;
  return JSON.stringify(rest);
}

/**
 * Merge the .sh/.bat twin into `primary`: when both scripts perform the same
 * device operations, each op takes the stricter failure policy (abort beats
 * ignore; a vendor check beats none). Gates of a kind the primary lacks are
 * added from the twin. Returns warnings when the twins disagree.
 */
export function mergeTwin(primary: FlashPlan, twin: FlashPlan): FlashPlan {
  const a = primary.steps.filter(isDeviceOp);
  const b = twin.steps.filter(isDeviceOp);
  const warnings = [...primary.warnings];
  const same = a.length === b.length && a.every((s, i) => opSignature(s) === opSignature(b[i]!));
  if (!same) {
    warnings.push(`${twin.source.script} performs different device operations than ${primary.source.script}; using ${primary.source.script} alone`);
    return { ...primary, warnings };
  }
  const steps = primary.steps.map((s) => ({ ...s }) as PlanStep);
  const ops = steps.filter(isDeviceOp);
  ops.forEach((s, i) => {
    const t = b[i]!;
    if (s.onFailure === 'ignore' && t.onFailure === 'abort') s.onFailure = 'abort';
    if (s.vendorUnchecked && !t.vendorUnchecked) {
      delete s.vendorUnchecked;
      if (s.message === undefined && t.message !== undefined) s.message = t.message;
    }
  });
  // A twin's check of something the primary does not check is added (legacy gates carry no query references).
  const checked = new Set(steps.flatMap((s) => (s.onFailure === 'abort' ? checksOf(s, steps) : [])));
  const extra = twin.steps.filter((s) => {
    if (!s.kind.startsWith('gate.') || s.onFailure !== 'abort' || s.when) return false;
    const labels = checksOf(s, twin.steps);
    return labels.length > 0 && labels.some((l) => !checked.has(l));
  });
  for (const g of extra) warnings.push(`gate ${g.kind} comes from ${twin.source.script} line ${g.line}`);
  const firstOp = steps.findIndex(isDeviceOp);
  const at = firstOp === -1 ? steps.length : firstOp;
  const merged = [...steps.slice(0, at), ...extra.map((g) => ({ ...g, line: 0 }) as PlanStep), ...steps.slice(at)];
  return FlashPlanSchema.parse({ ...primary, source: { ...primary.source, twin: twin.source.script }, warnings, steps: merged });
}
