// test and [ — as the dash builtin (Debian's /bin/sh, the default dialect) or
// the bash builtin parses and evaluates them.
//
// dash: POSIX argument-count rules for 3 and 4 arguments, then its recursive
// -o / -a / ! / ( ) grammar parsed from the left; unknown binary operators such
// as `==` leave trailing words and fail with "unexpected operator" (status 2).
// bash: POSIX rules for up to 4 arguments, then bash's expr/term grammar; `==`,
// `<`, `>` accepted. Integers: optional blanks and sign around decimal digits,
// 64-bit range; anything else is dash's "Illegal number: X" or bash's "X:
// integer expression expected", status 2.
//
// stderr carries the message as "[: ..." (or "test: ..."); the interpreter adds
// its "script: line N: " prefix as the shell does.
//
// File operators use ctx.readFile: -e -f -r exist/readable, -s non-empty.
// Refused (UnsupportedToolError): -d -b -c -g -h -k -L -N -O -G -p -S -t -u -w
// -x and bash's -o/-v/-R, -nt -ot -ef — a flash plan cannot depend on them.

import { UnsupportedToolError } from './errors.js';
import type { Tool, ToolContext, ToolResult } from './types.js';

export type TestDialect = 'dash' | 'bash';

class TestSyntaxError extends Error {}

const UNARY = new Set(['-r', '-w', '-x', '-e', '-f', '-d', '-c', '-b', '-p', '-u', '-g', '-k', '-s', '-t', '-z', '-n', '-h', '-O', '-G', '-L', '-S']);
const BASH_UNARY = new Set([...UNARY, '-a', '-N', '-o', '-v', '-R']);
const DASH_BINARY = new Set(['=', '!=', '<', '>', '-eq', '-ne', '-ge', '-gt', '-le', '-lt', '-nt', '-ot', '-ef']);
const BASH_BINARY = new Set([...DASH_BINARY, '==']);

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

export function makeTest(dialect: TestDialect): Tool {
  return (argv, _stdin, ctx) => {
    const name = argv[0] ?? 'test';
    let args = argv.slice(1);
    const fail = (msg: string): ToolResult => ({ stdout: '', stderr: `${name}: ${msg}\n`, status: 2 });
    if (name === '[') {
      if (args[args.length - 1] !== ']') return fail(dialect === 'dash' ? 'missing ]' : "missing `]'");
      args = args.slice(0, -1);
    }
    try {
      const ok = dialect === 'dash' ? new DashTest(args, ctx).run() : new BashTest(args, ctx).run();
      return { stdout: '', stderr: '', status: ok ? 0 : 1 };
    } catch (e) {
      if (e instanceof TestSyntaxError) return fail(e.message);
      throw e;
    }
  };
}

/** dash's reading of an integer operand (strtoimax, blanks allowed around). */
function dashInt(s: string): bigint {
  if (!/^[ \t\n\v\f\r]*[+-]?\d+[ \t\n\v\f\r]*$/.test(s)) throw new TestSyntaxError(`Illegal number: ${s}`);
  const v = BigInt(s.trim());
  if (v > INT64_MAX || v < INT64_MIN) throw new TestSyntaxError(`Illegal number: ${s}`);
  return v;
}

function bashInt(s: string): bigint {
  if (!/^[ \t\n\v\f\r]*[+-]?\d+[ \t\n\v\f\r]*$/.test(s)) throw new TestSyntaxError(`${s}: integer expression expected`);
  const v = BigInt(s.trim());
  if (v > INT64_MAX || v < INT64_MIN) throw new TestSyntaxError(`${s}: integer expression expected`);
  return v;
}

function fileTest(op: string, path: string, ctx: ToolContext, name: string): boolean {
  switch (op) {
    case '-e':
    case '-f':
    case '-r':
    case '-a':
      return ctx.readFile?.(path) !== undefined;
    case '-s': {
      const t = ctx.readFile?.(path);
      return t !== undefined && t.length > 0;
    }
    default:
      throw new UnsupportedToolError(name, `the file test ${op}`);
  }
}

function compareStrings(a: string, b: string): number {
  // strcmp on bytes; the C locale collates by code unit.
  return a < b ? -1 : a > b ? 1 : 0;
}

function binary(op: string, a: string, b: string, toInt: (s: string) => bigint, name: string): boolean {
  switch (op) {
    case '=':
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return compareStrings(a, b) < 0;
    case '>':
      return compareStrings(a, b) > 0;
    case '-eq':
      return toInt(a) === toInt(b);
    case '-ne':
      return toInt(a) !== toInt(b);
    case '-lt':
      return toInt(a) < toInt(b);
    case '-le':
      return toInt(a) <= toInt(b);
    case '-gt':
      return toInt(a) > toInt(b);
    case '-ge':
      return toInt(a) >= toInt(b);
    default:
      throw new UnsupportedToolError(name, `the operator ${op}`);
  }
}

function unary(op: string, arg: string, ctx: ToolContext, name: string): boolean {
  if (op === '-z') return arg.length === 0;
  if (op === '-n') return arg.length > 0;
  return fileTest(op, arg, ctx, name);
}

type Tok = 'EOI' | 'OPERAND' | 'UNOP' | 'BINOP' | 'NOT' | 'AND' | 'OR' | 'LPAREN' | 'RPAREN';

/** dash 0.5.12's test: a left-to-right parser with POSIX special cases. */
class DashTest {
  private wp = 0;
  private words: string[];

  constructor(
    args: string[],
    private readonly ctx: ToolContext,
  ) {
    this.words = args;
  }

  private kind(s: string): Tok | null {
    if (s === '!') return 'NOT';
    if (s === '-a') return 'AND';
    if (s === '-o') return 'OR';
    if (s === '(') return 'LPAREN';
    if (s === ')') return 'RPAREN';
    if (UNARY.has(s)) return 'UNOP';
    if (DASH_BINARY.has(s)) return 'BINOP';
    return null;
  }

  /** t_lex: what word i is in context. */
  private lex(i: number): Tok {
    const w = this.words;
    const s = w[i];
    if (s === undefined) return 'EOI';
    const k = this.kind(s);
    if (k === null) return 'OPERAND';
    if (k === 'UNOP' && this.isOperand(i)) return 'OPERAND';
    if (k === 'LPAREN' && w[i + 1] === undefined) return 'OPERAND';
    return k;
  }

  private isOperand(i: number): boolean {
    const w = this.words;
    if (w[i + 1] === undefined) return true;
    if (w[i + 2] === undefined) return false;
    return this.kind(w[i + 1]!) === 'BINOP';
  }

  run(): boolean {
    let res = true; // true = status 1 (false), flipped by `!` in the 3/4-argument forms
    let w = this.words;
    for (;;) {
      if (w.length < 1) return !res;
      if (w.length === 3 && this.kind(w[1]!) === 'BINOP') break;
      if (w.length === 3 || w.length === 4) {
        if (w[0] === '(' && w[w.length - 1] === ')') {
          w = w.slice(1, -1);
          this.words = w;
        } else if (w[0] === '!') {
          res = false;
          w = w.slice(1);
          this.words = w;
          continue;
        }
      }
      break;
    }
    this.wp = 0;
    const v = this.oexpr(this.lex(0));
    const left = this.words[this.wp];
    // dash's syntax(): an empty word is not named.
    if (left !== undefined && this.words[this.wp + 1] !== undefined)
      throw new TestSyntaxError(left === '' ? 'unexpected operator' : `${left}: unexpected operator`);
    return res ? v : !v;
  }

  private oexpr(n: Tok): boolean {
    let res = false;
    for (;;) {
      res = this.aexpr(n) || res;
      n = this.lex(this.wp + 1);
      if (n !== 'OR') return res;
      this.wp += 2;
      n = this.lex(this.wp);
    }
  }

  private aexpr(n: Tok): boolean {
    let res = true;
    for (;;) {
      if (!this.nexpr(n)) res = false;
      n = this.lex(this.wp + 1);
      if (n !== 'AND') return res;
      this.wp += 2;
      n = this.lex(this.wp);
    }
  }

  private nexpr(n: Tok): boolean {
    if (n === 'NOT') return !this.nexpr(this.lex(++this.wp));
    return this.primary(n);
  }

  private primary(n: Tok): boolean {
    if (n === 'EOI') return false;
    if (n === 'LPAREN') {
      const nn = this.lex(++this.wp);
      if (nn === 'RPAREN') return false;
      const res = this.oexpr(nn);
      if (this.lex(++this.wp) !== 'RPAREN') throw new TestSyntaxError('closing paren expected');
      return res;
    }
    const cur = this.words[this.wp]!;
    if (n === 'UNOP') {
      const arg = this.words[++this.wp];
      if (arg === undefined) throw new TestSyntaxError(`${cur}: argument expected`);
      return unary(cur, arg, this.ctx, '[');
    }
    if (this.lex(this.wp + 1) === 'BINOP') {
      const op = this.words[this.wp + 1]!;
      this.wp += 2;
      const b = this.words[this.wp];
      if (b === undefined) throw new TestSyntaxError(`${op}: argument expected`);
      return binary(op, cur, b, dashInt, '[');
    }
    return cur.length > 0;
  }
}

/** bash 5.2's test builtin: POSIX rules up to four arguments, its own grammar beyond. */
class BashTest {
  private pos = 0;
  private readonly argc: number;

  constructor(
    private readonly argv: string[],
    private readonly ctx: ToolContext,
  ) {
    this.argc = argv.length;
  }

  private isBinop(s: string | undefined): boolean {
    return s !== undefined && BASH_BINARY.has(s);
  }

  private isUnop(s: string): boolean {
    return BASH_UNARY.has(s);
  }

  run(): boolean {
    const a = this.argv;
    let v: boolean;
    switch (this.argc) {
      case 0:
        return false;
      case 1:
        return a[0] !== '';
      case 2:
        return this.two();
      case 3:
        v = this.three();
        break;
      case 4:
        if (a[0] === '!') {
          this.pos = 1;
          v = !this.three();
          break;
        }
        if (a[0] === '(' && a[3] === ')') {
          this.pos = 1;
          v = this.two();
          this.pos = this.argc;
          break;
        }
        v = this.expr();
        break;
      default:
        v = this.expr();
    }
    if (this.pos < this.argc) {
      if (a[this.pos]!.startsWith('-')) throw new TestSyntaxError(`syntax error: \`${a[this.pos]}' unexpected`);
      throw new TestSyntaxError('too many arguments');
    }
    return v;
  }

  private two(): boolean {
    const a = this.argv[this.pos]!;
    const b = this.argv[this.pos + 1]!;
    this.pos += 2;
    if (a === '!') return b === '';
    if (a.length === 2 && a[0] === '-' && this.isUnop(a)) return this.unary(a, b);
    throw new TestSyntaxError(`${a}: unary operator expected`);
  }

  private three(): boolean {
    const p = this.pos;
    const a = this.argv;
    this.pos = this.argc;
    if (this.isBinop(a[p + 1])) return this.binaryOp(a[p]!, a[p + 1]!, a[p + 2]!);
    if (a[p + 1] === '-a') return a[p] !== '' && a[p + 2] !== '';
    if (a[p + 1] === '-o') return a[p] !== '' || a[p + 2] !== '';
    if (a[p] === '!') {
      this.pos = p + 1;
      const r = !this.two();
      this.pos = this.argc;
      return r;
    }
    if (a[p] === '(' && a[p + 2] === ')') return a[p + 1] !== '';
    throw new TestSyntaxError(`${a[p + 1]}: binary operator expected`);
  }

  private expr(): boolean {
    if (this.pos >= this.argc) throw new TestSyntaxError('argument expected');
    return this.or();
  }

  private or(): boolean {
    const v = this.and();
    if (this.pos < this.argc && this.argv[this.pos] === '-o') {
      this.pos++;
      const w = this.or();
      return v || w;
    }
    return v;
  }

  private and(): boolean {
    const v = this.term();
    if (this.pos < this.argc && this.argv[this.pos] === '-a') {
      this.pos++;
      const w = this.and();
      return v && w;
    }
    return v;
  }

  private term(): boolean {
    const a = this.argv;
    if (this.pos >= this.argc) throw new TestSyntaxError('argument expected');
    let negations = 0;
    while (this.pos < this.argc && a[this.pos] === '!') {
      this.pos++;
      negations ^= 1;
    }
    if (negations) return !this.term();
    const cur = a[this.pos]!;
    if (cur === '(') {
      this.pos++;
      const v = this.expr();
      if (this.pos >= this.argc) throw new TestSyntaxError("`)' expected");
      if (a[this.pos] !== ')') throw new TestSyntaxError(`\`)' expected, found ${a[this.pos]}`);
      this.pos++;
      return v;
    }
    if (this.pos + 3 <= this.argc && this.isBinop(a[this.pos + 1])) {
      const v = this.binaryOp(cur, a[this.pos + 1]!, a[this.pos + 2]!);
      this.pos += 3;
      return v;
    }
    if (cur.length === 2 && cur[0] === '-') {
      if (!this.isUnop(cur)) throw new TestSyntaxError(`${cur}: unary operator expected`);
      if (this.pos + 1 >= this.argc) throw new TestSyntaxError('argument expected');
      const v = this.unary(cur, a[this.pos + 1]!);
      this.pos += 2;
      return v;
    }
    this.pos++;
    return cur !== '';
  }

  private unary(op: string, arg: string): boolean {
    if (op === '-o' || op === '-v' || op === '-R') throw new UnsupportedToolError('[', `the shell-state test ${op}`);
    return unary(op, arg, this.ctx, '[');
  }

  private binaryOp(a: string, op: string, b: string): boolean {
    return binary(op, a, b, bashInt, '[');
  }
}

export const testDash: Tool = makeTest('dash');
export const testBash: Tool = makeTest('bash');
