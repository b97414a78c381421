// Parser for Xiaomi flash_all*.bat (and Google flash-all.bat): cmd.exe
// precedence (`|` > `&&` > `||` > `&`), so `A || @echo M && exit /B 1` is
// A || (echo && exit) = abort(M). Recognises the forms of
// flash-script-grammar.md §4/§5/§10; anything else is a ScriptParseError.
import type { PlanStep } from '../../plan/schema.js';
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
import { antiGate, finishFamily } from './sh.js';
import type { ParseOptions, ParsedScript } from './types.js';

type Block =
  | { kind: 'crc'; line: SourceLine }
  | { kind: 'if-exist'; line: SourceLine; file: string; branch: 'then' | 'else' }
  | { kind: 'anti'; line: SourceLine; message?: string; exit?: boolean; unknown?: SourceLine };

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

const ANTI_FILE = /^if exist ("?)%~dp0images\\anti_version\.txt\1 \(for \/f "(?:usebackq|delims==)" %%a in \(("?)%~dp0images\\anti_version\.txt\2\) do \(set CURRENT_ANTI_VER=%%a\)\)$/i;
const ANTI_DEFAULT = /^if \[%CURRENT_ANTI_VER%\] EQU \[\] set CURRENT_ANTI_VER=0$/i;
const ANTI_READ = /^for \/f "tokens=2 delims=: " %%i in \('fastboot (%\* )?getvar anti 2\^>\^&1 \^\| findstr \/r \/c:"anti:"'\) do \(set version=%%i\)$/i;
const VER_DEFAULT = /^if \[%version%\] EQU \[\] set version=0$/i;
const ANTI_GTR_SET = /^if %version% GTR %CURRENT_ANTI_VER% set anticheck=(.*)$/i;
const ANTI_GTR_BLOCK = /^if %version% GTR %CURRENT_ANTI_VER% \($/i;
const ANTI_CHECK = /^echo %anticheck% \| findstr \/r \/c:"pass" \|\| @?echo (.*?) && exit (?:\/B )?1$/i;
const CRC_ONE_LINE = /^fastboot (%\* )?getvar crc 2>&1 \| findstr \/r \/c:"\^crc: 1" && if %errorlevel% equ 0 \($/i;
const CRC_SPLIT_OPEN = /^if %errorlevel% equ 0 \($/i;
// Gates by shape (§6): `for /f … in ('fastboot %* getvar X …') do (set V=%%i)`, then `if %V% OP … (` echo/exit `)`.
const SHAPE_READ = /^for \/f "[^"]*" %%([a-z]) in \('fastboot (%\* )?getvar [^']*'\) do \(?set ([A-Za-z_][A-Za-z0-9_]*)=%%\1\)?$/i;
const SHAPE_DEFAULT = /^if \[%([A-Za-z_][A-Za-z0-9_]*)%\] EQU \[\] set \1=\S*$/i;
const SHAPE_BLOCK = /^if (?:not )?"?%([A-Za-z_][A-Za-z0-9_]*)%"? (GTR|LSS|GEQ|LEQ|EQU|NEQ|==) .* \($/i;
const FOLDER_FOR = /^for \/f "delims=" %%i in \("%cd%"\) do set ([A-Za-z_]+)=%%~nxi$/i;
const FOLDER_TEST = /^echo %([A-Za-z_]+)% 2>&1 \| findstr \/r \/c:"([^"]+)" \|\| set ([A-Za-z_]+)=(.*)$/i;
const IF_EXIST_OPEN = /^if exist (.+?) \($/i;
const SET = /^set ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/i;

export function parseBat(text: string, lines: SourceLine[], opts: ParseOptions): ParsedScript {
  void text;
  const file = opts.file;
  const steps: PlanStep[] = [];
  const warnings: string[] = [];
  const env = new Map<string, string>();
  const blocks: Block[] = [];
  const labels = new Set<string>();
  const gotos: Array<{ label: string; line: SourceLine }> = [];
  let anti: { literal?: number; fromFile?: boolean } = {};
  let antiRead = false;
  const deviceVars = new Map<string, SourceLine>();
  let antiMessage: string | undefined;
  let derivation: string | undefined;
  let pendingEcho: { key: string; message: string; tests: Test[]; line: SourceLine } | undefined;
  let pendingCrcTest = false;
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
      if (b.kind === 'crc') return { kind: 'crc-supported' };
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

  const gateForTests = (tests: Test[], message: string | undefined, checked: boolean, l: SourceLine): PlanStep => {
    const fb = { line: l.no, onFailure: checked ? ('abort' as const) : ('ignore' as const), ...(message ? { message } : {}) };
    const vars = new Set(tests.map((t) => t.variable));
    const text = tests.map((t) => t.text).join(' || ');
    if (vars.size === 1 && vars.has('product')) {
      const g = productGateFromRegex(tests.map((t) => t.regex), 'findstr', text);
      if (g) {
        if (g.match !== 'exact') warnings.push(`line ${l.no}: product check ${text} is a ${g.match} match (evaluated as written)`);
        return { kind: 'gate.product', ...fb, ...g, ...(derivation && text.includes('%') ? {} : {}), ...(derivation ? { derivation } : {}) };
      }
    }
    if (vars.size === 1 && vars.has('secure') && tests.length === 1 && /^\^secure: \*?yes\$?$/.test(tests[0]!.regex)) {
      return { kind: 'gate.secure', ...fb, pattern: tests[0]!.regex };
    }
    return { kind: 'gate.unknown', ...fb, onFailure: 'abort', text: l.raw.trim(), reason: 'device check miflash cannot interpret' };
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

    // Blocks.
    const top = blocks[blocks.length - 1];
    if (top?.kind === 'anti') {
      if (/^@?echo /i.test(n)) top.message = unquote(n.replace(/^@?echo /i, ''));
      else if (/^exit (\/B )?[1-9][0-9]*$/i.test(n)) top.exit = true;
      else if (n === ')') {
        blocks.pop();
        if (!top.exit) fail(l, 'check block without `exit /B 1`');
        if (top.unknown) {
          push({
            kind: 'gate.unknown',
            line: top.line.no,
            onFailure: 'abort',
            ...(top.message ? { message: top.message } : {}),
            text: `${top.unknown.raw.trim()} / ${top.line.raw.trim()}`,
            reason: 'a device check shaped like the anti-rollback gate that miflash cannot interpret',
          });
          continue;
        }
        if (!antiRead) fail(top.line, 'anti-rollback comparison without reading `getvar anti` first');
        push(antiGate(top.line.no, top.message ?? 'anti-rollback check failed', anti, opts));
      } else fail(l, 'unexpected line inside the anti-rollback block');
      continue;
    }
    if (n === ')' || /^\) else \($/i.test(n)) {
      flushEcho();
      if (!top) fail(l, 'closing parenthesis without an open block');
      if (n === ')') blocks.pop();
      else if (top.kind === 'if-exist' && top.branch === 'then') top.branch = 'else';
      else fail(l, '`) else (` only follows `if exist FILE (`');
      continue;
    }

    let m: RegExpExecArray | null;
    if (pendingCrcTest) {
      pendingCrcTest = false;
      if (CRC_SPLIT_OPEN.test(n)) {
        blocks.push({ kind: 'crc', line: l });
        continue;
      }
      fail(lines[i - 1]!, 'getvar crc test not followed by `if %errorlevel% equ 0 (`');
    }
    if ((m = CRC_ONE_LINE.exec(n))) {
      flushEcho();
      if (m[1]) vendorCalls++;
      blocks.push({ kind: 'crc', line: l });
      continue;
    }
    if ((m = /^fastboot (%\* )?getvar crc 2>&1 \| findstr \/r \/c:"\^crc: 1"$/i.exec(n))) {
      flushEcho();
      if (m[1]) vendorCalls++;
      pendingCrcTest = true;
      continue;
    }
    if ((m = IF_EXIST_OPEN.exec(n)) && !ANTI_FILE.test(n)) {
      flushEcho();
      const r = resolveImagePath(m[1]!);
      if (!r.ok) fail(l, r.why);
      blocks.push({ kind: 'if-exist', line: l, file: r.file, branch: 'then' });
      continue;
    }
    if ((m = SHAPE_READ.exec(n)) && !ANTI_READ.test(n)) {
      if (m[2]) vendorCalls++;
      deviceVars.set(m[3]!.toLowerCase(), l);
      continue;
    }
    if ((m = SHAPE_DEFAULT.exec(n)) && deviceVars.has(m[1]!.toLowerCase())) continue;
    if ((m = SHAPE_BLOCK.exec(n)) && !ANTI_GTR_BLOCK.test(n) && deviceVars.has(m[1]!.toLowerCase())) {
      flushEcho();
      blocks.push({ kind: 'anti', line: l, unknown: deviceVars.get(m[1]!.toLowerCase())! });
      continue;
    }
    if (ANTI_GTR_BLOCK.test(n)) {
      flushEcho();
      blocks.push({ kind: 'anti', line: l });
      continue;
    }
    if (ANTI_FILE.test(n)) {
      anti = { fromFile: true };
      continue;
    }
    if (ANTI_DEFAULT.test(n) || VER_DEFAULT.test(n)) continue;
    if ((m = ANTI_READ.exec(n))) {
      if (m[1]) vendorCalls++;
      antiRead = true;
      continue;
    }
    if ((m = ANTI_GTR_SET.exec(n))) {
      antiMessage = unquote(m[1]!);
      continue;
    }
    if ((m = ANTI_CHECK.exec(n))) {
      flushEcho();
      if (!antiRead || antiMessage === undefined) fail(l, 'anti-rollback check without the `for /f … getvar anti` and `if … GTR …` lines before it');
      push(antiGate(l.no, antiMessage, anti, opts));
      continue;
    }
    if ((m = FOLDER_FOR.exec(n))) {
      const folder = opts.folderName ?? folderOf(file);
      env.set(m[1]!.toLowerCase(), folder);
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
      if (name.toUpperCase() === 'CURRENT_ANTI_VER') {
        if (!/^[0-9]+$/.test(value)) fail(l, 'CURRENT_ANTI_VER must be a number');
        anti = { literal: Number(value) };
      }
      env.set(name.toLowerCase(), value);
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
  if (pendingCrcTest) fail(lines[lines.length - 1]!, 'getvar crc test at the end of the script');
  if (blocks.length > 0) fail(blocks[blocks.length - 1]!.line, 'block is never closed');
  for (const g of gotos) if (!labels.has(g.label.toLowerCase())) fail(g.line, `goto target :${g.label} does not exist`);
  return finishFamily(steps, warnings, vendorCalls, plainCalls);
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
