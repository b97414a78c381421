// expr — GNU coreutils 9.1 (arbitrary-precision integers, C locale).
//
// Supported: | & < <= = == != >= > + - * / % : and the keywords match, substr,
// index, length and `+ TOKEN`, parentheses. Integers are optional '-' and
// digits; comparisons are numeric when both sides are integers, byte-wise
// otherwise; `:` anchors a GNU BRE at the start and yields \1 or the match
// length. Exit status 0 (result neither empty nor 0), 1 (null), 2 (syntax error,
// non-integer argument, division by zero), with coreutils' messages.

import { Budget } from './limits.js';
import { compileRegex, RegexSyntaxError, UnsupportedRegexError } from './regex/index.js';
import { UnsupportedToolError } from './errors.js';
import type { Tool } from './types.js';

class ExprError extends Error {
  constructor(
    message: string,
    readonly status = 2,
  ) {
    super(message);
  }
}

type Value = string | bigint;

const INT = /^-?\d+$/;
const toInt = (v: Value): bigint | null => (typeof v === 'bigint' ? v : INT.test(v) ? BigInt(v) : null);
const str = (v: Value): string => (typeof v === 'bigint' ? v.toString() : v);
const isNull = (v: Value): boolean => (typeof v === 'bigint' ? v === 0n : /^-?0*$/.test(v) && (v === '' || /0/.test(v)));

const KEYWORDS = new Set(['match', 'substr', 'index', 'length', '+']);

/** coreutils' quote(): backslashes doubled. */
const q = (s: string) => `'${s.replace(/\\/g, '\\\\')}'`;

class Parser {
  private i = 0;
  /** False while parsing the side of | or & that is not evaluated (its errors do not count). */
  private ev = true;

  private lazily(skip: boolean, f: () => Value): Value {
    const saved = this.ev;
    if (skip) this.ev = false;
    try {
      return f();
    } finally {
      this.ev = saved;
    }
  }

  constructor(
    private readonly args: readonly string[],
    private readonly budget: Budget,
  ) {}

  run(): Value {
    const v = this.or();
    if (this.i < this.args.length) throw new ExprError(`syntax error: unexpected argument ${q(this.args[this.i]!)}`);
    return v;
  }

  private peek(): string | undefined {
    return this.args[this.i];
  }

  private or(): Value {
    let l = this.and();
    while (this.peek() === '|') {
      this.i++;
      const left = l;
      const r = this.lazily(!isNull(left), () => this.and());
      l = !isNull(left) ? left : !isNull(r) ? r : 0n;
    }
    return l;
  }

  private and(): Value {
    let l = this.cmp();
    while (this.peek() === '&') {
      this.i++;
      const left = l;
      const r = this.lazily(isNull(left), () => this.cmp());
      l = !isNull(left) && !isNull(r) ? left : 0n;
    }
    return l;
  }

  private cmp(): Value {
    let l = this.add();
    for (;;) {
      const op = this.peek();
      if (!op || !['<', '<=', '=', '==', '!=', '>=', '>'].includes(op)) return l;
      this.i++;
      const r = this.add();
      const a = toInt(l);
      const b = toInt(r);
      const c = a !== null && b !== null ? (a < b ? -1 : a > b ? 1 : 0) : str(l) < str(r) ? -1 : str(l) > str(r) ? 1 : 0;
      const t = { '<': c < 0, '<=': c <= 0, '=': c === 0, '==': c === 0, '!=': c !== 0, '>=': c >= 0, '>': c > 0 }[op]!;
      l = t ? 1n : 0n;
    }
  }

  private arith(l: Value, r: Value, op: string): Value {
    if (!this.ev) return 0n;
    const a = toInt(l);
    const b = toInt(r);
    if (a === null || b === null) throw new ExprError('non-integer argument');
    if ((op === '/' || op === '%') && b === 0n) throw new ExprError('division by zero');
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '/':
        return a / b;
      default:
        return a % b;
    }
  }

  private add(): Value {
    let l = this.mul();
    while (this.peek() === '+' || this.peek() === '-') {
      const op = this.args[this.i++]!;
      l = this.arith(l, this.mul(), op);
    }
    return l;
  }

  private mul(): Value {
    let l = this.match();
    while (this.peek() === '*' || this.peek() === '/' || this.peek() === '%') {
      const op = this.args[this.i++]!;
      l = this.arith(l, this.match(), op);
    }
    return l;
  }

  private match(): Value {
    let l = this.primary();
    while (this.peek() === ':') {
      this.i++;
      l = this.regexMatch(l, this.primary());
    }
    return l;
  }

  private regexMatch(sv: Value, pv: Value): Value {
    if (!this.ev) return 0n;
    const s = str(sv);
    let compiled;
    try {
      compiled = compileRegex(str(pv), 'bre', { command: 'expr' });
    } catch (e) {
      if (e instanceof RegexSyntaxError) throw new ExprError(e.message);
      if (e instanceof UnsupportedRegexError) throw new UnsupportedToolError('expr', e.message);
      throw e;
    }
    const m = compiled.regex.matchAt(s, 0, this.budget);
    if (compiled.groups > 0) {
      const g = m?.captures[1];
      return g ? s.slice(g[0], g[1]) : '';
    }
    return BigInt(m ? m.end : 0);
  }

  private operand(after: string): string {
    const t = this.args[this.i];
    if (t === undefined) throw new ExprError(`syntax error: missing argument after ${q(after)}`);
    this.i++;
    return t;
  }

  private primary(): Value {
    const t = this.peek();
    if (t === undefined) {
      const prev = this.args[this.i - 1];
      throw new ExprError(prev === undefined ? 'missing operand' : `syntax error: missing argument after ${q(prev)}`);
    }
    this.i++;
    if (t === '(') {
      const v = this.or();
      if (this.peek() !== ')') {
        if (this.peek() === undefined) throw new ExprError(`syntax error: expecting ')' after ${q(this.args[this.i - 1]!)}`);
        throw new ExprError(`syntax error: expecting ')' instead of ${q(this.peek()!)}`);
      }
      this.i++;
      return v;
    }
    if (t === ')') throw new ExprError(`syntax error: unexpected ')'`);
    if (KEYWORDS.has(t)) {
      switch (t) {
        case '+':
          return this.operand('+');
        case 'length':
          return BigInt(str(this.primary()).length);
        case 'match': {
          const s = this.primary();
          return this.regexMatch(s, this.primary());
        }
        case 'index': {
          const s = str(this.primary());
          const chars = str(this.primary());
          let best = 0;
          for (let k = 0; k < s.length; k++)
            if (chars.includes(s[k]!)) {
              best = k + 1;
              break;
            }
          return BigInt(best);
        }
        case 'substr': {
          const s = str(this.primary());
          const p = toInt(this.primary());
          const n = toInt(this.primary());
          if (p === null || n === null || p < 1n || n < 1n) return '';
          return s.slice(Number(p) - 1, Number(p) - 1 + Number(n));
        }
      }
    }
    return t;
  }
}

export const expr: Tool = (argv) => {
  const args = argv.slice(1);
  // coreutils reads a leading "--" as the end of options.
  const list = args[0] === '--' ? args.slice(1) : args;
  if (list.length === 0) return { stdout: '', stderr: "expr: missing operand\nTry 'expr --help' for more information.\n", status: 2 };
  try {
    const v = new Parser(list, new Budget('expr')).run();
    return { stdout: str(v) + '\n', stderr: '', status: isNull(v) ? 1 : 0 };
  } catch (e) {
    if (e instanceof ExprError) return { stdout: '', stderr: `expr: ${e.message}\n`, status: e.status };
    throw e;
  }
};
