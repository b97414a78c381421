// awk / gawk — GNU awk 5.2 semantics (C locale) for the programs flash scripts
// write: `awk -F': ' '{print $2}'`, `awk '/anti/{print $NF}'`, `awk 'NR==2'` ...
//
// Supported: -F FS (a single character literally, " " for blank runs, otherwise
// an ERE), -v var=value, `--`, operands that are files (read via
// ctx.readFile) or var=value assignments; BEGIN / END, pattern-action items,
// regex, expression and range (p1, p2) patterns; $N, $0, NF, NR, FNR, FS, OFS,
// ORS, SUBSEP, RSTART, RLENGTH, CONVFMT, OFMT, FILENAME; assignment to fields
// and NF rebuilds $0; print / printf (to standard output), if / else, while,
// do, for (;;), for (k in a), break, continue, next, exit, delete, arrays with
// (i, j) subscripts and `in`; all operators incl. ~ !~ ?: ^ ++ -- and string
// concatenation; number vs string comparison by POSIX "strnum" rules; number
// to string with CONVFMT / OFMT (%.6g); length substr index split sub gsub
// match sprintf tolower toupper int sqrt exp log sin cos atan2; sub/gsub `&`
// and backslash rules as gawk applies them.
// Refused (UnsupportedToolError): getline, output redirection and pipes,
// system, close, fflush, rand/srand, user-defined functions, RS other than
// newline, gawk extensions (gensub, patsplit, asort, strftime, ...), -f.
// Errors: a syntax error is status 2 with "awk: cmd. line:1: syntax error ..."
// (gawk also prints the source line and a caret: the wording differs); division
// by zero is gawk's fatal error, status 2. Every statement and loop iteration
// is charged to the call's step budget (ToolLimitError beyond it).

import { getopt, type ArgKind } from './args.js';
import { ToolLimitError, UnsupportedToolError } from './errors.js';
import { usageError } from './io.js';
import { Budget, LIMITS } from './limits.js';
import { compileRegex, RegexSyntaxError, UnsupportedRegexError, type Regex } from './regex/index.js';
import type { Tool, ToolContext } from './types.js';

class AwkSyntaxError extends Error {}
class AwkFatal extends Error {}
class ExitSignal {
  constructor(readonly code: number) {}
}
class NextSignal {}
class BreakSignal {}
class ContinueSignal {}

// ---------------------------------------------------------------- values

/** An awk value: number, string, or a string from input that looks numeric (strnum). */
type Val = { n: number; s?: undefined } | { s: string; strnum: boolean; n?: undefined };

const NUMERIC_RE = /^[ \t\n\f\r\v]*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[ \t\n\f\r\v]*$/;
const num = (n: number): Val => ({ n });
const str = (s: string): Val => ({ s, strnum: false });
const strnum = (s: string): Val => ({ s, strnum: NUMERIC_RE.test(s) });
const UNINIT: Val = { s: '', strnum: true };

function toNumber(v: Val): number {
  if (v.n !== undefined) return v.n;
  const m = /^[ \t\n\f\r\v]*([+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))/.exec(v.s);
  return m ? Number(m[1]) : 0;
}

/** C's %.<prec>g. */
function formatG(x: number, prec: number, alt = false): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? (Object.is(x, NaN) ? 'nan' : '-nan') : x < 0 ? '-inf' : 'inf';
  const p = prec === 0 ? 1 : prec;
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(p)))));
  let out: string;
  if (exp < -4 || exp >= p) {
    out = x.toExponential(p - 1);
    let [mant, e] = out.split('e') as [string, string];
    if (!alt && mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
    const sign = e[0] === '-' ? '-' : '+';
    const digits = e.replace(/^[+-]/, '').padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  out = x.toFixed(Math.max(0, p - 1 - exp));
  if (!alt && out.includes('.')) out = out.replace(/0+$/, '').replace(/\.$/, '');
  return out;
}

function numToString(n: number, fmt: string): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n === 0 ? 0 : n);
  if (fmt === '%.6g') return formatG(n, 6);
  return sprintf(fmt, [num(n)], '%.6g');
}

function toStr(v: Val, convfmt: string): string {
  return v.n !== undefined ? numToString(v.n, convfmt) : v.s;
}

const isNumeric = (v: Val) => v.n !== undefined || (v.strnum && v.s !== '') || v === UNINIT;

function compare(a: Val, b: Val, convfmt: string): number {
  if (isNumeric(a) && isNumeric(b)) {
    const x = toNumber(a);
    const y = toNumber(b);
    return x < y ? -1 : x > y ? 1 : x === y ? 0 : 1;
  }
  const x = toStr(a, convfmt);
  const y = toStr(b, convfmt);
  return x < y ? -1 : x > y ? 1 : 0;
}

const truthy = (v: Val): boolean => (v.n !== undefined ? v.n !== 0 : v === UNINIT ? false : v.strnum ? toNumber(v) !== 0 : v.s !== '');

// ---------------------------------------------------------------- printf

function sprintf(format: string, args: Val[], convfmt: string): string {
  let out = '';
  let k = 0;
  const next = (): Val => args[k++] ?? UNINIT;
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const m = /^%([-+ #0]*)(\*|\d*)(?:\.(\*|\d*))?([a-zA-Z%]?)/.exec(format.slice(i))!;
    i += m[0].length - 1;
    let flags = m[1]!;
    let width = m[2] === '*' ? Math.trunc(toNumber(next())) : m[2] ? Number(m[2]) : 0;
    if (width < 0) {
      flags += '-';
      width = -width;
    }
    const prec = m[3] === undefined ? null : m[3] === '*' ? Math.trunc(toNumber(next())) : m[3] === '' ? 0 : Number(m[3]);
    const conv = m[4]!;
    if (width > LIMITS.fieldWidth || (prec ?? 0) > LIMITS.fieldWidth) throw new ToolLimitError('awk', 'a printf field width');
    const pad = (s: string, zero: boolean): string => {
      if (s.length >= width) return s;
      if (flags.includes('-')) return s.padEnd(width);
      if (zero && flags.includes('0')) {
        const sign = /^[+\- ]|^0[xX]/.exec(s)?.[0] ?? '';
        return sign + s.slice(sign.length).padStart(width - sign.length, '0');
      }
      return s.padStart(width);
    };
    const signed = (x: number, body: string) => (x < 0 || Object.is(x, -0) ? '-' : flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '') + body;
    switch (conv) {
      case '%':
        out += '%';
        break;
      case '':
        out += m[0];
        break;
      case 's': {
        const s = toStr(next(), convfmt);
        out += pad(prec === null ? s : s.slice(0, prec), false);
        break;
      }
      case 'c': {
        const v = next();
        const s = v.n !== undefined ? String.fromCharCode(Math.trunc(v.n) & 0xffff) : v.s.slice(0, 1);
        out += pad(s, false);
        break;
      }
      case 'd':
      case 'i': {
        const x = Math.trunc(toNumber(next()));
        let body = Math.abs(x).toString();
        if (!Number.isFinite(x)) body = Math.abs(x) === Infinity ? 'inf' : 'nan';
        if (prec !== null) body = prec === 0 && x === 0 ? '' : body.padStart(prec, '0');
        out += pad(signed(x, body), prec === null);
        break;
      }
      case 'o':
      case 'x':
      case 'X':
      case 'u': {
        let x = Math.trunc(toNumber(next()));
        if (x < 0) x = Number(BigInt.asUintN(64, BigInt(x)));
        let body = x.toString(conv === 'o' ? 8 : conv === 'u' ? 10 : 16);
        if (conv === 'X') body = body.toUpperCase();
        if (prec !== null) body = prec === 0 && x === 0 ? '' : body.padStart(prec, '0');
        if (flags.includes('#') && x !== 0) body = conv === 'o' ? '0' + body : conv === 'x' ? '0x' + body : conv === 'X' ? '0X' + body : body;
        out += pad(body, prec === null);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        const x = toNumber(next());
        const p = prec ?? 6;
        let body: string;
        const ax = Math.abs(x);
        if (!Number.isFinite(x)) body = Number.isNaN(x) ? 'nan' : 'inf';
        else if (conv === 'f' || conv === 'F') body = ax.toFixed(p);
        else if (conv === 'e' || conv === 'E') {
          const [mant, e] = ax.toExponential(p).split('e') as [string, string];
          body = `${mant}e${e[0] === '-' ? '-' : '+'}${e.replace(/^[+-]/, '').padStart(2, '0')}`;
        } else body = formatG(ax, p, flags.includes('#'));
        if (conv === 'E' || conv === 'G' || conv === 'F') body = body.toUpperCase();
        out += pad(signed(x, body), Number.isFinite(x));
        break;
      }
      default:
        throw new UnsupportedToolError('awk', `the printf conversion %${conv}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- lexer

type Tok = { t: string; v: string; nl?: boolean };

const KEYWORDS = new Set(['BEGIN', 'END', 'if', 'else', 'while', 'for', 'do', 'break', 'continue', 'next', 'nextfile', 'exit', 'print', 'printf', 'delete', 'in', 'getline', 'function', 'func', 'return', 'BEGINFILE', 'ENDFILE']);
const BUILTINS = new Set(['length', 'substr', 'index', 'split', 'sub', 'gsub', 'match', 'sprintf', 'tolower', 'toupper', 'int', 'sqrt', 'exp', 'log', 'sin', 'cos', 'atan2', 'rand', 'srand', 'system', 'close', 'fflush', 'gensub', 'patsplit', 'asort', 'asorti', 'strftime', 'systime', 'mktime', 'and', 'or', 'xor', 'lshift', 'rshift', 'compl', 'strtonum', 'isarray', 'typeof']);

function unescapeAwk(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const e = s[++i]!;
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', '/': '/', a: '\x07', b: '\b', f: '\f', v: '\v' };
    if (e in simple) out += simple[e];
    else if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i))![0];
      out += String.fromCharCode(parseInt(m, 8));
      i += m.length - 1;
    } else out += '\\' + e; // gawk keeps the backslash (and warns)
  }
  return out;
}

function lex(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const regexAllowed = () => {
    const p = toks[toks.length - 1];
    if (!p) return true;
    if (p.t === 'num' || p.t === 'str' || p.t === 'ere' || p.t === 'name' || p.t === 'builtin' || p.t === 'funcname') return false;
    if (p.t === ')' || p.t === ']' || p.t === '$' || p.t === 'incr') return false;
    if (p.t === 'kw') return !['getline'].includes(p.v);
    return true;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && src[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '\\' && src[i + 1] === '\r' && src[i + 2] === '\n') {
      i += 3;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '\n') {
      toks.push({ t: 'nl', v: '\n' });
      i++;
      continue;
    }
    if (/\d/.test(c) || (c === '.' && /\d/.test(src[i + 1] ?? ''))) {
      const m = /^(?:0[xX][0-9a-fA-F]+|\d*\.?\d*(?:[eE][+-]?\d+)?)/.exec(src.slice(i))!;
      toks.push({ t: 'num', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_]\w*/.exec(src.slice(i))![0];
      i += m.length;
      if (KEYWORDS.has(m)) toks.push({ t: 'kw', v: m });
      else if (BUILTINS.has(m)) toks.push({ t: 'builtin', v: m });
      else toks.push({ t: src[i] === '(' ? 'funcname' : 'name', v: m });
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let raw = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\n') throw new AwkSyntaxError('unterminated string');
        if (src[j] === '\\' && j + 1 < src.length) {
          if (src[j + 1] === '\n') {
            j += 2;
            continue;
          }
          raw += src[j]! + src[j + 1]!;
          j += 2;
          continue;
        }
        raw += src[j++];
      }
      if (j >= src.length) throw new AwkSyntaxError('unterminated string');
      toks.push({ t: 'str', v: unescapeAwk(raw) });
      i = j + 1;
      continue;
    }
    if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let raw = '';
      let inBracket = false;
      while (j < src.length && (src[j] !== '/' || inBracket)) {
        if (src[j] === '\n') throw new AwkSyntaxError('unterminated regexp');
        if (src[j] === '\\' && j + 1 < src.length) {
          raw += src[j + 1] === '/' ? '/' : src[j]! + src[j + 1]!;
          j += 2;
          continue;
        }
        if (src[j] === '[' && !inBracket) {
          inBracket = true;
          raw += src[j++];
          if (src[j] === '^') raw += src[j++];
          if (src[j] === ']') raw += src[j++];
          continue;
        }
        if (src[j] === '[' && src[j + 1] === ':') {
          const k = src.indexOf(':]', j + 2);
          if (k > 0) {
            raw += src.slice(j, k + 2);
            j = k + 2;
            continue;
          }
        }
        if (src[j] === ']') inBracket = false;
        raw += src[j++];
      }
      if (j >= src.length) throw new AwkSyntaxError('unterminated regexp');
      toks.push({ t: 'ere', v: raw });
      i = j + 1;
      continue;
    }
    const three = src.slice(i, i + 3);
    const two = src.slice(i, i + 2);
    if (three === '**=') {
      toks.push({ t: '^=', v: three });
      i += 3;
      continue;
    }
    if (['+=', '-=', '*=', '/=', '%=', '^=', '==', '<=', '>=', '!=', '&&', '||', '>>', '!~', '**'].includes(two)) {
      toks.push({ t: two === '**' ? '^' : two, v: two });
      i += 2;
      continue;
    }
    if (two === '++' || two === '--') {
      toks.push({ t: 'incr', v: two });
      i += 2;
      continue;
    }
    if ('{}()[];,+-*/%^!<>|?:~$='.includes(c)) {
      toks.push({ t: c, v: c });
      i++;
      continue;
    }
    throw new AwkSyntaxError(`invalid char '${c}' in expression`);
  }
  toks.push({ t: 'eof', v: '' });
  return toks;
}

// ---------------------------------------------------------------- AST

type Expr =
  | { k: 'num'; v: number }
  | { k: 'str'; v: string }
  | { k: 'ere'; src: string }
  | { k: 'var'; name: string }
  | { k: 'index'; name: string; subs: Expr[] }
  | { k: 'field'; e: Expr }
  | { k: 'assign'; op: string; target: Expr; e: Expr }
  | { k: 'cond'; c: Expr; a: Expr; b: Expr }
  | { k: 'or' | 'and'; a: Expr; b: Expr }
  | { k: 'in'; subs: Expr[]; name: string }
  | { k: 'match'; neg: boolean; a: Expr; re: Expr }
  | { k: 'cmp'; op: string; a: Expr; b: Expr }
  | { k: 'concat'; a: Expr; b: Expr }
  | { k: 'arith'; op: string; a: Expr; b: Expr }
  | { k: 'unary'; op: string; e: Expr }
  | { k: 'incdec'; op: string; prefix: boolean; target: Expr }
  | { k: 'call'; name: string; args: Expr[] }
  | { k: 'group'; e: Expr };

type Stmt =
  | { k: 'expr'; e: Expr }
  | { k: 'print'; args: Expr[] }
  | { k: 'printf'; args: Expr[] }
  | { k: 'if'; c: Expr; a: Stmt; b?: Stmt }
  | { k: 'while'; c: Expr; body: Stmt }
  | { k: 'do'; c: Expr; body: Stmt }
  | { k: 'for'; init?: Stmt; c?: Expr; step?: Stmt; body: Stmt }
  | { k: 'forin'; v: string; arr: string; body: Stmt }
  | { k: 'block'; body: Stmt[] }
  | { k: 'next' }
  | { k: 'exit'; e?: Expr }
  | { k: 'break' }
  | { k: 'continue' }
  | { k: 'delete'; name: string; subs?: Expr[] };

interface Item {
  kind: 'begin' | 'end' | 'main';
  pattern?: Expr;
  range?: [Expr, Expr];
  inRange?: boolean;
  action?: Stmt[];
}

// ---------------------------------------------------------------- parser

class Parser {
  private p = 0;
  /** Inside print's argument list, an unparenthesized `>` is a redirection. */
  private noGt = 0;
  private noIn = 0;

  constructor(private readonly toks: Tok[]) {}

  private peek(o = 0): Tok {
    return this.toks[this.p + o]!;
  }

  private is(t: string, v?: string): boolean {
    const k = this.peek();
    return k.t === t && (v === undefined || k.v === v);
  }

  private eat(t: string, v?: string): Tok {
    if (!this.is(t, v)) {
      const k = this.peek();
      throw new AwkSyntaxError(`syntax error at ${k.t === 'eof' ? 'end of source' : `'${k.v.replace('\n', '\\n')}'`}`);
    }
    return this.toks[this.p++]!;
  }

  private optNewlines(): void {
    while (this.is('nl')) this.p++;
  }

  program(): Item[] {
    const items: Item[] = [];
    this.terminators();
    while (!this.is('eof')) {
      if (this.is('kw', 'function') || this.is('kw', 'func')) throw new UnsupportedToolError('awk', 'user-defined functions');
      if (this.is('kw', 'BEGINFILE') || this.is('kw', 'ENDFILE')) throw new UnsupportedToolError('awk', this.peek().v);
      if (this.is('kw', 'BEGIN') || this.is('kw', 'END')) {
        const kind = this.eat('kw').v === 'BEGIN' ? 'begin' : 'end';
        this.optNewlines();
        items.push({ kind, action: this.block() });
      } else {
        const item: Item = { kind: 'main' };
        if (!this.is('{')) {
          const a = this.expr();
          if (this.is(',')) {
            this.p++;
            this.optNewlines();
            item.range = [a, this.expr()];
          } else item.pattern = a;
        }
        if (this.is('{')) item.action = this.block();
        items.push(item);
      }
      this.terminators();
    }
    return items;
  }

  private terminators(): void {
    while (this.is('nl') || this.is(';')) this.p++;
  }

  private block(): Stmt[] {
    this.eat('{');
    const body: Stmt[] = [];
    this.terminators();
    while (!this.is('}')) {
      body.push(this.statement());
      this.terminators();
    }
    this.eat('}');
    return body;
  }

  private simpleEnd(): void {
    if (this.is(';') || this.is('nl')) {
      this.p++;
      return;
    }
    if (this.is('}') || this.is('eof')) return;
    this.eat(';');
  }

  private statement(): Stmt {
    this.optNewlines();
    const t = this.peek();
    if (t.t === '{') return { k: 'block', body: this.block() };
    if (t.t === ';') {
      this.p++;
      return { k: 'block', body: [] };
    }
    if (t.t === 'kw') {
      switch (t.v) {
        case 'if': {
          this.p++;
          this.eat('(');
          const c = this.expr();
          this.eat(')');
          this.optNewlines();
          const a = this.statement();
          const save = this.p;
          this.terminators();
          if (this.is('kw', 'else')) {
            this.p++;
            this.optNewlines();
            return { k: 'if', c, a, b: this.statement() };
          }
          this.p = save;
          return { k: 'if', c, a };
        }
        case 'while': {
          this.p++;
          this.eat('(');
          const c = this.expr();
          this.eat(')');
          if (this.is(';')) {
            this.p++;
            return { k: 'while', c, body: { k: 'block', body: [] } };
          }
          this.optNewlines();
          return { k: 'while', c, body: this.statement() };
        }
        case 'do': {
          this.p++;
          this.optNewlines();
          const body = this.statement();
          this.terminators();
          this.eat('kw', 'while');
          this.eat('(');
          const c = this.expr();
          this.eat(')');
          this.simpleEnd();
          return { k: 'do', c, body };
        }
        case 'for': {
          this.p++;
          this.eat('(');
          if (this.is('name') && this.peek(1).t === 'kw' && this.peek(1).v === 'in' && this.peek(2).t === 'name' && this.peek(3).t === ')') {
            const v = this.eat('name').v;
            this.p++;
            const arr = this.eat('name').v;
            this.eat(')');
            this.optNewlines();
            return { k: 'forin', v, arr, body: this.statement() };
          }
          const init = this.is(';') ? undefined : ({ k: 'expr', e: this.expr() } as Stmt);
          this.eat(';');
          this.optNewlines();
          const c = this.is(';') ? undefined : this.expr();
          this.eat(';');
          this.optNewlines();
          const step = this.is(')') ? undefined : ({ k: 'expr', e: this.expr() } as Stmt);
          this.eat(')');
          if (this.is(';')) {
            this.p++;
            return { k: 'for', init, c, step, body: { k: 'block', body: [] } };
          }
          this.optNewlines();
          return { k: 'for', init, c, step, body: this.statement() };
        }
        case 'break':
        case 'continue':
        case 'next':
          this.p++;
          this.simpleEnd();
          return { k: t.v } as Stmt;
        case 'nextfile':
          throw new UnsupportedToolError('awk', 'nextfile');
        case 'exit': {
          this.p++;
          const e = this.is(';') || this.is('nl') || this.is('}') || this.is('eof') ? undefined : this.expr();
          this.simpleEnd();
          return { k: 'exit', e };
        }
        case 'delete': {
          this.p++;
          const name = this.eat('name').v;
          let subs: Expr[] | undefined;
          if (this.is('[')) subs = this.subscripts();
          this.simpleEnd();
          return { k: 'delete', name, subs };
        }
        case 'print':
        case 'printf': {
          this.p++;
          let args: Expr[] = [];
          this.noGt++;
          try {
            if (!(this.is(';') || this.is('nl') || this.is('}') || this.is('eof') || this.is('>') || this.is('|') || this.is('>>'))) {
              if (this.is('(')) {
                // print (a, b) or print (a) b: try a parenthesized list first.
                const save = this.p;
                this.p++;
                this.noGt--;
                try {
                  const list = [this.expr()];
                  while (this.is(',')) {
                    this.p++;
                    this.optNewlines();
                    list.push(this.expr());
                  }
                  this.eat(')');
                  if (this.is(';') || this.is('nl') || this.is('}') || this.is('eof') || this.is('>') || this.is('|') || this.is('>>')) args = list;
                  else throw new AwkSyntaxError('not a list');
                } catch {
                  this.p = save;
                  args = [];
                } finally {
                  this.noGt++;
                }
              }
              if (args.length === 0) {
                args.push(this.expr());
                while (this.is(',')) {
                  this.p++;
                  this.optNewlines();
                  args.push(this.expr());
                }
              }
            }
          } finally {
            this.noGt--;
          }
          if (this.is('>') || this.is('>>') || this.is('|')) throw new UnsupportedToolError('awk', 'output redirection');
          this.simpleEnd();
          if (t.v === 'printf' && args.length === 0) throw new AwkSyntaxError('printf: no format');
          return { k: t.v as 'print' | 'printf', args };
        }
        case 'getline':
          throw new UnsupportedToolError('awk', 'getline');
        case 'return':
          throw new UnsupportedToolError('awk', 'return');
      }
    }
    const e = this.expr();
    this.simpleEnd();
    return { k: 'expr', e };
  }

  private subscripts(): Expr[] {
    this.eat('[');
    this.noIn++;
    const subs = [this.expr()];
    while (this.is(',')) {
      this.p++;
      this.optNewlines();
      subs.push(this.expr());
    }
    this.noIn--;
    this.eat(']');
    return subs;
  }

  expr(): Expr {
    return this.ternary();
  }

  private isLvalue(e: Expr): boolean {
    return e.k === 'var' || e.k === 'index' || e.k === 'field';
  }

  private ternary(): Expr {
    const c = this.or();
    if (this.is('?')) {
      this.p++;
      this.optNewlines();
      const a = this.ternary();
      this.optNewlines();
      this.eat(':');
      this.optNewlines();
      return { k: 'cond', c, a, b: this.ternary() };
    }
    if (this.isLvalue(c) && ['=', '+=', '-=', '*=', '/=', '%=', '^='].includes(this.peek().t)) {
      const op = this.toks[this.p++]!.t;
      this.optNewlines();
      return { k: 'assign', op, target: c, e: this.ternary() };
    }
    return c;
  }

  private or(): Expr {
    let a = this.and();
    while (this.is('||')) {
      this.p++;
      this.optNewlines();
      a = { k: 'or', a, b: this.and() };
    }
    return a;
  }

  private and(): Expr {
    let a = this.inExpr();
    while (this.is('&&')) {
      this.p++;
      this.optNewlines();
      a = { k: 'and', a, b: this.inExpr() };
    }
    return a;
  }

  private inExpr(): Expr {
    let a = this.matchExpr();
    while (this.noIn === 0 && this.is('kw', 'in')) {
      this.p++;
      const name = this.eat('name').v;
      a = { k: 'in', subs: a.k === 'group' && (a as { list?: Expr[] }).list ? (a as unknown as { list: Expr[] }).list : [a], name };
    }
    return a;
  }

  private matchExpr(): Expr {
    let a = this.comparison();
    while (this.is('~') || this.is('!~')) {
      const neg = this.toks[this.p++]!.t === '!~';
      a = { k: 'match', neg, a, re: this.comparison() };
    }
    return a;
  }

  private comparison(): Expr {
    const a = this.concat();
    const t = this.peek().t;
    if (['<', '<=', '==', '!=', '>='].includes(t) || (t === '>' && this.noGt === 0)) {
      this.p++;
      return { k: 'cmp', op: t, a, b: this.concat() };
    }
    return a;
  }

  private startsPrimary(): boolean {
    const t = this.peek();
    if (t.t === 'kw') return t.v === 'getline';
    return ['num', 'str', 'ere', 'name', 'builtin', 'funcname', '$', '!', '(', '-', '+', 'incr'].includes(t.t);
  }

  private concat(): Expr {
    let a = this.additive();
    while (this.startsPrimary() && !this.is('kw', 'in')) {
      if (this.is('kw', 'getline')) throw new UnsupportedToolError('awk', 'getline');
      a = { k: 'concat', a, b: this.additive() };
    }
    return a;
  }

  private additive(): Expr {
    let a = this.multiplicative();
    while (this.is('+') || this.is('-')) {
      const op = this.toks[this.p++]!.t;
      a = { k: 'arith', op, a, b: this.multiplicative() };
    }
    return a;
  }

  private multiplicative(): Expr {
    let a = this.unary();
    while (this.is('*') || this.is('/') || this.is('%')) {
      const op = this.toks[this.p++]!.t;
      a = { k: 'arith', op, a, b: this.unary() };
    }
    return a;
  }

  private unary(): Expr {
    if (this.is('!')) {
      this.p++;
      return { k: 'unary', op: '!', e: this.unary() };
    }
    if (this.is('-') || this.is('+')) {
      const op = this.toks[this.p++]!.t;
      return { k: 'unary', op, e: this.unary() };
    }
    return this.power();
  }

  private power(): Expr {
    const a = this.postfix();
    if (this.is('^')) {
      this.p++;
      // Right associative; the exponent may carry a unary sign.
      const b = this.is('-') || this.is('+') || this.is('!') ? this.unary() : this.power();
      return { k: 'arith', op: '^', a, b };
    }
    return a;
  }

  private postfix(): Expr {
    if (this.is('incr')) {
      const op = this.toks[this.p++]!.v;
      const target = this.postfix();
      if (!this.isLvalue(target)) throw new AwkSyntaxError(`syntax error at '${op}'`);
      return { k: 'incdec', op, prefix: true, target };
    }
    const e = this.primary();
    if (this.isLvalue(e) && this.is('incr')) {
      const op = this.toks[this.p++]!.v;
      return { k: 'incdec', op, prefix: false, target: e };
    }
    return e;
  }

  private primary(): Expr {
    const t = this.peek();
    switch (t.t) {
      case 'num':
        this.p++;
        return { k: 'num', v: /^0[xX]/.test(t.v) ? 0 : Number(t.v) };
      case 'str':
        this.p++;
        return { k: 'str', v: t.v };
      case 'ere':
        this.p++;
        return { k: 'ere', src: t.v };
      case '$': {
        this.p++;
        return { k: 'field', e: this.is('incr') ? this.postfix() : this.primary() };
      }
      case '(': {
        this.p++;
        this.noGt++;
        this.noGt--;
        const saveGt = this.noGt;
        this.noGt = 0;
        const saveIn = this.noIn;
        this.noIn = 0;
        const e = this.expr();
        if (this.is(',')) {
          // (i, j) in arr
          const list = [e];
          while (this.is(',')) {
            this.p++;
            list.push(this.expr());
          }
          this.eat(')');
          this.noGt = saveGt;
          this.noIn = saveIn;
          if (!this.is('kw', 'in')) throw new AwkSyntaxError("syntax error at ')'");
          this.p++;
          return { k: 'in', subs: list, name: this.eat('name').v };
        }
        this.eat(')');
        this.noGt = saveGt;
        this.noIn = saveIn;
        return { k: 'group', e };
      }
      case 'name': {
        this.p++;
        if (this.is('[')) return { k: 'index', name: t.v, subs: this.subscripts() };
        return { k: 'var', name: t.v };
      }
      case 'funcname':
        throw new UnsupportedToolError('awk', `user-defined function ${t.v}()`);
      case 'builtin': {
        this.p++;
        const name = t.v;
        const args: Expr[] = [];
        if (this.is('(')) {
          this.p++;
          const saveGt = this.noGt;
          this.noGt = 0;
          this.optNewlines();
          if (!this.is(')')) {
            args.push(this.expr());
            while (this.is(',')) {
              this.p++;
              this.optNewlines();
              args.push(this.expr());
            }
          }
          this.eat(')');
          this.noGt = saveGt;
        } else if (name !== 'length') throw new AwkSyntaxError(`syntax error at '${name}'`);
        return { k: 'call', name, args };
      }
      case 'kw':
        if (t.v === 'getline') throw new UnsupportedToolError('awk', 'getline');
    }
    throw new AwkSyntaxError(`syntax error at ${t.t === 'eof' ? 'end of source' : `'${t.v.replace('\n', '\\n')}'`}`);
  }
}

// ---------------------------------------------------------------- interpreter

const SPECIAL_NUM = new Set(['NR', 'NF', 'FNR', 'RSTART', 'RLENGTH']);

class Awk {
  private vars = new Map<string, Val>();
  private arrays = new Map<string, Map<string, Val>>();
  private fields: string[] = [''];
  private fieldVals: (Val | null)[] = [null];
  private nf = 0;
  private out = '';
  private regexCache = new Map<string, Regex>();

  constructor(
    private readonly budget: Budget,
    private readonly ctx: ToolContext,
  ) {
    this.vars.set('FS', str(' '));
    this.vars.set('OFS', str(' '));
    this.vars.set('ORS', str('\n'));
    this.vars.set('RS', str('\n'));
    this.vars.set('SUBSEP', str('\x1c'));
    this.vars.set('CONVFMT', str('%.6g'));
    this.vars.set('OFMT', str('%.6g'));
    this.vars.set('NR', num(0));
    this.vars.set('FNR', num(0));
    this.vars.set('NF', num(0));
    this.vars.set('RSTART', num(0));
    this.vars.set('RLENGTH', num(0));
    this.vars.set('FILENAME', str(''));
  }

  get output(): string {
    return this.out;
  }

  private convfmt(): string {
    return toStr(this.vars.get('CONVFMT')!, '%.6g');
  }

  private s(v: Val): string {
    return toStr(v, this.convfmt());
  }

  getVar(name: string): Val {
    if (name === 'NF') return num(this.nf);
    if (this.arrays.has(name)) throw new AwkFatal(`attempt to use array \`${name}' in a scalar context`);
    return this.vars.get(name) ?? UNINIT;
  }

  setVar(name: string, v: Val): void {
    if (this.arrays.has(name)) throw new AwkFatal(`attempt to use array \`${name}' in a scalar context`);
    if (name === 'NF') {
      this.setNF(Math.trunc(toNumber(v)));
      return;
    }
    this.vars.set(name, SPECIAL_NUM.has(name) ? num(toNumber(v)) : v);
  }

  private array(name: string): Map<string, Val> {
    if (this.vars.has(name)) throw new AwkFatal(`attempt to use scalar \`${name}' as an array`);
    let a = this.arrays.get(name);
    if (!a) {
      a = new Map();
      this.arrays.set(name, a);
    }
    return a;
  }

  private regex(src: string): Regex {
    let r = this.regexCache.get(src);
    if (!r) {
      try {
        r = compileRegex(src, 'awk', { command: 'awk' }).regex;
      } catch (e) {
        if (e instanceof RegexSyntaxError) throw new AwkFatal(`${e.message}: /${src}/`);
        if (e instanceof UnsupportedRegexError) throw new UnsupportedToolError('awk', e.message);
        throw e;
      }
      this.regexCache.set(src, r);
    }
    return r;
  }

  private regexOf(e: Expr): Regex {
    return this.regex(e.k === 'ere' ? e.src : this.s(this.eval(e)));
  }

  // ---- records and fields

  setRecord(text: string): void {
    this.fields = [text];
    this.fieldVals = [strnum(text)];
    const parts = this.split(text, this.s(this.vars.get('FS')!));
    this.fields.push(...parts);
    for (const p of parts) this.fieldVals.push(strnum(p));
    this.nf = parts.length;
  }

  split(text: string, fs: string): string[] {
    if (text === '') return [];
    if (fs === ' ') return text.split(/[ \t\n]+/).filter((x, k, a) => x !== '' || (k > 0 && k < a.length - 1));
    if (fs === '') return [...text];
    if (fs.length === 1 && fs !== '\\') return text.split(fs);
    const re = this.regex(fs);
    const parts: string[] = [];
    let pos = 0;
    let from = 0;
    while (from <= text.length) {
      const m = re.exec(text, from, this.budget);
      if (!m) break;
      if (m.end === m.start) {
        from = m.start + 1;
        continue;
      }
      parts.push(text.slice(pos, m.start));
      pos = from = m.end;
    }
    parts.push(text.slice(pos));
    return parts;
  }

  private rebuild(): void {
    const ofs = this.s(this.vars.get('OFS')!);
    this.fields[0] = this.fields.slice(1, this.nf + 1).join(ofs);
    this.fieldVals[0] = strnum(this.fields[0]);
  }

  private setNF(n: number): void {
    if (n < 0) throw new AwkFatal(`NF set to negative value`);
    if (n > 100000) throw new ToolLimitError('awk', `NF of ${n}`);
    for (let k = this.nf + 1; k <= n; k++) {
      this.fields[k] = '';
      this.fieldVals[k] = UNINIT;
    }
    this.fields.length = n + 1;
    this.fieldVals.length = n + 1;
    this.nf = n;
    this.rebuild();
  }

  getField(i: number): Val {
    if (i < 0) throw new AwkFatal(`attempt to access field ${i}`);
    if (i > this.nf) return UNINIT;
    return this.fieldVals[i] ?? strnum(this.fields[i]!);
  }

  setField(i: number, v: Val): void {
    if (i < 0) throw new AwkFatal(`attempt to access field ${i}`);
    if (i > 100000) throw new ToolLimitError('awk', `field $${i}`);
    if (i === 0) {
      this.setRecord(this.s(v));
      return;
    }
    if (i > this.nf) this.setNF(i);
    this.fields[i] = this.s(v);
    this.fieldVals[i] = v.n !== undefined ? v : { s: v.s, strnum: v.strnum };
    this.rebuild();
  }

  // ---- evaluation

  private assignTo(target: Expr, v: Val): Val {
    if (target.k === 'var') this.setVar(target.name, v);
    else if (target.k === 'index') this.array(target.name).set(this.subscript(target.subs), v);
    else if (target.k === 'field') this.setField(Math.trunc(toNumber(this.eval(target.e))), v);
    return v;
  }

  private subscript(subs: Expr[]): string {
    return subs.map((e) => this.s(this.eval(e))).join(this.s(this.vars.get('SUBSEP')!));
  }

  eval(e: Expr): Val {
    switch (e.k) {
      case 'num':
        return num(e.v);
      case 'str':
        return str(e.v);
      case 'ere':
        return num(this.regex(e.src).exec(this.fields[0]!, 0, this.budget) ? 1 : 0);
      case 'group':
        return this.eval(e.e);
      case 'var':
        return this.getVar(e.name);
      case 'index': {
        const a = this.array(e.name);
        const k = this.subscript(e.subs);
        let v = a.get(k);
        if (!v) {
          v = UNINIT;
          a.set(k, v);
        }
        return v;
      }
      case 'field':
        return this.getField(Math.trunc(toNumber(this.eval(e.e))));
      case 'assign': {
        if (e.op === '=') {
          const v = this.eval(e.e);
          return this.assignTo(e.target, v.n !== undefined ? v : { s: v.s, strnum: v.strnum });
        }
        const rhs = toNumber(this.eval(e.e));
        const cur = toNumber(this.eval(e.target));
        return this.assignTo(e.target, num(this.arith(e.op[0]!, cur, rhs)));
      }
      case 'cond':
        return truthy(this.eval(e.c)) ? this.eval(e.a) : this.eval(e.b);
      case 'or':
        return num(truthy(this.eval(e.a)) || truthy(this.eval(e.b)) ? 1 : 0);
      case 'and':
        return num(truthy(this.eval(e.a)) && truthy(this.eval(e.b)) ? 1 : 0);
      case 'in':
        return num(this.array(e.name).has(this.subscript(e.subs)) ? 1 : 0);
      case 'match': {
        const s = this.s(this.eval(e.a));
        const hit = this.regexOf(e.re).exec(s, 0, this.budget) !== null;
        return num(hit !== e.neg ? 1 : 0);
      }
      case 'cmp': {
        const c = compare(this.eval(e.a), this.eval(e.b), this.convfmt());
        const r = { '<': c < 0, '<=': c <= 0, '==': c === 0, '!=': c !== 0, '>=': c >= 0, '>': c > 0 }[e.op]!;
        return num(r ? 1 : 0);
      }
      case 'concat': {
        const s = this.s(this.eval(e.a)) + this.s(this.eval(e.b));
        if (s.length > LIMITS.outputChars) throw new ToolLimitError('awk', 'a string');
        return str(s);
      }
      case 'arith':
        return num(this.arith(e.op, toNumber(this.eval(e.a)), toNumber(this.eval(e.b))));
      case 'unary': {
        const v = this.eval(e.e);
        if (e.op === '!') return num(truthy(v) ? 0 : 1);
        const n = toNumber(v);
        return num(e.op === '-' ? -n : n);
      }
      case 'incdec': {
        const old = toNumber(this.eval(e.target));
        const nv = e.op === '++' ? old + 1 : old - 1;
        this.assignTo(e.target, num(nv));
        return num(e.prefix ? nv : old);
      }
      case 'call':
        return this.call(e.name, e.args);
    }
  }

  private arith(op: string, a: number, b: number): number {
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '/':
        if (b === 0) throw new AwkFatal('division by zero attempted');
        return a / b;
      case '%':
        if (b === 0) throw new AwkFatal('division by zero attempted in `%\'');
        return a % b;
      default:
        return Math.pow(a, b);
    }
  }

  private call(name: string, args: Expr[]): Val {
    const arg = (k: number) => this.eval(args[k]!);
    const need = (lo: number, hi: number) => {
      if (args.length < lo || args.length > hi) throw new AwkSyntaxError(`${name}: called with ${args.length} arguments`);
    };
    switch (name) {
      case 'length': {
        need(0, 1);
        if (args.length === 0) return num(this.fields[0]!.length);
        const a = args[0]!;
        if (a.k === 'var' && this.arrays.has(a.name)) return num(this.arrays.get(a.name)!.size);
        return num(this.s(arg(0)).length);
      }
      case 'substr': {
        need(2, 3);
        const s = this.s(arg(0));
        // gawk: positions are rounded; characters from round(m) for round(n), clipped to the string.
        const round = (x: number) => (Number.isFinite(x) ? Math.round(x) - (Math.abs(x % 1) === 0.5 && Math.round(x) % 2 !== 0 ? 1 : 0) : x);
        let start = round(toNumber(arg(1)));
        let len = args.length > 2 ? toNumber(arg(2)) : Infinity;
        if (args.length > 2) len = round(len);
        if (Number.isNaN(start) || Number.isNaN(len)) return str('');
        let end = len === Infinity ? Infinity : start + len;
        if (start < 1) start = 1;
        if (end > s.length + 1) end = s.length + 1;
        return str(end <= start ? '' : s.slice(start - 1, end - 1));
      }
      case 'index': {
        need(2, 2);
        return num(this.s(arg(0)).indexOf(this.s(arg(1))) + 1);
      }
      case 'split': {
        need(2, 3);
        const s = this.s(arg(0));
        const target = args[1]!;
        if (target.k !== 'var') throw new AwkSyntaxError('split: second argument is not an array');
        const fs = args.length > 2 ? (args[2]!.k === 'ere' ? null : this.s(arg(2))) : this.s(this.vars.get('FS')!);
        const parts = fs === null ? this.splitRe(s, (args[2] as { src: string }).src) : this.split(s, fs);
        this.vars.delete(target.name);
        const a = this.array(target.name);
        a.clear();
        parts.forEach((p, k) => a.set(String(k + 1), strnum(p)));
        return num(parts.length);
      }
      case 'sub':
      case 'gsub': {
        need(2, 3);
        const re = this.regexOf(args[0]!);
        const repl = this.s(arg(1));
        const target: Expr = args[2] ?? { k: 'field', e: { k: 'num', v: 0 } };
        if (target.k !== 'var' && target.k !== 'index' && target.k !== 'field') throw new AwkSyntaxError(`${name}: third argument is not a variable`);
        const text = this.s(this.eval(target));
        const [result, count] = this.substitute(re, repl, text, name === 'gsub');
        if (count > 0) this.assignTo(target, str(result));
        return num(count);
      }
      case 'match': {
        need(2, 2);
        const s = this.s(arg(0));
        const m = this.regexOf(args[1]!).exec(s, 0, this.budget);
        this.vars.set('RSTART', num(m ? m.start + 1 : 0));
        this.vars.set('RLENGTH', num(m ? m.end - m.start : -1));
        return num(m ? m.start + 1 : 0);
      }
      case 'sprintf':
        if (args.length === 0) throw new AwkSyntaxError('sprintf: no format');
        return str(sprintf(this.s(arg(0)), args.slice(1).map((a) => this.eval(a)), this.convfmt()));
      case 'tolower':
        need(1, 1);
        return str(this.s(arg(0)).replace(/[A-Z]+/g, (x) => x.toLowerCase()));
      case 'toupper':
        need(1, 1);
        return str(this.s(arg(0)).replace(/[a-z]+/g, (x) => x.toUpperCase()));
      case 'int':
        need(1, 1);
        return num(Math.trunc(toNumber(arg(0))));
      case 'sqrt':
        need(1, 1);
        return num(Math.sqrt(toNumber(arg(0))));
      case 'exp':
        need(1, 1);
        return num(Math.exp(toNumber(arg(0))));
      case 'log':
        need(1, 1);
        return num(Math.log(toNumber(arg(0))));
      case 'sin':
        need(1, 1);
        return num(Math.sin(toNumber(arg(0))));
      case 'cos':
        need(1, 1);
        return num(Math.cos(toNumber(arg(0))));
      case 'atan2':
        need(2, 2);
        return num(Math.atan2(toNumber(arg(0)), toNumber(arg(1))));
      default:
        throw new UnsupportedToolError('awk', `the function ${name}()`);
    }
  }

  private splitRe(s: string, src: string): string[] {
    if (s === '') return [];
    const re = this.regex(src);
    const parts: string[] = [];
    let pos = 0;
    let from = 0;
    while (from <= s.length) {
      const m = re.exec(s, from, this.budget);
      if (!m) break;
      if (m.end === m.start) {
        from = m.start + 1;
        continue;
      }
      parts.push(s.slice(pos, m.start));
      pos = from = m.end;
    }
    parts.push(s.slice(pos));
    return parts;
  }

  /** sub/gsub: `&` is the match, `\&` a literal &, `\\` one backslash (gawk's POSIX rules). */
  private substitute(re: Regex, repl: string, text: string, global: boolean): [string, number] {
    const expand = (matched: string) => {
      let r = '';
      for (let i = 0; i < repl.length; i++) {
        const c = repl[i]!;
        if (c === '\\' && repl[i + 1] === '\\') {
          r += '\\';
          i++;
        } else if (c === '\\' && repl[i + 1] === '&') {
          r += '&';
          i++;
        } else if (c === '&') r += matched;
        else r += c;
      }
      return r;
    };
    let out = '';
    let pos = 0;
    let count = 0;
    let prevEnd = -1;
    while (pos <= text.length) {
      this.budget.step();
      const m = re.exec(text, pos, this.budget);
      if (!m) break;
      if (m.end === m.start && m.start === prevEnd) {
        if (m.start >= text.length) break;
        out += text[m.start];
        pos = m.start + 1;
        continue;
      }
      out += text.slice(pos, m.start) + expand(text.slice(m.start, m.end));
      count++;
      prevEnd = m.end;
      if (m.end === m.start) {
        if (m.start < text.length) out += text[m.start];
        pos = m.start + 1;
      } else pos = m.end;
      if (!global) break;
    }
    if (count === 0) return [text, 0];
    return [out + text.slice(Math.min(pos, text.length)), count];
  }

  // ---- statements

  exec(st: Stmt): void {
    this.budget.step();
    switch (st.k) {
      case 'expr':
        this.eval(st.e);
        return;
      case 'print': {
        const ofmt = this.s(this.vars.get('OFMT')!);
        const parts = st.args.length === 0 ? [this.fields[0]!] : st.args.map((a) => {
          const v = this.eval(a);
          return v.n !== undefined ? numToString(v.n, ofmt) : v.s;
        });
        this.write(parts.join(this.s(this.vars.get('OFS')!)) + this.s(this.vars.get('ORS')!));
        return;
      }
      case 'printf': {
        const vals = st.args.map((a) => this.eval(a));
        this.write(sprintf(this.s(vals[0]!), vals.slice(1), this.convfmt()));
        return;
      }
      case 'if':
        if (truthy(this.eval(st.c))) this.exec(st.a);
        else if (st.b) this.exec(st.b);
        return;
      case 'while':
        while (truthy(this.eval(st.c))) if (this.loopBody(st.body)) break;
        return;
      case 'do':
        do {
          if (this.loopBody(st.body)) break;
        } while (truthy(this.eval(st.c)));
        return;
      case 'for':
        if (st.init) this.exec(st.init);
        while (!st.c || truthy(this.eval(st.c))) {
          if (this.loopBody(st.body)) break;
          if (st.step) this.exec(st.step);
        }
        return;
      case 'forin': {
        const keys = [...this.array(st.arr).keys()];
        for (const k of keys) {
          if (!this.arrays.get(st.arr)?.has(k)) continue;
          this.setVar(st.v, strnum(k));
          if (this.loopBody(st.body)) break;
        }
        return;
      }
      case 'block':
        for (const s of st.body) this.exec(s);
        return;
      case 'next':
        throw new NextSignal();
      case 'exit':
        throw new ExitSignal(st.e ? Math.trunc(toNumber(this.eval(st.e))) & 255 : -1);
      case 'break':
        throw new BreakSignal();
      case 'continue':
        throw new ContinueSignal();
      case 'delete':
        if (st.subs) this.array(st.name).delete(this.subscript(st.subs));
        else this.array(st.name).clear();
        return;
    }
  }

  /** Runs a loop body; true = break. */
  private loopBody(body: Stmt): boolean {
    this.budget.step();
    try {
      this.exec(body);
    } catch (e) {
      if (e instanceof BreakSignal) return true;
      if (e instanceof ContinueSignal) return false;
      throw e;
    }
    return false;
  }

  private write(s: string): void {
    this.out += s;
    this.budget.checkOutput(this.out.length);
  }

  matches(item: Item): boolean {
    if (item.range) {
      if (!item.inRange) {
        if (!truthy(this.eval(item.range[0]))) return false;
        item.inRange = !truthy(this.eval(item.range[1]));
        return true;
      }
      if (truthy(this.eval(item.range[1]))) item.inRange = false;
      return true;
    }
    return !item.pattern || truthy(this.eval(item.pattern));
  }

  readFile(name: string): string | undefined {
    return name === '-' || name === '/dev/stdin' ? undefined : this.ctx.readFile?.(name);
  }
}

// ---------------------------------------------------------------- entry

const SHORT: Record<string, ArgKind> = { F: 'required', v: 'required', f: 'required', e: 'required', b: 'none', c: 'none', P: 'none', r: 'none', O: 'none', S: 'none', s: 'none', n: 'none', N: 'none' };
const LONG: Record<string, [string, ArgKind]> = {
  'field-separator': ['F', 'required'],
  assign: ['v', 'required'],
  file: ['f', 'required'],
  source: ['e', 'required'],
  posix: ['P', 'none'],
  traditional: ['c', 'none'],
  're-interval': ['r', 'none'],
  sandbox: ['S', 'none'],
};

function assignment(arg: string): [string, string] | null {
  const m = /^([A-Za-z_]\w*)=(.*)$/s.exec(arg);
  return m ? [m[1]!, unescapeAwk(m[2]!)] : null;
}

export const awk: Tool = (argv, stdin, ctx) => {
  const cmd = 'awk';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG, posixOrder: true });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2), 2);
  const budget = new Budget(cmd);
  const vm = new Awk(budget, ctx);
  const assigns: [string, string][] = [];
  let fs: string | null = null;
  for (const o of parsed.options) {
    if (o.key === 'F') fs = unescapeAwk(o.value!);
    else if (o.key === 'v') {
      const a = assignment(o.value!);
      if (!a) return { stdout: '', stderr: `awk: \`${o.value}' argument to \`-v' not in \`var=value' form\n`, status: 2 };
      assigns.push(a);
    } else if (o.key === 'S') continue;
    else throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
  }
  const operands = [...parsed.operands];
  if (operands.length === 0) return usageError(cmd, 'no program text', 2);
  const source = operands.shift()!;
  let items: Item[];
  try {
    items = new Parser(lex(source)).program();
  } catch (e) {
    if (e instanceof AwkSyntaxError) return { stdout: '', stderr: `awk: cmd. line:1: ${e.message}\n`, status: 2 };
    throw e;
  }
  if (fs !== null) vm.setVar('FS', str(fs));
  for (const [k, v] of assigns) vm.setVar(k, strnum(v));
  const begins = items.filter((i) => i.kind === 'begin');
  const mains = items.filter((i) => i.kind === 'main');
  const ends = items.filter((i) => i.kind === 'end');
  let status = 0;
  let stderr = '';
  const runAction = (item: Item) => {
    if (item.action) for (const s of item.action) vm.exec(s);
    else vm.exec({ k: 'print', args: [] });
  };
  let exiting = false;
  try {
    try {
      for (const b of begins) runAction(b);
    } catch (e) {
      if (!(e instanceof ExitSignal)) throw e;
      if (e.code >= 0) status = e.code;
      exiting = true;
    }
    if (!exiting && (mains.length > 0 || ends.length > 0)) {
      // Operands: files and var=value assignments, in order; none = standard input.
      const inputs: (string | [string, string])[] = operands.map((o) => assignment(o) ?? o);
      if (!inputs.some((i) => typeof i === 'string')) inputs.push('-');
      let nr = 0;
      try {
        outer: for (const input of inputs) {
          if (typeof input !== 'string') {
            vm.setVar(input[0], strnum(input[1]));
            continue;
          }
          if (input === '') continue;
          const text = input === '-' || input === '/dev/stdin' ? stdin : vm.readFile(input);
          if (text === undefined) {
            stderr += `awk: fatal: cannot open file \`${input}' for reading: No such file or directory\n`;
            status = 2;
            break;
          }
          budget.checkInput(text, input);
          if (vm.getVar('RS').s !== '\n') throw new UnsupportedToolError(cmd, 'a record separator RS other than newline');
          vm.setVar('FILENAME', str(input === '-' ? '' : input));
          const records = text === '' ? [] : (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
          let fnr = 0;
          for (const rec of records) {
            budget.step();
            vm.setVar('NR', num(++nr));
            vm.setVar('FNR', num(++fnr));
            vm.setRecord(rec);
            try {
              for (const item of mains) if (vm.matches(item)) runAction(item);
            } catch (e) {
              if (e instanceof NextSignal) continue;
              if (e instanceof ExitSignal) {
                if (e.code >= 0) status = e.code;
                break outer;
              }
              throw e;
            }
          }
        }
      } catch (e) {
        if (!(e instanceof ExitSignal)) throw e;
      }
    }
    if (status !== 2 || stderr === '') {
      try {
        for (const e of ends) runAction(e);
      } catch (e) {
        if (!(e instanceof ExitSignal)) throw e;
        if (e.code >= 0) status = e.code;
      }
    }
  } catch (e) {
    if (e instanceof AwkFatal) return { stdout: vm.output, stderr: stderr + `awk: cmd. line:1: fatal: ${e.message}\n`, status: 2 };
    if (e instanceof NextSignal) return { stdout: vm.output, stderr: stderr + 'awk: cmd. line:1: fatal: `next\' used in BEGIN or END action\n', status: 2 };
    if (e instanceof BreakSignal || e instanceof ContinueSignal) return { stdout: vm.output, stderr: stderr + 'awk: cmd. line:1: error: `break\' or `continue\' outside a loop\n', status: 2 };
    throw e;
  }
  return { stdout: vm.output, stderr, status };
};
