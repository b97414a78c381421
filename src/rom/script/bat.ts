// Parser for Xiaomi flash_all*.bat (and Google flash-all.bat): cmd.exe
// precedence (`|` > `&&` > `||` > `&`), so `A || @echo M && exit /B 1` is
// A || (echo && exit) = abort(M). Recognises the forms of
// flash-script-grammar.md §4/§5/§6/§10 line by line, gates by shape (below).
// Legacy: the .sh side is interpreted (src/rom/script/sh); the cmd.exe front
// end over the same engine replaces this file. Anything else is a ScriptParseError.
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
import type { ParseOptions, ParsedScript } from './types.js';

type Block =
  | { kind: 'cond'; line: SourceLine; condition: StepCondition; label: string; branch: 'then' | 'else' }
  | { kind: 'if-exist'; line: SourceLine; file: string; branch: 'then' | 'else' }
  | { kind: 'gate'; line: SourceLine; compare: ShapeCompare | undefined; message?: string; exit?: boolean };

interface Tail {
  message?: string;
  /** exit N≠0 or goto: the script stops. */
  aborts: boolean;
  goto?: string;
}

interface Test {
  variable: string;
  /** The findstr search string after %var% expansion, as a JS regex on the getvar line. */
  regex: string;
  text: string;
  line: SourceLine;
}

// Package value from an images/ file (B11): `if exist F (for /f "usebackq" %%a in ("F") do (set X=%%a))`.
const PKG_FILE = /^if exist (.+?) \(for \/f "([^"]*)" %%([a-z]) in \((.+?)\) do \(set ([A-Za-z_][A-Za-z0-9_]*)=%%\3\)\)$/i;
const DEFAULT = /^if \[%([A-Za-z_][A-Za-z0-9_]*)%\] EQU \[\] set ([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/i;
// Device value (B9): `for /f "tokens=2 delims=: " %%i in ('fastboot %* getvar X 2^>^&1 ^| findstr …') do (set V=%%i)`.
const DEVICE_READ = /^for \/f "([^"]*)" %%([a-z]) in \('(.*)'\) do \(?set ([A-Za-z_][A-Za-z0-9_]*)=%%\2\)?$/i;
const CMP = '(\\S+) (GTR|LSS|GEQ|LEQ|EQU|NEQ|==) (\\S+)';
const COMPARE_BLOCK = new RegExp(`^if ${CMP} \\($`, 'i');
const COMPARE_SET = new RegExp(`^if ${CMP} set ([A-Za-z_][A-Za-z0-9_]*)=(.*)$`, 'i');
const CHECK_ECHO = /^echo %([A-Za-z_][A-Za-z0-9_]*)% \| findstr (?:\/r )?\/c:"([A-Za-z]+)" \|\| (.*)$/i;
const COND_SAME_LINE = /^(.*) && if %errorlevel% equ 0 \($/i;
const COND_OPEN = /^if %errorlevel% equ 0 \($/i;
const FOLDER_FOR = /^for \/f "delims=" %%i in \("%cd%"\) do set ([A-Za-z_]+)=%%~nxi$/i;
const FOLDER_TEST = /^echo %([A-Za-z_]+)% 2>&1 \| findstr \/r \/c:"([^"]+)" \|\| set ([A-Za-z_]+)=(.*)$/i;
const IF_EXIST_OPEN = /^if exist (.+?) \($/i;
const SET = /^set ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/i;
const PKG_LITERAL = /^([0-9]+(?:\.[0-9]+)?|\d{4}-\d{2}-\d{2})$/;

export function parseBat(text: string, lines: SourceLine[], opts: ParseOptions): ParsedScript {
  void text;
  const file = opts.file;
  const steps: PlanStep[] = [];
  const warnings: string[] = [];
  const env = new Map<string, string>();
  const senv = newShapeEnv();
  const blocks: Block[] = [];
  const labels = new Set<string>();
  const gotos: Array<{ label: string; line: SourceLine }> = [];
  let checkSet: { variable: string; compare: ShapeCompare | undefined; message: string; line: SourceLine } | undefined;
  let derivation: string | undefined;
  let pendingEcho: { key: string; message: string; tests: Test[]; line: SourceLine } | undefined;
  let pendingCond: { line: SourceLine; condition: StepCondition; label: string } | undefined;
  let ended = false;
  let inLabel = false;
  let vendorCalls = 0;
  const plainCalls: SourceLine[] = [];

  const fail: (l: SourceLine, why: string) => never = (l, why) => {
    throw new ScriptParseError(file, l.no, l.raw, why);
  };
  const condition = (): PlanStep['condition'] => {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i]!;
      if (b.kind === 'cond') return b.condition;
      if (b.kind === 'if-exist') return { kind: b.branch === 'then' ? 'file-exists' : 'file-missing', file: b.file };
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
  const flushEcho = () => {
    if (!pendingEcho) return;
    const p = pendingEcho;
    pendingEcho = undefined;
    warnings.push(`line ${p.line.no}: the script prints a message when a check fails but does not stop; miflash reports it without stopping`);
    push(gateForTests(p.tests, p.message, false, p.line));
  };
  const expand = (s: string) => s.replace(/%([A-Za-z_][A-Za-z0-9_]*)%/g, (all, name: string) => env.get(name.toLowerCase()) ?? all);
  const pushGate = (cmp: ShapeCompare | undefined, message: string | undefined, l: SourceLine, text: string) => {
    if (!cmp) {
      push({ kind: 'gate.unknown', line: l.no, onFailure: 'abort', ...(message ? { message } : {}), text, reason: 'a check shaped like a gate whose comparison miflash cannot interpret' });
      return;
    }
    push(interpretShapeGate({ ...cmp, ...(message ? { message } : {}), line: l, text }, senv, opts));
  };
  const compareFrom = (a: string, op: string, b: string, l: SourceLine): ShapeCompare | undefined | 'not-a-gate' => batCompare(a, op, b, l, senv);
  const mentionsDevice = (s: string) => [...senv.device.keys()].some((v) => s.toLowerCase().includes(`%${v}%`));

  const gateForTests = (tests: Test[], message: string | undefined, checked: boolean, l: SourceLine): PlanStep => {
    const fb = { line: l.no, onFailure: checked ? ('abort' as const) : ('ignore' as const), ...(message ? { message } : {}) };
    const vars = new Set(tests.map((t) => t.variable));
    const text = tests.map((t) => t.text).join(' || ');
    if (vars.size === 1 && vars.has('product')) {
      const g = productGateFromRegex(tests.map((t) => t.regex), 'findstr', text);
      if (g) {
        if (g.match !== 'exact') warnings.push(`line ${l.no}: product check ${text} is a ${g.match} match (evaluated as written)`);
        return { kind: 'gate.product', ...fb, ...g, ...(derivation ? { derivation } : {}) };
      }
    }
    if (vars.size === 1 && vars.has('secure') && tests.length === 1 && /^\^secure: \*?yes\$?$/.test(tests[0]!.regex)) {
      return { kind: 'gate.secure', ...fb, pattern: tests[0]!.regex };
    }
    return { kind: 'gate.unknown', ...fb, onFailure: 'abort', text: l.raw.trim(), reason: `a check on getvar ${[...vars].join(', ')} miflash cannot interpret` };
  };

  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const n = l.norm.replace(/^@(?=\S)/, (m) => (/^@echo/i.test(l.norm) ? m : ''));
    const lower = n.toLowerCase();
    if (n === '' || n.startsWith('::') || /^rem( |$)/i.test(n)) continue;
    if (/^@?echo off$/i.test(n) || lower === 'cls') continue;

    if (/^:[A-Za-z_][A-Za-z0-9_]*$/.test(n)) {
      flushEcho();
      if (blocks.length > 0) fail(l, 'label inside a block');
      labels.add(n.slice(1).toLowerCase());
      inLabel = true;
      ended = false;
      continue;
    }
    if (inLabel) {
      // Error-handler label body (B2): pause / echo / exit.
      if (/^pause( |$)/i.test(n) || /^@?echo( |\.|$)/i.test(n) || /^exit( |$)/i.test(n)) continue;
      fail(l, 'only pause, echo and exit are supported after a label');
    }
    if (ended) fail(l, 'line after `exit` never runs');

    // A getvar crc / partition-type test on its own line opens a block on the next (§6).
    if (pendingCond) {
      const pc = pendingCond;
      pendingCond = undefined;
      if (!COND_OPEN.test(n)) fail(pc.line, 'getvar test not followed by `if %errorlevel% equ 0 (`');
      if (condition()) fail(l, 'nested conditional blocks are not supported');
      blocks.push({ kind: 'cond', line: l, condition: pc.condition, label: pc.label, branch: 'then' });
      continue;
    }

    // Blocks.
    const top = blocks[blocks.length - 1];
    if (top?.kind === 'gate') {
      if (/^@?echo /i.test(n)) top.message = unquote(n.replace(/^@?echo /i, ''));
      else if (/^pause( |$)/i.test(n)) continue;
      else if (/^exit (\/B )?[1-9][0-9]*$/i.test(n)) top.exit = true;
      else if (n === ')') {
        blocks.pop();
        if (!top.exit) fail(l, 'check block without `exit /B 1`');
        pushGate(top.compare, top.message ?? 'check failed', top.line, top.line.raw.trim());
      } else fail(l, 'unexpected line inside a check block');
      continue;
    }
    if (top?.kind === 'cond' && top.branch === 'else' && n !== ')') {
      // The else branch of an optional block only prints a notice (§6).
      if (/^@?echo( |$)/i.test(n) && !/[|&]/.test(stripQuoted(n))) {
        push({ kind: 'note', line: l.no, onFailure: 'ignore', text: `(only when ${top.label}) ${unquote(expand(n.replace(/^@?echo/i, '').trim()))}` });
        continue;
      }
      fail(l, 'only echo is supported in the else branch of a getvar block');
    }
    if (n === ')' || /^\) else \($/i.test(n)) {
      flushEcho();
      if (!top) fail(l, 'closing parenthesis without an open block');
      if (n === ')') blocks.pop();
      else if ((top.kind === 'if-exist' || top.kind === 'cond') && top.branch === 'then') top.branch = 'else';
      else fail(l, '`) else (` only follows `if exist FILE (` or a getvar block');
      continue;
    }

    let m: RegExpExecArray | null;
    if ((m = COND_SAME_LINE.exec(n))) {
      flushEcho();
      const t = parseTest(splitOps(m[1]!, '|', l, fail), l, expand);
      const c = t ? blockCondition(t.test.variable, t.test.regex) : undefined;
      if (!t || !c) fail(l, '`&& if %errorlevel% equ 0 (` is only understood after a getvar crc or partition-type test');
      if ('why' in c) fail(l, c.why);
      if (t.vendor) vendorCalls++;
      else plainCalls.push(l);
      if (condition()) fail(l, 'nested conditional blocks are not supported');
      blocks.push({ kind: 'cond', line: l, condition: c.condition, label: c.label, branch: 'then' });
      continue;
    }
    if ((m = IF_EXIST_OPEN.exec(n)) && !PKG_FILE.test(n)) {
      flushEcho();
      const r = resolveImagePath(m[1]!);
      if (!r.ok) fail(l, r.why);
      blocks.push({ kind: 'if-exist', line: l, file: r.file, branch: 'then' });
      continue;
    }
    if ((m = PKG_FILE.exec(n))) {
      const [, guard, forOpts, , source, name] = m as unknown as [string, string, string, string, string, string];
      const a = resolveImagePath(guard);
      const b = resolveImagePath(source);
      if (!a.ok) fail(l, a.why);
      if (!b.ok || b.file !== a.file) fail(l, '`if exist` tests one file and `for /f` reads another');
      const o = forOpts.toLowerCase().split(' ').filter(Boolean);
      if (o.some((x) => x !== 'usebackq' && x !== 'delims==')) fail(l, `unsupported for /f options "${forOpts}"`);
      if (source.startsWith('"') && !o.includes('usebackq')) fail(l, 'for /f without usebackq reads a quoted path as a string, not as a file');
      senv.pkg.set(name.toLowerCase(), { kind: 'file', file: a.file, line: l });
      continue;
    }
    if ((m = DEFAULT.exec(n))) {
      if (m[1]!.toLowerCase() !== m[2]!.toLowerCase()) fail(l, `default for %${m[1]}% sets ${m[2]}`);
      senv.defaults.set(m[1]!.toLowerCase(), unquote(m[3]!));
      senv.defaultLines.set(m[1]!.toLowerCase(), l.no);
      continue;
    }
    if ((m = FOLDER_FOR.exec(n))) {
      const folder = opts.folderName ?? folderOf(file);
      env.set(m[1]!.toLowerCase(), folder);
      continue;
    }
    if ((m = DEVICE_READ.exec(n))) {
      const [, forOpts, , inner, name] = m as unknown as [string, string, string, string, string];
      const cmd = inner.replace(/\^(.)/g, '$1');
      const call = fastbootCall(words(splitOps(cmd, '|', l, fail)[0]!));
      if (!call || call.args[0] !== 'getvar' || call.args[1] === undefined) fail(l, 'for /f over a command other than `fastboot getvar`');
      if (call.vendor) vendorCalls++;
      else plainCalls.push(l);
      const t = parseTest(splitOps(cmd, '|', l, fail), l, expand);
      const getvar = call.args[1];
      const o = forOpts.toLowerCase();
      const tokens2 = /(^| )tokens=2( |$)/.test(o);
      const delims = /(?:^| )delims=(.*)$/.exec(forOpts)?.[1] ?? '';
      const ok = t !== undefined && t.test.variable === getvar && tokens2 && delims.includes(':') && delims.includes(' ') && new RegExp(t.test.regex).test(`${getvar}: 1`);
      senv.device.set(name.toLowerCase(), { name: name.toLowerCase(), getvar, extract: ok ? 'value' : 'unknown', how: n, line: l });
      continue;
    }
    if ((m = COMPARE_BLOCK.exec(n))) {
      const c = compareFrom(m[1]!, m[2]!, m[3]!, l);
      if (c === 'not-a-gate') fail(l, 'a test that compares no value read from the device with getvar');
      flushEcho();
      blocks.push({ kind: 'gate', line: l, compare: c });
      continue;
    }
    if (/^if /i.test(n) && n.endsWith(' (') && mentionsDevice(n)) {
      flushEcho();
      blocks.push({ kind: 'gate', line: l, compare: undefined });
      continue;
    }
    if ((m = COMPARE_SET.exec(n))) {
      const c = compareFrom(m[1]!, m[2]!, m[3]!, l);
      if (c === 'not-a-gate') fail(l, 'a test that compares no value read from the device with getvar');
      checkSet = { variable: m[4]!.toLowerCase(), compare: c, message: unquote(m[5]!), line: l };
      continue;
    }
    if ((m = CHECK_ECHO.exec(n))) {
      flushEcho();
      const variable = m[1]!.toLowerCase();
      const word = m[2]!;
      if (!checkSet || checkSet.variable !== variable) fail(l, `check of %${m[1]}% without the \`if … set ${m[1]}=…\` line before it`);
      const initial = env.get(variable);
      if (initial === undefined || !initial.includes(word) || checkSet.message.includes(word)) {
        fail(l, `%${m[1]}% must start out containing "${word}" and lose it when the check fails`);
      }
      const tail = parseTail(m[3]!, l, fail);
      if (!tail.aborts) fail(l, 'a check that does not stop the script');
      if (tail.goto) gotos.push({ label: tail.goto, line: l });
      const cs = checkSet;
      checkSet = undefined;
      pushGate(cs.compare, cs.message, l, `${cs.line.raw.trim()} / ${l.raw.trim()}`);
      continue;
    }
    if ((m = FOLDER_TEST.exec(n))) {
      const value = env.get(m[1]!.toLowerCase());
      if (value === undefined) fail(l, `%${m[1]}% is not set`);
      const hit = new RegExp(m[2]!).test(value);
      if (!hit) env.set(m[3]!.toLowerCase(), m[4]!);
      derivation = `folder "${value}" ${hit ? 'contains' : 'does not contain'} "${m[2]}", so ${m[3]}=${env.get(m[3]!.toLowerCase()) ?? '(unset)'}`;
      continue;
    }
    if (/^(set )?PATH=/i.test(n)) continue;
    if ((m = SET.exec(n))) {
      const [name, value] = [m[1]!, m[2]!];
      if (/%/.test(value)) fail(l, 'unsupported `set` with variable expansion');
      env.set(name.toLowerCase(), value);
      if (PKG_LITERAL.test(unquote(value))) senv.pkg.set(name.toLowerCase(), { kind: 'literal', value: unquote(value), line: l });
      continue;
    }
    if ((m = /^ping -n ([0-9]+) 127\.0\.0\.1( >nul)?$/i.exec(n))) {
      flushEcho();
      // ping -n N sends N echo requests one second apart: N-1 seconds.
      push({ kind: 'sleep', line: l.no, onFailure: 'ignore', seconds: Math.max(0, Number(m[1]) - 1) });
      continue;
    }
    if (/^(@?echo|title)( |\.|$)/i.test(n) && !/[|&]/.test(stripQuoted(n))) {
      flushEcho();
      const t = expand(n.replace(/^@?echo\.?|^title/i, '').trim());
      push({ kind: 'note', line: l.no, onFailure: 'ignore', text: unquote(t) });
      continue;
    }
    if (/^pause( |$)/i.test(n)) {
      flushEcho();
      push({ kind: 'note', line: l.no, onFailure: 'ignore', text: 'pause' });
      continue;
    }
    if (/^exit( (\/B )?0)?$/i.test(n)) {
      flushEcho();
      if (blocks.length > 0) fail(l, '`exit` inside a block');
      ended = true;
      continue;
    }

    // Command chains: fastboot ops with tails, getvar/findstr tests.
    const alts = splitOps(n, '||', l, fail);
    const first = splitOps(alts[0]!, '|', l, fail);
    if (splitOps(alts[0]!, '&&', l, fail).length > 1) fail(l, '`&&` after a command is not supported');
    const tests: Test[] = [];
    let opSteps: PlanStep[] | undefined;
    let vendor = false;
    if (first.length === 1) {
      const call = fastbootCall(words(first[0]!));
      if (!call) fail(l, 'unrecognised line');
      vendor = call.vendor;
      opSteps = stepsForFastbootArgs(call.args, { file, line: l, warnings });
    } else {
      const t = parseTest(first, l, expand);
      if (!t) fail(l, 'unrecognised line');
      tests.push(t.test);
      vendor = t.vendor;
    }
    // Extra alternatives before the tail: `|| fastboot … | findstr …` (several products, B6).
    let k = 1;
    while (tests.length > 0 && k < alts.length - 1) {
      const t = parseTest(splitOps(alts[k]!, '|', l, fail), l, expand);
      if (!t) fail(l, 'unrecognised alternative in a check');
      tests.push(t.test);
      k++;
    }
    if (alts.length > k + 1) fail(l, 'unsupported chain of `||`');
    const tail = alts[k] === undefined ? undefined : parseTail(alts[k]!, l, fail);
    if (tail?.goto) gotos.push({ label: tail.goto, line: l });
    if (vendor) vendorCalls++;
    else plainCalls.push(l);

    if (opSteps) {
      flushEcho();
      for (const s of opSteps) {
        if (!vendor) s.foreign = true;
        if (tail?.aborts && s.kind !== 'gate.unknown') {
          s.onFailure = 'abort';
          s.message = tail.message ?? '';
          delete s.vendorUnchecked;
        }
      }
      if (tail && !tail.aborts) warnings.push(`line ${l.no}: the script prints an error but continues`);
      push(...opSteps);
      continue;
    }
    // `getvar crc` / `getvar partition-type:X` alone: the `if %errorlevel% equ 0 (` is on the next line.
    if (!tail && tests.length === 1) {
      const c = blockCondition(tests[0]!.variable, tests[0]!.regex);
      if (c && 'why' in c) fail(l, c.why);
      if (c) {
        flushEcho();
        pendingCond = { line: l, condition: c.condition, label: c.label };
        continue;
      }
    }
    // A test line. B5: `… || echo M` then the same test `… || exit /B 1`.
    const key = tests.map((t) => `${t.variable}=${t.regex}`).join('|');
    if (!tail) {
      flushEcho();
      push(gateForTests(tests, undefined, false, l));
    } else if (!tail.aborts) {
      flushEcho();
      pendingEcho = { key, message: tail.message ?? '', tests, line: l };
    } else if (pendingEcho && pendingEcho.key === key) {
      const msg = pendingEcho.message;
      pendingEcho = undefined;
      push(gateForTests(tests, msg, true, l));
    } else {
      flushEcho();
      push(gateForTests(tests, tail.message, true, l));
    }
  }
  flushEcho();
  if (pendingCond) fail(pendingCond.line, 'getvar test at the end of the script');
  if (checkSet) fail(checkSet.line, '`if … set` check whose result is never tested');
  if (blocks.length > 0) fail(blocks[blocks.length - 1]!.line, 'block is never closed');
  for (const g of gotos) if (!labels.has(g.label.toLowerCase())) fail(g.line, `goto target :${g.label} does not exist`);
  reportUnused(senv, warnings);
  return finishFamily(steps, warnings, vendorCalls, plainCalls);
}

const BAT_OPS: Record<string, CmpOp> = { GTR: 'gt', LSS: 'lt', GEQ: 'ge', LEQ: 'le', EQU: 'eq', NEQ: 'ne', '==': 'eq' };

function batOperand(t: string): Operand | undefined {
  const m = /^("?)%([A-Za-z_][A-Za-z0-9_]*)%\1$/.exec(t);
  if (m) return { kind: 'var', name: m[2]!.toLowerCase() };
  const lit = unquote(t);
  if (/^[0-9A-Za-z._:-]+$/.test(lit)) return { kind: 'literal', value: lit };
  return undefined;
}

/** `if A OP B`: a comparison when it reads a device variable (cmd compares numbers when both sides are numbers, else strings). */
function batCompare(a: string, op: string, b: string, l: SourceLine, senv: ShapeEnv): ShapeCompare | undefined | 'not-a-gate' {
  const left = batOperand(a);
  const right = batOperand(b);
  const cop = BAT_OPS[op.toUpperCase()]!;
  if (left && right) {
    const c: ShapeCompare = { left, op: cop, right, compare: op === '==' ? 'string' : 'auto', line: l, text: l.raw.trim() };
    if (deviceSide(c, senv)) return c;
  }
  const mentions = [a, b].some((x) => [...senv.device.keys()].some((v) => x.toLowerCase().includes(`%${v}%`)));
  return mentions ? undefined : 'not-a-gate';
}

function folderOf(file: string): string {
  const parts = file.replace(/\\/g, '/').split('/').filter(Boolean);
  return parts.length >= 2 ? parts[parts.length - 2]! : '';
}

function stripQuoted(s: string): string {
  return s.replace(/"[^"]*"/g, '""');
}

/** Split on a cmd operator at top level (outside quotes, not ^-escaped), honouring precedence. */
function splitOps(s: string, op: '||' | '&&' | '|', l: SourceLine, fail: (l: SourceLine, why: string) => never): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '^' && !q) {
      cur += ch + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (ch === '"') q = !q;
    if (!q) {
      const two = s.slice(i, i + 2);
      if (two === '||' || two === '&&') {
        if (two === op) {
          out.push(cur.trim());
          cur = '';
          i++;
          continue;
        }
        cur += two;
        i++;
        continue;
      }
      if (ch === '|' && op === '|') {
        out.push(cur.trim());
        cur = '';
        continue;
      }
      if (ch === '&' && s[i - 1] !== '>' && s[i + 1] !== '1') fail(l, 'the `&` command separator is not supported');
    }
    cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/** `fastboot [%*] getvar VAR 2>&1 | findstr [/r] [/x] /c:"S"` → a test. */
function parseTest(pipe: string[], l: SourceLine, expand: (s: string) => string): { test: Test; vendor: boolean } | undefined {
  if (pipe.length !== 2) return undefined;
  const call = fastbootCall(words(pipe[0]!));
  if (!call || call.args.length !== 3 || call.args[0] !== 'getvar' || call.args[2] !== '2>&1') return undefined;
  const fw = words(pipe[1]!);
  if (fw[0]?.toLowerCase() !== 'findstr') return undefined;
  let regex = false;
  let whole = false;
  let search: string | undefined;
  for (const w of fw.slice(1)) {
    const lw = w.toLowerCase();
    if (lw === '/r') regex = true;
    else if (lw === '/x') whole = true;
    else if (lw.startsWith('/c:')) search = expand(w.slice(3)).replace(/"/g, '');
    else if (search === undefined && /^"[^"\s]+"$/.test(w)) search = expand(unquote(w)); // plain findstr "NAME": literal substring
    else return undefined;
  }
  if (search === undefined) return undefined;
  let re = regex ? search : escapeRegex(search);
  if (whole) {
    if (!re.startsWith('^')) re = '^' + re;
    if (!re.endsWith('$')) re = re + '$';
  }
  return { test: { variable: call.args[1]!, regex: re, text: search, line: l }, vendor: call.vendor };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `@echo "M" && exit /B 1`, `… && goto error`, `exit /B 1`, `echo M`. */
function parseTail(s: string, l: SourceLine, fail: (l: SourceLine, why: string) => never): Tail {
  const parts = splitOps(s, '&&', l, fail);
  const tail: Tail = { aborts: false };
  for (const p of parts) {
    let m: RegExpExecArray | null;
    if ((m = /^@?echo (.*)$/i.exec(p))) tail.message = unquote(m[1]!.trim());
    else if (/^pause( |$)/i.test(p)) continue;
    else if ((m = /^exit(?: \/B)? ([0-9]+)$/i.exec(p))) {
      if (m[1] === '0') fail(l, '`exit 0` after a failure is not supported');
      tail.aborts = true;
    } else if ((m = /^goto :?([A-Za-z_][A-Za-z0-9_]*)$/i.exec(p))) {
      tail.aborts = true;
      tail.goto = m[1]!;
    } else fail(l, `unsupported command after \`||\`: ${p}`);
  }
  return tail;
}

// ---- gates recognised by shape (legacy: only the .bat recogniser uses them; the cmd.exe front end replaces both) ----

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

