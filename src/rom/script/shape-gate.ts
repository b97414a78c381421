// Gates recognised by shape (flash-script-grammar.md S10/S11/B9–B11 and §6):
// a value read from the device with `getvar`, a package value (a literal or an
// images/ text file), an optional default for each, and a comparison that
// exits. The shape is dialect-neutral here; sh.ts and bat.ts fill it in. What
// the comparison means is decided by the getvar name and the comparison's
// direction: anti-rollback, hardware revision and security patch level are
// typed gates; anything else is a blocking gate.unknown that says why.
import type { PlanStep, StepCondition } from '../../plan/schema.js';
import type { SourceLine } from './common.js';
import type { ParseOptions } from './types.js';

export type CmpOp = 'gt' | 'lt' | 'ge' | 'le' | 'eq' | 'ne';

/** A variable filled from `fastboot getvar VAR` output. */
export interface DeviceRead {
  name: string;
  getvar: string;
  /** The extraction yields VAR's value ('value'), or miflash cannot tell what it yields ('unknown'). */
  extract: 'value' | 'unknown';
  /** The extraction as written, for messages. */
  how: string;
  line: SourceLine;
}

/** Where a package-side variable gets its value. */
export type PackageSource = { kind: 'literal'; value: string; line: SourceLine } | { kind: 'file'; file: string; line: SourceLine };

/** One side of a comparison. */
export type Operand = { kind: 'literal'; value: string } | { kind: 'var'; name: string };

export interface ShapeCompare {
  /** The comparison as written: the script exits when `left OP right` holds. */
  left: Operand;
  op: CmpOp;
  right: Operand;
  /** sh -gt/-lt… are numeric, sh `\>` is a string compare, cmd GTR… compares numbers when both sides are numbers. */
  compare: 'numeric' | 'string' | 'auto';
  message?: string;
  /** The line the gate is reported at. */
  line: SourceLine;
  /** Source text for a gate.unknown. */
  text: string;
}

export interface ShapeEnv {
  device: Map<string, DeviceRead>;
  pkg: Map<string, PackageSource>;
  /** `if [ -z "$X" ]; then X=V; fi` / `if [%X%] EQU [] set X=V`. */
  defaults: Map<string, string>;
  /** Line of each default, for the unused-variable warning. */
  defaultLines: Map<string, number>;
  /** Names a comparison used (so unused assignments can be reported). */
  used: Set<string>;
}

export function newShapeEnv(): ShapeEnv {
  return { device: new Map(), pkg: new Map(), defaults: new Map(), defaultLines: new Map(), used: new Set() };
}

const ANTI_VARS = new Set(['anti', 'rollback_ver']);
const HW_VAR = /^hw[-_]?(revision|rev|version|ver)$/i;
const SPL_VAR = /^(security[-_]?patch([-_]?level)?|spl)$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const INT = /^[0-9]+$/;
const FLIP: Record<CmpOp, CmpOp> = { gt: 'lt', lt: 'gt', ge: 'le', le: 'ge', eq: 'eq', ne: 'ne' };

/** Does a comparison involve a device variable? (Otherwise it is not a gate.) */
export function deviceSide(c: ShapeCompare, env: ShapeEnv): DeviceRead | undefined {
  for (const o of [c.left, c.right]) if (o.kind === 'var' && env.device.has(o.name)) return env.device.get(o.name);
  return undefined;
}

type PackageValue = { value: string; from: 'literal' | 'default' } | { file: string; fallback?: string } | { missing: string };

function packageValue(o: Operand, env: ShapeEnv): PackageValue {
  if (o.kind === 'literal') return { value: o.value, from: 'literal' };
  const src = env.pkg.get(o.name);
  const dflt = env.defaults.get(o.name);
  if (src?.kind === 'literal') return { value: src.value, from: 'literal' };
  if (src?.kind === 'file') return { file: src.file, ...(dflt !== undefined ? { fallback: dflt } : {}) };
  if (dflt !== undefined) return { value: dflt, from: 'default' };
  return { missing: o.name };
}

/** Turn a recognised comparison into a typed gate, or a blocking gate.unknown naming what miflash could not interpret. */
export function interpretShapeGate(c: ShapeCompare, env: ShapeEnv, opts: ParseOptions): PlanStep {
  for (const o of [c.left, c.right]) if (o.kind === 'var') env.used.add(o.name);
  const base = { line: c.line.no, onFailure: 'abort' as const, ...(c.message ? { message: c.message } : {}) };
  const dev = deviceSide(c, env);
  // The unknown gate quotes the read and the comparison, so the user sees what the script checks.
  const text = dev && dev.line.no !== c.line.no ? `${dev.line.raw.trim()} / ${c.text}` : c.text;
  const unknown = (reason: string): PlanStep => ({ kind: 'gate.unknown', ...base, text, reason });
  // Normalise to `device OP package`.
  const leftIsDevice = c.left.kind === 'var' && env.device.has(c.left.name);
  if (!dev) return unknown('a check shaped like a gate that compares no value read from the device');
  const op = leftIsDevice ? c.op : FLIP[c.op];
  const other = leftIsDevice ? c.right : c.left;
  if (other.kind === 'var' && env.device.has(other.name)) return unknown('a check comparing two device values');
  const what = `getvar ${dev.getvar}`;
  if (dev.extract === 'unknown') return unknown(`reads ${what} through a filter miflash does not interpret (${dev.how})`);
  const pv = packageValue(other, env);
  if ('missing' in pv) return unknown(`compares ${what} with $${pv.missing}, which the script never sets`);
  const devDefault = env.defaults.get(dev.name);

  if (ANTI_VARS.has(dev.getvar)) {
    if (op !== 'gt' || c.compare === 'string') return unknown(`the script stops when ${what} ${describeOp(op, c.compare)} the package value; miflash models an anti-rollback check only as device > package (numeric)`);
    if (devDefault !== undefined && devDefault !== '0') return unknown(`treats a missing ${what} as ${devDefault}, not 0`);
    const variable = dev.getvar as 'anti' | 'rollback_ver';
    if ('file' in pv) {
      if (pv.file !== 'images/anti_version.txt') return unknown(`takes the package anti-rollback version from ${pv.file}; miflash reads it only from images/anti_version.txt`);
      const fallback = pv.fallback ?? '0';
      if (!INT.test(fallback)) return unknown(`uses ${fallback} as the package anti-rollback version when images/anti_version.txt is missing`);
      const v = opts.antiVersion;
      return { kind: 'gate.anti-rollback', ...base, packageVersion: v ?? Number(fallback), variable, from: v === undefined ? 'anti_version.txt-missing' : 'anti_version.txt' };
    }
    if (!INT.test(pv.value)) return unknown(`compares ${what} with ${JSON.stringify(pv.value)}, not a number`);
    return { kind: 'gate.anti-rollback', ...base, packageVersion: Number(pv.value), variable, from: 'script' };
  }

  if (HW_VAR.test(dev.getvar)) {
    if (op !== 'lt' || c.compare === 'string') return unknown(`the script stops when ${what} ${describeOp(op, c.compare)} the package value; miflash models a hardware-revision check only as device < minimum (numeric)`);
    const value = 'file' in pv ? readPackageText(pv.file, opts) : pv.value;
    if (value === undefined) return unknown(`takes the minimum hardware revision from ${'file' in pv ? pv.file : '?'}, which is not in the ROM`);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(value)) return unknown(`compares ${what} with ${JSON.stringify(value)}, not a number`);
    return { kind: 'gate.hw-revision', ...base, variable: dev.getvar, min: Number(value) };
  }

  if (SPL_VAR.test(dev.getvar)) {
    if (op !== 'gt') return unknown(`the script stops when ${what} ${describeOp(op, c.compare)} the package value; miflash models a patch-level check only as device > package (a newer date)`);
    if (c.compare === 'numeric') return unknown(`compares the dates of ${what} numerically (sh -gt cannot compare YYYY-MM-DD; the vendor check never fires)`);
    let value: string;
    if ('file' in pv) {
      const text = readPackageText(pv.file, opts);
      if (text === undefined) {
        return unknown(
          `takes the package security patch level from ${pv.file}, which is not in the ROM; the script would compare with ${JSON.stringify(pv.fallback ?? '')} instead`,
        );
      }
      value = text;
    } else value = pv.value;
    if (!DATE.test(value)) return unknown(`compares ${what} with ${JSON.stringify(value)}, not a YYYY-MM-DD date`);
    return { kind: 'gate.security-patch-level', ...base, variable: dev.getvar, packageLevel: value };
  }

  const against = 'file' in pv ? `the value in ${pv.file}` : JSON.stringify(pv.value);
  return unknown(`the script stops when ${what} ${describeOp(op, c.compare)} ${against}; miflash interprets only anti-rollback, hardware-revision and security-patch-level checks`);
}

function describeOp(op: CmpOp, compare: ShapeCompare['compare']): string {
  const sym = { gt: '>', lt: '<', ge: '>=', le: '<=', eq: '==', ne: '!=' }[op];
  // cmd's GTR/LSS compare numbers when both sides are numbers; say how sh compares.
  return compare === 'auto' ? sym : `${sym} (${compare})`;
}

/** A one-line text side-car (trimmed, CR included); undefined when missing or not one line. */
function readPackageText(file: string, opts: ParseOptions): string | undefined {
  const raw = opts.readRomText?.(file);
  if (raw === undefined) return undefined;
  const t = raw.trim();
  return t.includes('\n') ? `${t.split(/\r?\n/)[0]}…` : t;
}

/** The value line `fastboot getvar VAR` prints (on stderr) when it succeeds. */
export function getvarLine(variable: string, value = '1'): string {
  return `${variable}: ${value}`;
}

/** The line it prints when the variable is unknown to the bootloader. */
export function getvarFailLine(variable: string): string {
  return `${`getvar:${variable}`.padEnd(50)} FAILED (remote: 'GetVar Variable Not found')`;
}

/** Patterns whose BRE/ERE/findstr meaning equals their JavaScript meaning (anchors, `.`, ` *`, plain text). */
const SIMPLE_PATTERN = /^\^?[A-Za-z0-9_:. *-]*\$?$/;

/**
 * A `getvar` test that opens an S12/B12-shaped block: `crc` (the CRC lists) or
 * `partition-type:NAME` (an optional partition, §6). undefined when the
 * variable opens no such block; `why` when it does but the pattern would not
 * tell success from failure.
 */
export function blockCondition(variable: string, pattern: string): { condition: StepCondition; label: string } | { why: string } | undefined {
  if (variable === 'crc') {
    return pattern === '^crc: 1' ? { condition: { kind: 'crc-supported' }, label: 'the device does not report crc: 1' } : { why: `getvar crc test with pattern ${JSON.stringify(pattern)} (expected "^crc: 1")` };
  }
  const m = /^partition-type:([A-Za-z0-9_.-]+)$/.exec(variable);
  if (!m) return undefined;
  const partition = m[1]!;
  if (!SIMPLE_PATTERN.test(pattern)) return { why: `partition-type test pattern ${JSON.stringify(pattern)} is not one miflash evaluates` };
  const re = new RegExp(pattern);
  if (!re.test(getvarLine(variable, 'raw')) || !re.test(getvarLine(variable, 'ext4'))) {
    return { why: `partition-type test pattern ${JSON.stringify(pattern)} never matches what fastboot prints when the partition exists` };
  }
  if (re.test(getvarFailLine(variable)) || re.test('Finished. Total time: 0.001s')) {
    return { why: `partition-type test pattern ${JSON.stringify(pattern)} also matches fastboot's FAILED line, so the block would always run` };
  }
  return { condition: { kind: 'partition-exists', partition }, label: `the device has no partition ${partition}` };
}
