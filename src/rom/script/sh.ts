// Parser for Xiaomi flash_all*.sh (and Google flash-all.sh): recognises the
// forms of flash-script-grammar.md §3/§5/§10 line by line. An error check
// (`if [ $? -ne 0 ] …`) applies to the last command run, skipping blank and
// comment lines. Anything else is a ScriptParseError naming file:line:text.
import type { PlanStep } from '../../plan/schema.js';
import {
  ScriptParseError,
  type SourceLine,
  fastbootCall,
  productGateFromRegex,
  stepsForFastbootArgs,
  unquote,
  words,
} from './common.js';
import type { ParseOptions, ParsedScript } from './types.js';

type Test =
  | { kind: 'product'; line: SourceLine; alternatives: string[]; dialect: 'bre' | 'ere'; text: string }
  | { kind: 'secure'; line: SourceLine; pattern: string }
  | { kind: 'unlocked'; line: SourceLine; pattern: string }
  | { kind: 'crc'; line: SourceLine }
  | { kind: 'unknown'; line: SourceLine };

type Pending = { kind: 'op'; steps: PlanStep[] } | { kind: 'test'; test: Test };

type Block =
  | { kind: 'crc'; line: SourceLine }
  | { kind: 'anti-file'; line: SourceLine }
  | { kind: 'check'; line: SourceLine; target: Pending | undefined; message?: string; exit?: number };

const CHECK_ONE_LINE = /^if \[ \$\? -ne 0 \] ?; then echo (.*?) ?; exit ([0-9]+) ?;? fi$/;
const CHECK_OPEN = /^if \[ \$\? -ne 0 \] ?; then$/;
const CRC_OPEN = /^if \[ \$\? -eq 0 \] ?; then$/;
const ANTI_FILE_OPEN = /^if \[ -e (?:\$\(dirname \$0\)|`dirname \$0`)\/images\/anti_version\.txt \] ?; then$/;
const ANTI_FILE_READ = /^CURRENT_ANTI_VER=`cat (?:\$\(dirname \$0\)|`dirname \$0`)\/images\/anti_version\.txt`$|^CURRENT_ANTI_VER=\$\(cat (?:\$\(dirname \$0\)|`dirname \$0`)\/images\/anti_version\.txt\)$/;
const ANTI_DEFAULT = /^if \[ -z "\$CURRENT_ANTI_VER" \] ?; then CURRENT_ANTI_VER=0 ?; fi$/;
const ANTI_LITERAL = /^CURRENT_ANTI_VER=([0-9]+)$/;
const ANTI_READ = /^ver=`fastboot (\$\* )?getvar anti 2>&1 \| grep -oP "anti: \\K\[0-9\]\+"`$/;
const VER_DEFAULT = /^if \[ -z "\$ver" \] ?; then ver=0 ?; fi$/;
const ANTI_COMPARE = /^if \[ \$ver -gt \$CURRENT_ANTI_VER \] ?; then echo (.*?) ?; exit ([0-9]+) ?;? fi$/;
const SCRIPT_PATH = /^SCRIPT_PATH=(?:\$\(dirname \$0\)|`dirname \$0`)$/;
// Gates by shape (§6): a variable read from the device, then compared and exiting.
const SHAPE_READ = /^([A-Za-z_][A-Za-z0-9_]*)=(?:`fastboot (\$\* )?getvar [^`]*`|\$\(fastboot (\$\* )?getvar .*\))$/;
const SHAPE_DEFAULT = /^if \[ -z "\$([A-Za-z_][A-Za-z0-9_]*)" \] ?; then \1=[^;]* ?; fi$/;
const SHAPE_COMPARE = /^if \[ (.*) \] ?; then echo (.*?) ?; exit ([1-9][0-9]*) ?;? fi$/;
const GREP_TEST = /^fastboot (\$\* )?(getvar [A-Za-z0-9_:.-]+|oem device-info) 2>&1 \| grep( -E| -q| -qE| -Eq)? "([^"]*)"$/;

export function parseSh(text: string, lines: SourceLine[], opts: ParseOptions): ParsedScript {
  void text;
  const file = opts.file;
  const steps: PlanStep[] = [];
  const warnings: string[] = [];
  let pending: Pending | undefined;
  let block: Block | undefined;
  let handleError = false;
  let anti: { literal?: number; fromFile?: boolean } = {};
  let antiRead = false;
  const deviceVars = new Map<string, SourceLine>();
  let ended = false;
  let vendorCalls = 0;
  let plainCalls: SourceLine[] = [];

  const fail: (l: SourceLine, why: string) => never = (l, why) => {
    throw new ScriptParseError(file, l.no, l.raw, why);
  };
  const push = (...s: PlanStep[]) => {
    for (const step of s) {
      if (block?.kind === 'crc' && step.kind !== 'note') step.condition = { kind: 'crc-supported' };
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
      case 'crc':
        return fail(t.line, 'getvar crc test not followed by `if [ $? -eq 0 ]; then`');
      case 'unknown':
        return { kind: 'gate.unknown', ...fb, onFailure: 'abort', text: t.line.raw.trim(), reason: 'device check miflash cannot interpret' };
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

  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const n = l.norm;
    if (n === '' || n.startsWith('#')) continue;
    if (ended) fail(l, 'line after `exit 0` never runs');

    // Inside a multi-line check (D1): echo, exit, fi.
    if (block?.kind === 'check') {
      if (/^echo /.test(n)) block.message = unquote(n.slice(5));
      else if (/^exit [0-9]+;?$/.test(n)) block.exit = Number(n.slice(5).replace(';', ''));
      else if (n === 'fi') {
        if (block.exit === undefined || block.exit === 0) fail(l, 'error check block without `exit N`');
        const b = block;
        block = undefined;
        applyCheck(b.target, b.message ?? 'error', b.line);
      } else fail(l, 'unexpected line inside an error-check block');
      continue;
    }
    if (block?.kind === 'anti-file') {
      if (ANTI_FILE_READ.test(n)) anti = { fromFile: true };
      else if (n === 'fi') block = undefined;
      else fail(l, 'unexpected line inside the anti_version.txt block');
      continue;
    }

    let m: RegExpExecArray | null;
    if ((m = CHECK_ONE_LINE.exec(n))) {
      const target = pending;
      pending = undefined;
      applyCheck(target, unquote(m[1]!), l);
      continue;
    }
    if (CHECK_OPEN.test(n)) {
      block = { kind: 'check', line: l, target: pending };
      pending = undefined;
      continue;
    }
    if (CRC_OPEN.test(n)) {
      if (pending?.kind !== 'test' || pending.test.kind !== 'crc') fail(l, '`if [ $? -eq 0 ]` is only understood after a getvar crc test');
      pending = undefined;
      block = { kind: 'crc', line: l };
      continue;
    }
    flush();
    if (n === 'fi') {
      if (block?.kind !== 'crc') fail(l, '`fi` without an open block');
      block = undefined;
      continue;
    }
    if (ANTI_FILE_OPEN.test(n)) {
      block = { kind: 'anti-file', line: l };
      continue;
    }
    if ((m = ANTI_LITERAL.exec(n))) {
      anti = { literal: Number(m[1]) };
      continue;
    }
    if (ANTI_DEFAULT.test(n) || VER_DEFAULT.test(n) || SCRIPT_PATH.test(n)) continue;
    if ((m = ANTI_READ.exec(n))) {
      if (m[1]) vendorCalls++;
      antiRead = true;
      continue;
    }
    if ((m = SHAPE_READ.exec(n)) && m[1] !== 'ver') {
      if (m[2] || m[3]) vendorCalls++;
      deviceVars.set(m[1]!, l);
      continue;
    }
    if ((m = SHAPE_DEFAULT.exec(n)) && deviceVars.has(m[1]!)) continue;
    if ((m = SHAPE_COMPARE.exec(n)) && !ANTI_COMPARE.test(n) && [...deviceVars.keys()].some((v) => m![1]!.includes(`$${v}`) || m![1]!.includes(`\${${v}}`))) {
      const read = [...deviceVars.entries()].find(([v]) => m![1]!.includes(`$${v}`) || m![1]!.includes(`\${${v}}`))![1];
      push({
        kind: 'gate.unknown',
        line: l.no,
        onFailure: 'abort',
        message: unquote(m[2]!),
        text: `${read.raw.trim()} / ${l.raw.trim()}`,
        reason: 'a device check shaped like the anti-rollback gate that miflash cannot interpret',
      });
      continue;
    }
    if ((m = ANTI_COMPARE.exec(n))) {
      if (!antiRead) fail(l, 'anti-rollback comparison without reading `getvar anti` first');
      push(antiGate(l.no, unquote(m[1]!), anti, opts));
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
      if (what === 'getvar product') {
        test = { kind: 'product', line: l, alternatives: flagE ? pat.split('|') : [pat], dialect: flagE ? 'ere' : 'bre', text: pat };
      } else if (what === 'getvar crc' && pat === '^crc: 1') test = { kind: 'crc', line: l };
      else if (what === 'getvar secure' && /^\^secure: \*?(yes)\$?$/.test(pat.replace(' *', ' *'))) test = { kind: 'secure', line: l, pattern: pat };
      else if (what === 'oem device-info') test = { kind: 'unlocked', line: l, pattern: pat };
      else test = { kind: 'unknown', line: l };
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
  if (block) fail(block.line, 'block is never closed');
  return finishFamily(steps, warnings, vendorCalls, plainCalls);
}

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

export function antiGate(line: number, message: string, anti: { literal?: number; fromFile?: boolean }, opts: ParseOptions): PlanStep {
  if (anti.fromFile) {
    const v = opts.antiVersion;
    return {
      kind: 'gate.anti-rollback',
      line,
      onFailure: 'abort',
      message,
      packageVersion: v ?? 0,
      variable: 'anti',
      from: v === undefined ? 'anti_version.txt-missing' : 'anti_version.txt',
    };
  }
  return { kind: 'gate.anti-rollback', line, onFailure: 'abort', message, packageVersion: anti.literal ?? 0, variable: 'anti', from: 'script' };
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
