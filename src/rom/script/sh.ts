// Parser for Xiaomi flash_all*.sh (and Google flash-all.sh): recognises the
// forms of flash-script-grammar.md §3/§5/§6/§10 line by line. An error check
// (`if [ $? -ne 0 ] …`) applies to the last command run, skipping blank and
// comment lines. Gates are recognised by shape (shape-gate.ts). Anything else
// is a ScriptParseError naming file:line:text.
import type { PlanStep, StepCondition } from '../../plan/schema.js';
import {
  ScriptParseError,
  type SourceLine,
  fastbootCall,
  productGateFromRegex,
  resolveImagePath,
  stepsForFastbootArgs,
  unquote,
  words,
} from './common.js';
import { blockCondition, deviceSide, interpretShapeGate, newShapeEnv, type CmpOp, type Operand, type ShapeCompare, type ShapeEnv } from './shape-gate.js';
import type { ParseOptions, ParsedScript } from './types.js';

type Test =
  | { kind: 'product'; line: SourceLine; alternatives: string[]; dialect: 'bre' | 'ere'; text: string }
  | { kind: 'secure'; line: SourceLine; pattern: string }
  | { kind: 'unlocked'; line: SourceLine; pattern: string }
  | { kind: 'cond'; line: SourceLine; condition: StepCondition; label: string }
  | { kind: 'unknown'; line: SourceLine; reason?: string };

type Pending = { kind: 'op'; steps: PlanStep[] } | { kind: 'test'; test: Test };

type Block =
  | { kind: 'cond'; line: SourceLine; condition: StepCondition; label: string; branch: 'then' | 'else' }
  | { kind: 'file'; line: SourceLine; file: string }
  | { kind: 'check'; line: SourceLine; target: Pending | undefined; message?: string; exit?: number }
  | { kind: 'gate'; line: SourceLine; compare: ShapeCompare | undefined; message?: string; exit?: number };

const CHECK_ONE_LINE = /^if \[ \$\? -ne 0 \] ?; then (.*?) ?;? fi$/;
const CHECK_OPEN = /^if \[ \$\? -ne 0 \] ?; then$/;
const COND_OPEN = /^if \[ \$\? -eq 0 \] ?; then$/;
const FILE_OPEN = /^if \[ -[ef] (.+) \] ?; then$/;
const FILE_READ = /^([A-Za-z_][A-Za-z0-9_]*)=(?:`cat (.+)`|\$\(cat (.+)\))$/;
const LITERAL = /^([A-Za-z_][A-Za-z0-9_]*)=("?)([0-9]+(?:\.[0-9]+)?|\d{4}-\d{2}-\d{2})\2$/;
const DEFAULT = /^if \[ -z "\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?" \] ?; then ([A-Za-z_][A-Za-z0-9_]*)=("?)([^;"]*)\3 ?;? fi$/;
const DEVICE_READ = /^([A-Za-z_][A-Za-z0-9_]*)=(?:`fastboot (\$\* )?getvar (\S+)(.*)`|\$\(fastboot (\$\* )?getvar (\S+)(.*)\))$/;
const COMPARE_ONE_LINE = /^if \[ (.+?) \] ?; then (.*?) ?;? fi$/;
const COMPARE_OPEN = /^if \[ (.+?) \] ?; then$/;
const SCRIPT_PATH = /^SCRIPT_PATH=(?:\$\(dirname \$0\)|`dirname \$0`)$/;
const GREP_TEST = /^fastboot (\$\* )?(getvar [A-Za-z0-9_:.-]+|oem device-info) 2>&1 \| grep( -E| -q| -qE| -Eq)? "([^"]*)"$/;
/** A keypress before exiting (§6): `read`, `read -r x`, `read -n 1 -s -r -p "Press any key"`. */
const KEYPRESS = /^read( -[a-z]+| [0-9]+| "[^"]*"| [A-Za-z_][A-Za-z0-9_]*)*$/;

export function parseSh(text: string, lines: SourceLine[], opts: ParseOptions): ParsedScript {
  void text;
  const file = opts.file;
  const steps: PlanStep[] = [];
  const warnings: string[] = [];
  const blocks: Block[] = [];
  const env = newShapeEnv();
  let pending: Pending | undefined;
  let handleError = false;
  let ended = false;
  let vendorCalls = 0;
  const plainCalls: SourceLine[] = [];

  const fail: (l: SourceLine, why: string) => never = (l, why) => {
    throw new ScriptParseError(file, l.no, l.raw, why);
  };
  const condition = (): StepCondition | undefined => {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i]!;
      if (b.kind === 'cond') return b.condition;
    }
    return undefined;
  };
  const push = (...s: PlanStep[]) => {
    const c = condition();
    for (const step of s) {
      if (c && step.kind !== 'note') step.condition = c;
      steps.push(step);
    }
  };
  const flush = () => {
    if (pending === undefined) return;
    if (pending.kind === 'op') push(...pending.steps);
    else push(gateFor(pending.test, undefined, false));
    pending = undefined;
  };
  const gateFor = (t: Test, message: string | undefined, checked: boolean): PlanStep => {
    const fb = { line: t.line.no, onFailure: checked ? ('abort' as const) : ('ignore' as const), ...(message ? { message } : {}) };
    if (!checked) {
      warnings.push(`line ${t.line.no}: the script runs a check but ignores its result; miflash reports it without stopping`);
    }
    switch (t.kind) {
      case 'product': {
        const g = productGateFromRegex(t.alternatives, t.dialect, t.text);
        if (!g) return { kind: 'gate.unknown', ...fb, onFailure: 'abort', text: t.line.raw.trim(), reason: 'product pattern miflash cannot interpret' };
        if (g.match !== 'exact') warnings.push(`line ${t.line.no}: product check ${t.text} is a ${g.match} match (evaluated as written)`);
        return { kind: 'gate.product', ...fb, ...g };
      }
      case 'secure':
        return { kind: 'gate.secure', ...fb, pattern: t.pattern };
      case 'unlocked':
        return { kind: 'gate.unlocked', ...fb, pattern: t.pattern };
      case 'cond':
        if (t.condition.kind === 'crc-supported') return fail(t.line, 'getvar crc test not followed by `if [ $? -eq 0 ]; then`');
        return { kind: 'gate.unknown', ...fb, onFailure: 'abort', text: t.line.raw.trim(), reason: 'a partition-type test used as a check, not to open an optional block' };
      case 'unknown':
        return { kind: 'gate.unknown', ...fb, onFailure: 'abort', text: t.line.raw.trim(), reason: t.reason ?? 'device check miflash cannot interpret' };
    }
  };
  const applyCheck = (target: Pending | undefined, message: string, l: SourceLine) => {
    if (target === undefined) fail(l, 'error check without a preceding command');
    if (target.kind === 'op') {
      for (const s of target.steps) {
        if (s.kind === 'gate.unknown') continue;
        s.onFailure = 'abort';
        s.message = message;
        delete s.vendorUnchecked;
      }
      push(...target.steps);
    } else push(gateFor(target.test, message, true));
  };
  /** Body of an exiting branch: `echo M`, an optional keypress, `exit N` (N ≥ 1). */
  const exitBody = (parts: string[], l: SourceLine): { message?: string; exit: number } => {
    let message: string | undefined;
    let exit: number | undefined;
    for (const p of parts) {
      if (/^echo( |$)/.test(p)) message = unquote(p.slice(5).trim());
      else if (KEYPRESS.test(p)) continue;
      else if (/^exit [0-9]+$/.test(p) && exit === undefined) exit = Number(p.slice(5));
      else fail(l, `unsupported command in an error branch: ${p}`);
    }
    if (exit === undefined || exit === 0) fail(l, 'error branch without `exit N` (N ≥ 1)');
    return { ...(message !== undefined ? { message } : {}), exit };
  };
  const blockLine = (b: { message?: string; exit?: number }, n: string): boolean => {
    if (/^echo( |$)/.test(n)) b.message = unquote(n.slice(5).trim());
    else if (KEYPRESS.test(n)) return true;
    else if (/^exit [0-9]+;?$/.test(n)) b.exit = Number(n.slice(5).replace(';', ''));
    else return false;
    return true;
  };

  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const n = l.norm;
    if (n === '' || n.startsWith('#')) continue;
    if (ended) fail(l, 'line after `exit 0` never runs');
    const top = blocks[blocks.length - 1];

    // Inside a multi-line check (D1) or gate: echo, keypress, exit, fi.
    if (top?.kind === 'check' || top?.kind === 'gate') {
      if (blockLine(top, n)) continue;
      if (n !== 'fi') fail(l, `unexpected line inside ${top.kind === 'check' ? 'an error-check' : 'a check'} block`);
      if (top.exit === undefined || top.exit === 0) fail(l, 'check block without `exit N` (N ≥ 1)');
      blocks.pop();
      if (top.kind === 'check') applyCheck(top.target, top.message ?? 'error', top.line);
      else pushGate(top.compare!, top.message, top.line);
      continue;
    }
    if (top?.kind === 'file') {
      const m = FILE_READ.exec(n);
      if (m && sameFile(m[2] ?? m[3]!, top.file)) {
        env.pkg.set(m[1]!, { kind: 'file', file: top.file, line: l });
        continue;
      }
      if (n === 'fi') {
        blocks.pop();
        continue;
      }
      fail(l, `unexpected line inside the \`if [ -e ${top.file} ]\` block`);
    }
    if (top?.kind === 'cond' && top.branch === 'else') {
      // The else branch of an optional block only prints a notice (§6).
      if (/^echo( |$)/.test(n)) {
        push({ kind: 'note', line: l.no, onFailure: 'ignore', text: `(only when ${top.label}) ${unquote(n.slice(5).trim())}` });
        continue;
      }
      if (n === 'fi') {
        blocks.pop();
        continue;
      }
      fail(l, 'only echo is supported in the else branch of a getvar block');
    }

    let m: RegExpExecArray | null;
    if ((m = CHECK_ONE_LINE.exec(n))) {
      const target = pending;
      pending = undefined;
      const body = exitBody(splitSemis(m[1]!), l);
      applyCheck(target, body.message ?? 'error', l);
      continue;
    }
    if (CHECK_OPEN.test(n)) {
      blocks.push({ kind: 'check', line: l, target: pending });
      pending = undefined;
      continue;
    }
    if (COND_OPEN.test(n)) {
      if (pending?.kind !== 'test' || pending.test.kind !== 'cond') fail(l, '`if [ $? -eq 0 ]` is only understood after a getvar crc or partition-type test');
      const t = pending.test;
      pending = undefined;
      if (condition()) fail(l, 'nested getvar blocks are not supported');
      blocks.push({ kind: 'cond', line: l, condition: t.condition, label: t.label, branch: 'then' });
      continue;
    }
    flush();
    if (n === 'else') {
      if (top?.kind !== 'cond' || top.branch !== 'then') fail(l, '`else` is only supported in a getvar crc / partition-type block');
      top.branch = 'else';
      continue;
    }
    if (n === 'fi') {
      if (top?.kind !== 'cond') fail(l, '`fi` without an open block');
      blocks.pop();
      continue;
    }
    if ((m = FILE_OPEN.exec(n))) {
      blocks.push({ kind: 'file', line: l, file: romFile(m[1]!, l) });
      continue;
    }
    if ((m = FILE_READ.exec(n))) {
      // Unguarded `X=`cat FILE``: a missing file leaves X empty, as the guarded form does.
      env.pkg.set(m[1]!, { kind: 'file', file: romFile(m[2] ?? m[3]!, l), line: l });
      continue;
    }
    if (SCRIPT_PATH.test(n)) continue;
    if ((m = LITERAL.exec(n))) {
      env.pkg.set(m[1]!, { kind: 'literal', value: m[3]!, line: l });
      continue;
    }
    if ((m = DEFAULT.exec(n))) {
      if (m[1] !== m[2]) fail(l, `default for $${m[1]} assigns ${m[2]}`);
      env.defaults.set(m[1]!, m[4]!);
      env.defaultLines.set(m[1]!, l.no);
      continue;
    }
    if ((m = DEVICE_READ.exec(n))) {
      const vendor = m[2] ?? m[5];
      if (vendor) vendorCalls++;
      const getvar = (m[3] ?? m[6])!;
      const filter = (m[4] ?? m[7])!.trim();
      env.device.set(m[1]!, { name: m[1]!, getvar, extract: shFilterYieldsValue(getvar, filter) ? 'value' : 'unknown', how: filter || '(no filter)', line: l });
      continue;
    }
    if ((m = COMPARE_ONE_LINE.exec(n)) && !/^-[a-z] /.test(m[1]!)) {
      const cmp = compareOrFail(m[1]!, l);
      const body = exitBody(splitSemis(m[2]!), l);
      pushGate(cmp, body.message, l);
      continue;
    }
    if ((m = COMPARE_OPEN.exec(n)) && !/^-[a-z] /.test(m[1]!)) {
      blocks.push({ kind: 'gate', line: l, compare: compareOrFail(m[1]!, l) });
      continue;
    }
    if (n === 'handle_error()' || n === 'handle_error() {' || n === 'handle_error () {') {
      const body = lines
        .slice(i + 1)
        .filter((x) => x.norm !== '')
        .slice(0, n.endsWith('{') ? 3 : 4)
        .map((x) => x.norm);
      const expected = n.endsWith('{') ? ['echo $@', 'exit 2;', '}'] : ['{', 'echo $@', 'exit 2;', '}'];
      const norm = body.map((b) => b.replace(/^exit 2$/, 'exit 2;'));
      if (norm.join('\n') !== expected.join('\n')) fail(l, 'only the vendor handle_error() { echo $@; exit 2; } function is supported');
      let left = expected.length;
      while (left > 0) {
        i++;
        if (lines[i]!.norm !== '') left--;
      }
      handleError = true;
      continue;
    }
    if (/^echo( |$)/.test(n)) {
      push({ kind: 'note', line: l.no, onFailure: 'ignore', text: unquote(n.slice(5)) });
      continue;
    }
    if (/^exit 0;?$/.test(n)) {
      if (blocks.length > 0) fail(l, '`exit 0` inside a block');
      ended = true;
      continue;
    }
    if ((m = /^sleep ([0-9]+(?:\.[0-9]+)?)$/.exec(n))) {
      push({ kind: 'sleep', line: l.no, onFailure: 'ignore', seconds: Number(m[1]) });
      continue;
    }
    if ((m = GREP_TEST.exec(n))) {
      if (m[1]) vendorCalls++;
      const what = m[2]!;
      const flagE = (m[3] ?? '').includes('E');
      const pat = m[4]!;
      let test: Test;
      const cond = what.startsWith('getvar ') ? blockCondition(what.slice(7), pat) : undefined;
      if (what === 'getvar product') {
        test = { kind: 'product', line: l, alternatives: flagE ? pat.split('|') : [pat], dialect: flagE ? 'ere' : 'bre', text: pat };
      } else if (cond && 'why' in cond) fail(l, cond.why);
      else if (cond) test = { kind: 'cond', line: l, condition: cond.condition, label: cond.label };
      else if (what === 'getvar secure' && /^\^secure: \*?(yes)\$?$/.test(pat)) test = { kind: 'secure', line: l, pattern: pat };
      else if (what === 'oem device-info') test = { kind: 'unlocked', line: l, pattern: pat };
      else test = { kind: 'unknown', line: l, reason: `a check on ${what} miflash cannot interpret` };
      pending = { kind: 'test', test };
      continue;
    }
    // A fastboot command, possibly with `|| handle_error WORDS`.
    const [cmd, ...orParts] = splitOr(n);
    const call = fastbootCall(words(cmd!));
    if (call) {
      if (call.vendor) vendorCalls++;
      else plainCalls.push(l);
      const s = stepsForFastbootArgs(call.args, { file, line: l, warnings });
      for (const step of s) if (!call.vendor) step.foreign = true;
      if (orParts.length > 0) {
        const tail = orParts.join(' || ');
        const hm = /^handle_error(?: (.*))?$/.exec(tail);
        if (!hm || !handleError) fail(l, 'only `|| handle_error MESSAGE` (with the vendor function defined above) is supported after a command');
        for (const step of s) {
          if (step.kind === 'gate.unknown') continue;
          step.onFailure = 'abort';
          step.message = hm[1] ?? '';
          delete step.vendorUnchecked;
        }
        push(...s);
      } else pending = { kind: 'op', steps: s };
      continue;
    }
    fail(l, 'unrecognised line');
  }
  flush();
  if (blocks.length > 0) fail(blocks[blocks.length - 1]!.line, 'block is never closed');
  reportUnused(env, warnings);
  return finishFamily(steps, warnings, vendorCalls, plainCalls);

  function pushGate(cmp: ShapeCompare | undefined, message: string | undefined, l: SourceLine) {
    if (!cmp) {
      push({ kind: 'gate.unknown', line: l.no, onFailure: 'abort', ...(message ? { message } : {}), text: l.raw.trim(), reason: 'a check shaped like a gate whose comparison miflash cannot interpret' });
      return;
    }
    push(interpretShapeGate({ ...cmp, ...(message ? { message } : {}) }, env, opts));
  }
  function compareOrFail(cond: string, l: SourceLine): ShapeCompare | undefined {
    const c = shCompare(cond, l, env);
    if (c === 'not-a-gate') fail(l, 'a test that compares no value read from the device with getvar');
    return c;
  }
  function romFile(arg: string, l: SourceLine): string {
    const r = resolveImagePath(arg);
    if (!r.ok) fail(l, r.why);
    return r.file;
  }
  function sameFile(arg: string, want: string): boolean {
    const r = resolveImagePath(arg);
    return r.ok && r.file === want;
  }
}

/** `A; B; C` outside quotes. */
function splitSemis(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (const ch of s) {
    if (ch === '"') q = !q;
    if (ch === ';' && !q) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

const SH_OPS: Record<string, [CmpOp, 'numeric' | 'string']> = {
  '-gt': ['gt', 'numeric'],
  '-lt': ['lt', 'numeric'],
  '-ge': ['ge', 'numeric'],
  '-le': ['le', 'numeric'],
  '-eq': ['eq', 'numeric'],
  '-ne': ['ne', 'numeric'],
  '\\>': ['gt', 'string'],
  '\\<': ['lt', 'string'],
  '">"': ['gt', 'string'],
  '"<"': ['lt', 'string'],
  '=': ['eq', 'string'],
  '==': ['eq', 'string'],
  '!=': ['ne', 'string'],
};

function shOperand(t: string): Operand | undefined {
  const m = /^"?\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))"?$/.exec(t);
  if (m && (t.startsWith('"') === t.endsWith('"'))) return { kind: 'var', name: (m[1] ?? m[2])! };
  const lit = unquote(t);
  if (/^[0-9A-Za-z._:-]+$/.test(lit)) return { kind: 'literal', value: lit };
  return undefined;
}

/**
 * `[ A OP B ]` → a comparison, when it reads a device variable. undefined when it
 * mentions one but in a form miflash does not model (→ blocking gate.unknown).
 * A test that touches no device variable is not a gate: a ScriptParseError.
 */
function shCompare(cond: string, l: SourceLine, env: ShapeEnv): ShapeCompare | undefined | 'not-a-gate' {
  const t = words(cond);
  const mentionsDevice = [...env.device.keys()].some((v) => cond.includes(`$${v}`) || cond.includes(`\${${v}}`));
  if (t.length === 3 && SH_OPS[t[1]!]) {
    const left = shOperand(t[0]!);
    const right = shOperand(t[2]!);
    const [op, compare] = SH_OPS[t[1]!]!;
    if (left && right) {
      const c: ShapeCompare = { left, op, right, compare, line: l, text: l.raw.trim() };
      if (deviceSide(c, env)) return c;
    }
  }
  return mentionsDevice ? undefined : 'not-a-gate';
}

/** Does `fastboot getvar VAR 2>&1 | FILTER` print VAR's value alone? */
function shFilterYieldsValue(getvar: string, filter: string): boolean {
  const line = `${getvar}: 1`;
  let m: RegExpExecArray | null;
  if (!filter.startsWith('2>&1 | ')) return false;
  const f = filter.slice(7);
  // grep -oP "VAR: \K[0-9]+" (S10) and the same with another value class.
  if ((m = /^grep -oP "(.+): \\K(\[0-9\]\+|\[0-9-\]\+|\[0-9.\]\+|\\S\+|\[\^ \]\+)"$/.exec(f))) return m[1] === getvar;
  // awk '/PAT/ {print $2}', optionally with -F': '.
  if ((m = /^awk (?:-F ?(?:'(: ?)'|"(: ?)") )?'\/([^/']+)\/ ?\{ ?print \$2 ?;? ?\}'$/.exec(f))) {
    const sep = m[1] ?? m[2];
    if (sep === ':') return false; // leaves a leading space on the value
    return simpleMatch(m[3]!, line);
  }
  // grep "PAT" | awk '{print $2}' / cut -d' ' -f2
  if ((m = /^grep "([^"]+)" \| (?:awk '\{ ?print \$2 ?\}'|cut -d ?(?:' '|" ") -f ?2)$/.exec(f))) return simpleMatch(m[1]!, line);
  return false;
}

function simpleMatch(pattern: string, line: string): boolean {
  if (!/^\^?[A-Za-z0-9_:. *-]+\$?$/.test(pattern)) return false;
  return new RegExp(pattern).test(line);
}

function reportUnused(env: ShapeEnv, warnings: string[]): void {
  for (const [name, d] of env.device) if (!env.used.has(name)) warnings.push(`line ${d.line.no}: reads getvar ${d.getvar} into ${name} but no check uses it`);
  for (const [name, p] of env.pkg) if (!env.used.has(name)) warnings.push(`line ${p.line.no}: sets ${name} but no check uses it`);
  for (const [name, no] of env.defaultLines) {
    if (!env.used.has(name) && !env.pkg.has(name) && !env.device.has(name)) warnings.push(`line ${no}: gives ${name} a default but no check uses it`);
  }
}

/**
 * A script with vendor calls (`$*`/`%*`) is Xiaomi-style: its plain `fastboot` lines
 * are foreign (appended by someone else, B17) and flagged. Without any, it is a
 * Google-style script and plain calls are its normal form.
 */
export function finishFamily(steps: PlanStep[], warnings: string[], vendorCalls: number, plainCalls: SourceLine[]): ParsedScript {
  const family = vendorCalls > 0 ? 'xiaomi' : 'google';
  if (family === 'google') {
    for (const s of steps) delete s.foreign;
  } else if (plainCalls.length > 0) {
    warnings.push(
      `lines ${plainCalls.map((l) => l.no).join(', ')}: fastboot calls without $*/%* are not vendor content; miflash refuses them unless you opt in`,
    );
  }
  return { steps, warnings, family };
}

export { reportUnused };

/** `A || B` at top level (outside quotes and backticks). */
function splitOr(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  let bt = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '"') q = !q;
    if (ch === '`') bt = !bt;
    if (!q && !bt && ch === '|' && s[i + 1] === '|') {
      out.push(cur.trim());
      cur = '';
      i++;
      continue;
    }
    cur += ch;
  }
  out.push(cur.trim());
  return out;
}
