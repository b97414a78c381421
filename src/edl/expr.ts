// The small arithmetic found in rawprogram/patch XML ("NUM_DISK_SECTORS-5.",
// "(4096*NUM_DISK_SECTORS)-20480.", "CRC32(NUM_DISK_SECTORS-5.,4096)").
// Parsed by a tiny recursive-descent grammar, never eval:
//   expr   := term (('+'|'-') term)*
//   term   := factor (('*'|'/') factor)*
//   factor := DECIMAL ['.'] | '0x' HEX | 'NUM_DISK_SECTORS' | '(' expr ')'
//   value  := expr | 'CRC32(' expr ',' expr ')'        (patch value only)
// The trailing '.' is Trace32's "decimal" marker; undotted numbers are decimal
// too (that is how every generated file uses them). Arithmetic is unsigned
// 64-bit (BigInt); a negative or overflowing intermediate is an error.
import { EdlInputError } from './errors.js';

export type Expr =
  | { kind: 'num'; value: bigint }
  | { kind: 'disk' }
  | { kind: 'bin'; op: '+' | '-' | '*' | '/'; left: Expr; right: Expr };

export type PatchValue = { kind: 'expr'; expr: Expr } | { kind: 'crc32'; start: Expr; length: Expr };

const U64_MAX = (1n << 64n) - 1n;
const NAME = 'NUM_DISK_SECTORS';

export class ExprSyntaxError extends EdlInputError {
  constructor(text: string, pos: number, detail: string) {
    super(`bad expression ${JSON.stringify(text)} at character ${pos + 1}: ${detail}`, {
      code: 'edl.expr',
      hint: 'allowed: decimal numbers (optionally ending in "."), 0x hex, NUM_DISK_SECTORS, + - * /, parentheses, and CRC32(start,length) in patch values',
    });
  }
}

class Parser {
  pos = 0;
  constructor(readonly text: string) {}

  fail(detail: string): never {
    throw new ExprSyntaxError(this.text, this.pos, detail);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  peek(): string | undefined {
    this.skipSpace();
    return this.text[this.pos];
  }

  expect(ch: string): void {
    if (this.peek() !== ch) this.fail(`expected "${ch}", found ${this.describe()}`);
    this.pos++;
  }

  describe(): string {
    return this.pos >= this.text.length ? 'end of text' : JSON.stringify(this.text[this.pos]);
  }

  expr(): Expr {
    let left = this.term();
    for (let c = this.peek(); c === '+' || c === '-'; c = this.peek()) {
      this.pos++;
      left = { kind: 'bin', op: c, left, right: this.term() };
    }
    return left;
  }

  term(): Expr {
    let left = this.factor();
    for (let c = this.peek(); c === '*' || c === '/'; c = this.peek()) {
      this.pos++;
      left = { kind: 'bin', op: c, left, right: this.factor() };
    }
    return left;
  }

  factor(): Expr {
    const c = this.peek();
    if (c === '(') {
      this.pos++;
      const inner = this.expr();
      this.expect(')');
      return inner;
    }
    const rest = this.text.slice(this.pos);
    const hex = /^0[xX]([0-9a-fA-F]+)/.exec(rest);
    if (hex) {
      this.pos += hex[0].length;
      return this.number(BigInt('0x' + hex[1]));
    }
    const dec = /^([0-9]+)\.?/.exec(rest);
    if (dec) {
      this.pos += dec[0].length;
      return this.number(BigInt(dec[1]!));
    }
    if (rest.startsWith(NAME) && !/^[A-Za-z0-9_]/.test(rest.slice(NAME.length))) {
      this.pos += NAME.length;
      return { kind: 'disk' };
    }
    return this.fail(`expected a number, NUM_DISK_SECTORS or "(", found ${this.describe()}`);
  }

  number(value: bigint): Expr {
    if (value > U64_MAX) this.fail('number does not fit in 64 bits');
    return { kind: 'num', value };
  }

  end(): void {
    if (this.peek() !== undefined) this.fail(`unexpected ${this.describe()}`);
  }
}

/** Parse a sector/offset expression. Throws ExprSyntaxError. */
export function parseExpr(text: string): Expr {
  const p = new Parser(text);
  if (p.peek() === undefined) p.fail('empty expression');
  const e = p.expr();
  p.end();
  return e;
}

/** Parse a patch value: an expression or CRC32(start, length). */
export function parsePatchValue(text: string): PatchValue {
  const p = new Parser(text);
  p.skipSpace();
  if (/^CRC32\s*\(/.test(text.slice(p.pos))) {
    p.pos = text.indexOf('(', p.pos) + 1;
    const start = p.expr();
    p.expect(',');
    const length = p.expr();
    p.expect(')');
    p.end();
    return { kind: 'crc32', start, length };
  }
  if (p.peek() === undefined) p.fail('empty expression');
  const expr = p.expr();
  p.end();
  return { kind: 'expr', expr };
}

/** True when the expression needs NUM_DISK_SECTORS. */
export function usesDiskSize(e: Expr): boolean {
  return e.kind === 'disk' || (e.kind === 'bin' && (usesDiskSize(e.left) || usesDiskSize(e.right)));
}

export class ExprEvalError extends EdlInputError {}

/** Evaluate with unsigned 64-bit semantics. `numDiskSectors` is required only if the expression uses it. */
export function evalExpr(e: Expr, numDiskSectors?: bigint): bigint {
  switch (e.kind) {
    case 'num':
      return e.value;
    case 'disk':
      if (numDiskSectors === undefined) throw new ExprEvalError('NUM_DISK_SECTORS is not known here (the LUN size is needed)');
      return numDiskSectors;
    case 'bin': {
      const l = evalExpr(e.left, numDiskSectors);
      const r = evalExpr(e.right, numDiskSectors);
      let v: bigint;
      if (e.op === '+') v = l + r;
      else if (e.op === '-') v = l - r;
      else if (e.op === '*') v = l * r;
      else {
        if (r === 0n) throw new ExprEvalError(`division by zero in ${formatExpr(e)}`);
        v = l / r;
      }
      if (v < 0n || v > U64_MAX) throw new ExprEvalError(`${formatExpr(e)} = ${v} is outside 0..2^64-1`);
      return v;
    }
  }
}

export function formatExpr(e: Expr): string {
  if (e.kind === 'num') return e.value.toString();
  if (e.kind === 'disk') return NAME;
  return `(${formatExpr(e.left)}${e.op}${formatExpr(e.right)})`;
}
