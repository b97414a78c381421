// sed — GNU sed 4.9, C locale.
//
// Supported: -n, -e SCRIPT (repeatable), -f FILE (ctx.readFile), -E/-r, -s,
// --posix (accepted), --debug refused; `#n` first line; addresses N, $, /re/,
// \%re%, with I; ranges a,b incl. 0,/re/, a,+N, a,~N, first~step; `!`;
// commands { } = a i c (GNU one-line text forms and `a\` + newline) b t T :label
// d D g G h H n N p P q Q s x y z and comments. s/// flags: g p N I i, combined
// (Ng); replacement & \0-\9 \n \t \& \\ and escaped delimiters. Regex escapes
// \n \t in addresses and s patterns, as GNU sed reads them.
// Output keeps a missing final newline missing, as GNU sed does.
// Refused (UnsupportedToolError): -i, -z, -u, -l, --follow-symlinks; commands
// e F l r R w W v; s flags e w m/M; \L \U \l \u \E case conversion; M address flag.
// Loops (b/t back) are bounded by the call's step budget.

import { getopt, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { inputs, usageError } from './io.js';
import { Budget } from './limits.js';
import { compileRegex, RegexSyntaxError, UnsupportedRegexError, type Regex } from './regex/index.js';
import type { Tool, ToolResult } from './types.js';

const SHORT: Record<string, ArgKind> = { n: 'none', e: 'required', f: 'required', E: 'none', r: 'none', s: 'none', i: 'optional', z: 'none', u: 'none', l: 'required', b: 'none' };
const LONG: Record<string, [string, ArgKind]> = {
  quiet: ['n', 'none'],
  silent: ['n', 'none'],
  expression: ['e', 'required'],
  file: ['f', 'required'],
  'regexp-extended': ['E', 'none'],
  separate: ['s', 'none'],
  'in-place': ['i', 'optional'],
  'null-data': ['z', 'none'],
  'zero-terminated': ['z', 'none'],
  unbuffered: ['u', 'none'],
  'line-length': ['l', 'required'],
  posix: ['posix', 'none'],
  debug: ['debug', 'none'],
  sandbox: ['sandbox', 'none'],
  'follow-symlinks': ['follow-symlinks', 'none'],
  binary: ['b', 'none'],
};

class SedError extends Error {}

type Addr =
  | { t: 'line'; n: number }
  | { t: 'last' }
  | { t: 're'; re: RegexRef }
  | { t: 'step'; first: number; step: number }
  | { t: 'zero' };
type Addr2 = Addr | { t: 'plus'; n: number } | { t: 'mult'; n: number };

interface RegexRef {
  /** null = the empty regex: reuse the last one used. */
  regex: Regex | null;
}

interface Cmd {
  a1?: Addr;
  a2?: Addr2;
  negate: boolean;
  name: string;
  // range state
  active?: boolean;
  closed?: boolean;
  endLine?: number;
  // payloads
  text?: string;
  label?: string;
  target?: number;
  exitCode?: number;
  s?: { re: RegexRef; repl: ReplPart[]; global: boolean; nth: number; print: boolean };
  y?: Map<string, string>;
  blockEnd?: number;
}

type ReplPart = string | { group: number };

class Parser {
  i = 0;
  cmds: Cmd[] = [];
  private blocks: number[] = [];

  constructor(
    private readonly s: string,
    private readonly ere: boolean,
  ) {}

  private err(msg: string, at = Math.min(this.i, this.s.length)): never {
    throw new SedError(`-e expression #1, char ${at}: ${msg}`);
  }

  parse(): Cmd[] {
    const s = this.s;
    for (;;) {
      while (this.i < s.length && /[\s;]/.test(s[this.i]!)) this.i++;
      if (this.i >= s.length) break;
      if (s[this.i] === '#') {
        while (this.i < s.length && s[this.i] !== '\n') this.i++;
        continue;
      }
      const cmd: Cmd = { negate: false, name: '' };
      const a1 = this.address();
      if (a1) {
        cmd.a1 = a1;
        this.spaces();
        if (s[this.i] === ',') {
          this.i++;
          this.spaces();
          const a2 = this.address2();
          if (!a2) this.err('unexpected `,\'');
          cmd.a2 = a2;
        }
        if (a1.t === 'zero' && !(cmd.a2 && cmd.a2.t === 're')) this.err('invalid usage of line address 0');
      }
      this.spaces();
      while (s[this.i] === '!') {
        cmd.negate = true;
        this.i++;
        this.spaces();
      }
      const c = s[this.i++];
      if (c === undefined) this.err('missing command');
      cmd.name = c;
      this.command(cmd);
      this.cmds.push(cmd);
    }
    if (this.blocks.length) this.err('unmatched `{\'', 0);
    for (const c of this.cmds)
      if (c.name === 'b' || c.name === 't' || c.name === 'T') {
        if (c.label === '') c.target = this.cmds.length;
        else {
          const k = this.cmds.findIndex((x) => x.name === ':' && x.label === c.label);
          if (k < 0) throw new SedError(`-e expression #1, char 0: can't find label for jump to \`${c.label}'`);
          c.target = k;
        }
      }
    return this.cmds;
  }

  private spaces(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  private number(): number | null {
    const m = /^\d+/.exec(this.s.slice(this.i));
    if (!m) return null;
    this.i += m[0].length;
    return Number(m[0]);
  }

  private address(): Addr | null {
    const s = this.s;
    const n = this.number();
    if (n !== null) {
      if (s[this.i] === '~') {
        this.i++;
        const step = this.number() ?? 0;
        return { t: 'step', first: n, step };
      }
      return n === 0 ? { t: 'zero' } : { t: 'line', n };
    }
    if (s[this.i] === '$') {
      this.i++;
      return { t: 'last' };
    }
    if (s[this.i] === '/' || s[this.i] === '\\') {
      let delim = '/';
      if (s[this.i] === '\\') {
        this.i++;
        delim = s[this.i]!;
      }
      this.i++;
      const src = this.delimited(delim, 'unterminated address regex');
      let icase = false;
      for (;;) {
        if (s[this.i] === 'I') icase = true;
        else if (s[this.i] === 'M') throw new UnsupportedToolError('sed', 'the M address flag');
        else break;
        this.i++;
      }
      return { t: 're', re: this.regex(src, icase) };
    }
    return null;
  }

  private address2(): Addr2 | null {
    const s = this.s;
    if (s[this.i] === '+' || s[this.i] === '~') {
      const kind = s[this.i++];
      const n = this.number();
      if (n === null) this.err('expected newer version of sed');
      return kind === '+' ? { t: 'plus', n } : { t: 'mult', n };
    }
    const a = this.address();
    if (a && a.t === 'zero') this.err('invalid usage of line address 0');
    if (a && a.t === 'step') return { t: 'line', n: a.first };
    return a;
  }

  /** Reads up to an unescaped delimiter; keeps escapes for the regex parser except \DELIM and \n. */
  private delimited(delim: string, unterminated: string, regex = true): string {
    const s = this.s;
    let out = '';
    let inBracket = false;
    for (;;) {
      const c = s[this.i];
      if (c === undefined) this.err(unterminated);
      if (c === '\n' && regex) this.err(unterminated);
      this.i++;
      if (regex && inBracket) {
        if (c === ']' && !/\[\^?$/.test(out.slice(out.lastIndexOf('[')))) inBracket = false;
        out += c;
        continue;
      }
      if (c === '\\') {
        const e = s[this.i++];
        if (e === undefined) this.err(unterminated);
        if (e === delim) out += delim === '&' && !regex ? '\\&' : delim;
        else if (e === 'n' && regex) out += '\n';
        else if (e === 't' && regex) out += '\t';
        else out += '\\' + e;
        continue;
      }
      if (c === delim) return out;
      if (regex && c === '[') inBracket = true;
      out += c;
    }
  }

  private regex(src: string, icase: boolean): RegexRef {
    if (src === '') return { regex: null };
    try {
      return { regex: compileRegex(src, this.ere ? 'ere' : 'bre', { icase, command: 'sed' }).regex };
    } catch (e) {
      if (e instanceof RegexSyntaxError) this.err(e.message);
      if (e instanceof UnsupportedRegexError) throw new UnsupportedToolError('sed', e.message);
      throw e;
    }
  }

  private endOfCommand(): void {
    this.spaces();
    const c = this.s[this.i];
    if (c === undefined || c === ';' || c === '\n' || c === '}' || c === '#') return;
    this.err(`extra characters after command`, this.i + 1);
  }

  private label(): string {
    this.spaces();
    const m = /^[^;\n]*/.exec(this.s.slice(this.i))!;
    this.i += m[0].length;
    return m[0].replace(/\s+$/, '');
  }

  private text(): string {
    // GNU one-liners: `a text`, `a\` newline text; backslash-newline continues.
    const s = this.s;
    this.spaces();
    if (s[this.i] === '\\') {
      this.i++;
      if (s[this.i] === '\n') this.i++;
      else this.spaces();
    }
    let out = '';
    while (this.i < s.length && s[this.i] !== '\n') {
      if (s[this.i] === '\\') {
        this.i++;
        if (this.i < s.length) out += s[this.i++];
        continue;
      }
      out += s[this.i++];
    }
    return out;
  }

  private command(cmd: Cmd): void {
    const s = this.s;
    switch (cmd.name) {
      case '{':
        this.blocks.push(this.cmds.length);
        return;
      case '}': {
        if (cmd.a1) this.err('} doesn\'t want any addresses');
        const open = this.blocks.pop();
        if (open === undefined) this.err('unexpected `}\'');
        this.cmds[open]!.blockEnd = this.cmds.length + 1;
        this.endOfCommand();
        return;
      }
      case '=':
      case 'd':
      case 'D':
      case 'g':
      case 'G':
      case 'h':
      case 'H':
      case 'n':
      case 'N':
      case 'p':
      case 'P':
      case 'x':
      case 'z':
        this.endOfCommand();
        return;
      case 'q':
      case 'Q':
        if (cmd.a2) this.err('command only uses one address');
        this.spaces();
        cmd.exitCode = this.number() ?? 0;
        this.endOfCommand();
        return;
      case 'a':
      case 'i':
      case 'c':
        if (this.i >= s.length) this.err('expected \\ after `a\', `c\' or `i\'');
        cmd.text = this.text();
        return;
      case ':':
        if (cmd.a1) this.err(': doesn\'t want any addresses');
        cmd.label = this.label();
        if (cmd.label === '') this.err('":" lacks a label');
        return;
      case 'b':
      case 't':
      case 'T':
        cmd.label = this.label();
        return;
      case 's':
        return this.substitute(cmd);
      case 'y': {
        const delim = s[this.i++];
        if (delim === undefined || delim === '\n' || delim === '\\') this.err('unterminated `y\' command');
        const a = this.yString(delim);
        const b = this.yString(delim);
        if ([...a].length !== [...b].length) this.err('strings for `y\' command are different lengths');
        cmd.y = new Map([...a].map((c, k) => [c, b[k]!]));
        this.endOfCommand();
        return;
      }
      case 'e':
      case 'F':
      case 'l':
      case 'L':
      case 'r':
      case 'R':
      case 'w':
      case 'W':
      case 'v':
        throw new UnsupportedToolError('sed', `the command ${cmd.name}`);
      default:
        this.err(`unknown command: \`${cmd.name}'`);
    }
  }

  private yString(delim: string): string {
    const s = this.s;
    let out = '';
    for (;;) {
      const c = s[this.i++];
      if (c === undefined) this.err('unterminated `y\' command');
      if (c === delim) return out;
      if (c === '\\') {
        const e = s[this.i++];
        if (e === delim) out += delim;
        else if (e === 'n') out += '\n';
        else if (e === 't') out += '\t';
        else if (e === '\\') out += '\\';
        else this.err('unknown option to `s\'');
        continue;
      }
      out += c;
    }
  }

  private substitute(cmd: Cmd): void {
    const s = this.s;
    const delim = s[this.i++];
    if (delim === undefined || delim === '\n' || delim === '\\') this.err('unterminated `s\' command');
    const src = this.delimited(delim, "unterminated `s' command");
    const replRaw = this.replacement(delim);
    let global = false;
    let print = false;
    let nth = 1;
    let icase = false;
    let sawN = false;
    for (;;) {
      const c = s[this.i];
      if (c === 'g') global = true;
      else if (c === 'p') print = true;
      else if (c === 'i' || c === 'I') icase = true;
      else if (c !== undefined && /\d/.test(c)) {
        if (sawN) this.err('multiple number options to `s\' command');
        const n = this.number()!;
        if (n === 0) this.err('number option to `s\' command may not be zero');
        nth = n;
        sawN = true;
        continue;
      } else if (c === 'e' || c === 'w' || c === 'm' || c === 'M') throw new UnsupportedToolError('sed', `the s flag ${c}`);
      else break;
      this.i++;
    }
    const c = s[this.i];
    if (!(c === undefined || c === ';' || c === '\n' || c === '}' || c === '#' || c === ' ' || c === '\t'))
      this.err("unknown option to `s'", this.i + 1);
    this.endOfCommand();
    const re = this.regex(src, icase);
    const groups = re.regex ? countGroups(src, this.ere) : 9;
    const repl = parseReplacement(replRaw);
    for (const p of repl)
      if (typeof p !== 'string' && p.group > groups) this.err(`invalid reference \\${p.group} on \`s' command's RHS`, Math.min(this.i + 1, s.length));
    cmd.s = { re, repl, global, nth, print };
  }

  private replacement(delim: string): string {
    const s = this.s;
    let out = '';
    for (;;) {
      const c = s[this.i++];
      if (c === undefined) this.err("unterminated `s' command");
      if (c === delim) return out;
      if (c === '\\') {
        const e = s[this.i++];
        if (e === undefined) this.err("unterminated `s' command");
        out += e === delim ? (delim === '&' ? '\\&' : delim === '\\' ? '\\\\' : /\d/.test(delim) ? '\\' + delim : delim) : '\\' + e;
        continue;
      }
      out += c;
    }
  }
}

function countGroups(src: string, ere: boolean): number {
  let n = 0;
  let inBracket = false;
  for (let k = 0; k < src.length; k++) {
    const c = src[k];
    if (inBracket) {
      if (c === ']') inBracket = false;
      continue;
    }
    if (c === '[') {
      inBracket = true;
      if (src[k + 1] === '^') k++;
      if (src[k + 1] === ']') k++;
      continue;
    }
    if (c === '\\') {
      if (!ere && src[k + 1] === '(') n++;
      k++;
      continue;
    }
    if (ere && c === '(') n++;
  }
  return n;
}

function parseReplacement(raw: string): ReplPart[] {
  const parts: ReplPart[] = [];
  let lit = '';
  for (let k = 0; k < raw.length; k++) {
    const c = raw[k]!;
    if (c === '&') {
      parts.push(lit, { group: 0 });
      lit = '';
    } else if (c === '\\') {
      const e = raw[++k]!;
      if (/\d/.test(e)) {
        parts.push(lit, { group: Number(e) });
        lit = '';
      } else if (e === 'n') lit += '\n';
      else if (e === 't') lit += '\t';
      else if (e === '\n') lit += '\n';
      else if ('LUluE'.includes(e)) throw new UnsupportedToolError('sed', `the case conversion \\${e}`);
      else lit += e;
    } else lit += c;
  }
  parts.push(lit);
  return parts.filter((p) => p !== '');
}

export const sed: Tool = (argv, stdin, ctx) => {
  const cmd = 'sed';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  let quiet = false;
  let ere = false;
  let separate = false;
  const scripts: string[] = [];
  for (const o of parsed.options) {
    switch (o.key) {
      case 'n':
        quiet = true;
        break;
      case 'E':
      case 'r':
        ere = true;
        break;
      case 's':
        separate = true;
        break;
      case 'e':
        scripts.push(o.value!);
        break;
      case 'f': {
        const t = o.value === '-' ? stdin : ctx.readFile?.(o.value!);
        if (t === undefined) return { stdout: '', stderr: `sed: couldn't open file ${o.value}: No such file or directory\n`, status: 1 };
        scripts.push(t.endsWith('\n') ? t.slice(0, -1) : t);
        break;
      }
      case 'posix':
      case 'sandbox':
        break;
      default:
        throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
    }
  }
  const operands = [...parsed.operands];
  if (scripts.length === 0) {
    // GNU prints its whole --help text here; a script never means to.
    if (operands.length === 0) throw new UnsupportedToolError(cmd, 'a call without a script');
    scripts.push(operands.shift()!);
  }
  const script = scripts.join('\n');
  if (script.startsWith('#n\n') || script === '#n') quiet = true;
  const budget = new Budget(cmd);
  let program: Cmd[];
  try {
    program = new Parser(script, ere).parse();
  } catch (e) {
    if (e instanceof SedError) return { stdout: '', stderr: `sed: ${e.message}\n`, status: 1 };
    throw e;
  }
  return new SedRun(program, quiet, separate, budget).run(inputs(operands, stdin, ctx, budget));
};

interface Line {
  text: string;
  newline: boolean;
  lastOfFile: boolean;
}

class SedRun {
  private out = '';
  private stderr = '';
  private lines: Line[] = [];
  private next = 0;
  private lineNo = 0;
  private lastRegex: Regex | null = null;
  private append: string[] = [];
  private hold = '';
  /** Whether the hold space's last line had a newline (GNU keeps this per buffer). */
  private holdNewline = true;
  /** The last write lacked its newline: the next write supplies it first, as GNU sed does. */
  private missingNewline = false;
  private tFlag = false;

  constructor(
    private readonly cmds: Cmd[],
    private readonly quiet: boolean,
    private readonly separate: boolean,
    private readonly budget: Budget,
  ) {}

  run(ins: { name: string; text: string | undefined }[]): ToolResult {
    let status = 0;
    for (const input of ins) {
      if (input.text === undefined) {
        this.stderr += `sed: can't read ${input.name}: No such file or directory\n`;
        status = 2;
        continue;
      }
      const t = input.text;
      // Only the very last line of all input can lack its newline.
      const prev = this.lines[this.lines.length - 1];
      if (prev && !prev.newline && t !== '') prev.newline = true;
      let start = 0;
      while (start < t.length) {
        const nl = t.indexOf('\n', start);
        if (nl < 0) {
          this.lines.push({ text: t.slice(start), newline: false, lastOfFile: true });
          break;
        }
        this.lines.push({ text: t.slice(start, nl), newline: true, lastOfFile: nl === t.length - 1 });
        start = nl + 1;
      }
    }
    let exit: number | null = null;
    while (this.next < this.lines.length && exit === null) exit = this.cycle();
    return { stdout: this.out, stderr: this.stderr, status: exit ?? status };
  }

  private isLast(): boolean {
    if (this.separate) return this.lines[this.next - 1]?.lastOfFile ?? true;
    return this.next >= this.lines.length;
  }

  private emit(text: string, newline: boolean): void {
    if (this.missingNewline) this.out += '\n';
    this.out += text + (newline ? '\n' : '');
    this.missingNewline = !newline;
    this.budget.checkOutput(this.out.length);
  }

  private flushAppend(): void {
    for (const a of this.append) this.emit(a, true);
    this.append = [];
  }

  private matchAddr(a: Addr | Addr2, ps: string): boolean {
    switch (a.t) {
      case 'line':
        return this.lineNo === a.n;
      case 'last':
        return this.isLast();
      case 'zero':
        return false;
      case 'step':
        return a.step <= 0 ? this.lineNo === a.first : this.lineNo >= a.first && (this.lineNo - a.first) % a.step === 0;
      case 're':
        return this.search(a.re, ps, 0) !== null;
      default:
        return false;
    }
  }

  private search(ref: RegexRef, text: string, from: number) {
    const re = ref.regex ?? this.lastRegex;
    if (!re) throw new SedError('no previous regular expression');
    this.lastRegex = re;
    return re.exec(text, from, this.budget);
  }

  private selected(c: Cmd, ps: string): boolean {
    if (!c.a1) return true;
    if (!c.a2) return this.matchAddr(c.a1, ps);
    // 0,/re/ is in its range before the first line, so the end regex is tried on line 1 too.
    if (c.a1.t === 'zero' && c.active === undefined) c.active = true;
    if (c.active) {
      const a2 = c.a2;
      // A numeric end already passed (lines skipped by n/N/D) closes the range without matching.
      const endLine = a2.t === 'line' ? a2.n : a2.t === 'plus' || a2.t === 'mult' ? c.endLine! : null;
      if (endLine !== null) {
        if (this.lineNo >= endLine) this.close(c);
        return this.lineNo <= endLine;
      }
      if (this.matchAddr(a2, ps)) this.close(c);
      return true;
    }
    // A numeric start skipped by n/N/D still opens the range on the next line
    // seen, once (GNU); a regex start can open it again and again.
    if (c.closed) return false;
    const start = c.a1.t === 'line' ? this.lineNo >= c.a1.n : this.matchAddr(c.a1, ps);
    if (!start) return false;
    const a2 = c.a2;
    if (c.a1.t === 'line' && a2.t === 'line' && this.lineNo > c.a1.n && this.lineNo > a2.n) {
      this.close(c);
      return false;
    }
    let active: boolean;
    if (a2.t === 'line') active = a2.n > this.lineNo;
    else if (a2.t === 'plus') {
      c.endLine = this.lineNo + a2.n;
      active = a2.n > 0;
    } else if (a2.t === 'mult') {
      const m = a2.n <= 0 ? this.lineNo : Math.ceil(this.lineNo / a2.n) * a2.n;
      c.endLine = m;
      active = m > this.lineNo;
    } else if (a2.t === 'last') active = !this.isLast();
    else active = true; // a regex end is checked from the next line on
    if (active) c.active = true;
    else this.close(c);
    return true;
  }

  private close(c: Cmd): void {
    c.active = false;
    if (c.a1?.t === 'line' || c.a1?.t === 'zero') c.closed = true;
  }

  private read(): Line | null {
    const l = this.lines[this.next];
    if (!l) return null;
    this.next++;
    this.lineNo++;
    return l;
  }

  /** One cycle; returns an exit status when the script quits. */
  private cycle(): number | null {
    let line = this.read()!;
    let ps = line.text;
    let newline = line.newline;
    this.tFlag = false;
    let pc = 0;
    const end = (print: boolean): void => {
      if (print && !this.quiet) this.emit(ps, newline);
      this.flushAppend();
    };
    while (pc < this.cmds.length) {
      this.budget.step();
      const c = this.cmds[pc]!;
      const hit = this.selected(c, ps) !== c.negate;
      if (!hit) {
        pc = c.name === '{' ? c.blockEnd! : pc + 1;
        continue;
      }
      pc++;
      switch (c.name) {
        case '{':
        case '}':
        case ':':
          break;
        case '=':
          this.emit(String(this.lineNo), true);
          break;
        case 'a':
          this.append.push(c.text!);
          break;
        case 'i':
          this.emit(c.text!, true);
          break;
        case 'c':
          if (!c.a2 || !c.active) this.emit(c.text!, true);
          this.flushAppend();
          return null;
        case 'd':
          this.flushAppend();
          return null;
        case 'D': {
          const k = ps.indexOf('\n');
          if (k < 0) {
            this.flushAppend();
            return null;
          }
          // Restart the cycle on what is left, without reading input or printing.
          ps = ps.slice(k + 1);
          this.flushAppend();
          pc = 0;
          break;
        }
        case 'p':
          this.emit(ps, newline);
          break;
        case 'P': {
          const k = ps.indexOf('\n');
          this.emit(k < 0 ? ps : ps.slice(0, k), k < 0 ? newline : true);
          break;
        }
        case 'g':
          ps = this.hold;
          newline = this.holdNewline;
          break;
        case 'G':
          ps += '\n' + this.hold;
          newline = this.holdNewline;
          break;
        case 'h':
          this.hold = ps;
          this.holdNewline = newline;
          break;
        case 'H':
          this.hold += '\n' + ps;
          this.holdNewline = newline;
          break;
        case 'x':
          [ps, this.hold] = [this.hold, ps];
          [newline, this.holdNewline] = [this.holdNewline, newline];
          break;
        case 'z':
          ps = '';
          break;
        case 'n': {
          if (this.next >= this.lines.length) {
            end(true);
            return 0;
          }
          if (!this.quiet) this.emit(ps, newline);
          this.flushAppend();
          line = this.read()!;
          ps = line.text;
          newline = line.newline;
          break;
        }
        case 'N': {
          if (this.next >= this.lines.length) {
            end(true);
            return 0;
          }
          this.flushAppend();
          line = this.read()!;
          ps += '\n' + line.text;
          newline = line.newline;
          break;
        }
        case 'q':
          // GNU sed's q always ends the printed line with a newline.
          newline = true;
          end(true);
          return c.exitCode!;
        case 'Q':
          return c.exitCode!;
        case 'b':
          pc = c.target!;
          break;
        case 't':
          if (this.tFlag) {
            this.tFlag = false;
            pc = c.target!;
          }
          break;
        case 'T':
          if (!this.tFlag) pc = c.target!;
          else this.tFlag = false;
          break;
        case 's': {
          const r = this.substitute(c.s!, ps);
          if (r !== null) {
            ps = r;
            this.tFlag = true;
            if (c.s!.print) this.emit(ps, newline);
          }
          break;
        }
        case 'y':
          ps = [...ps].map((ch) => c.y!.get(ch) ?? ch).join('');
          break;
      }
    }
    end(true);
    return null;
  }

  private substitute(s: NonNullable<Cmd['s']>, ps: string): string | null {
    let out = '';
    let pos = 0;
    let count = 0;
    let changed = false;
    let prevEnd = -1;
    while (pos <= ps.length) {
      this.budget.step();
      const m = this.search(s.re, ps, pos);
      if (!m) break;
      if (m.end === m.start && m.start === prevEnd) {
        // No empty match right after the previous match.
        if (m.start >= ps.length) break;
        out += ps[m.start];
        pos = m.start + 1;
        continue;
      }
      count++;
      if (count >= s.nth) {
        out += ps.slice(pos, m.start);
        for (const p of s.repl) {
          if (typeof p === 'string') out += p;
          else {
            const cap = m.captures[p.group];
            if (cap) out += ps.slice(cap[0], cap[1]);
          }
        }
        changed = true;
      } else out += ps.slice(pos, m.end);
      prevEnd = m.end;
      if (m.end === m.start) {
        if (m.start < ps.length) out += ps[m.start];
        pos = m.start + 1;
      } else pos = m.end;
      if (changed && !s.global) break;
    }
    if (!changed) return null;
    return out + ps.slice(Math.min(pos, ps.length));
  }
}
