// GNU basic and extended regular expressions (grep, grep -E, sed, sed -E, expr,
// awk's dynamic and literal regexps) parsed into the shared tree.
//
// GNU specifics implemented: BRE `\+ \? \|` extensions; `*` literal at the
// start of a BRE (after `^`, `\(`, `\|` too); `^`/`$` anchors only at the ends
// of a BRE (sub)expression and literal elsewhere, anchors anywhere in an ERE;
// ERE `* + ? {` at the start of an expression ignored with grep's warning;
// `{` not starting a valid interval is literal in ERE; `\{,n\}`; back-references
// \1-\9 in both; \< \> \b \B \w \W \s \S \` \'; bracket expressions with
// [:class:] [=c=] [.c.], ranges in C-locale order, `]` first literal, backslash
// literal inside brackets. Error messages are glibc's.
//
// Refused (RegexSyntaxError with glibc's wording): what glibc refuses.
// Multi-character collating elements do not exist in the C locale.

import {
  alt,
  cat,
  POSIX_CLASSES,
  RegexSyntaxError,
  UnsupportedRegexError,
  isWordCode,
  type CharPredicate,
  type Node,
  type ParsedRegex,
} from './ast.js';

export interface PosixOptions {
  extended: boolean;
  /** awk regexps: backslash escapes \n \t \/ \" ... are C-like, \y is a word boundary (gawk). */
  awk?: boolean;
}

export const DUP_MAX = 32767;

const SPACE: CharPredicate = (c) => c === 32 || (c >= 9 && c <= 13);

export function parsePosix(src: string, opts: PosixOptions): ParsedRegex {
  return new PosixParser(src, opts).parse();
}

class PosixParser {
  private i = 0;
  private groups = 0;
  private readonly closed = new Set<number>();
  private readonly warnings: string[] = [];
  private readonly ere: boolean;

  constructor(
    private readonly s: string,
    private readonly opts: PosixOptions,
  ) {
    this.ere = opts.extended;
  }

  parse(): ParsedRegex {
    const node = this.alternation(0);
    if (this.i < this.s.length) {
      // Only an unmatched close-group stops the top level early.
      throw new RegexSyntaxError('Unmatched ) or \\)');
    }
    return { node, groups: this.groups, warnings: this.warnings };
  }

  private peek(k = 0): string | undefined {
    return this.s[this.i + k];
  }

  private atAltBar(): boolean {
    return this.ere ? this.peek() === '|' : this.peek() === '\\' && this.peek(1) === '|';
  }

  private atClose(depth: number): boolean {
    if (this.ere) return this.peek() === ')' && depth > 0;
    return this.peek() === '\\' && this.peek(1) === ')';
  }

  private alternation(depth: number): Node {
    const items = [this.sequence(depth)];
    while (this.atAltBar()) {
      this.i += this.ere ? 1 : 2;
      items.push(this.sequence(depth));
    }
    return alt(items);
  }

  private sequence(depth: number): Node {
    const items: Node[] = [];
    // Whether a repetition operator here has something to repeat.
    let canRepeat = false;
    let atStart = true;
    while (this.i < this.s.length && !this.atAltBar() && !this.atClose(depth)) {
      const c = this.s[this.i]!;
      // Repetition operators. glibc treats a repeated anchor erratically
      // (ERE "(\\<*)" is "Unmatched (", BRE "a\\b*" matches yet prints
      // nothing with -o): refused rather than guessed, except GNU's documented
      // leading "^*".
      const last = items[items.length - 1];
      if (last?.t === 'assert' && !(last.kind === 'bol' && items.length === 1 && atStart && (!this.ere || this.i === 1)) && this.repetitionAhead())
        throw new UnsupportedRegexError(`a repetition operator after an anchor (${this.s.slice(0, this.i + 1)})`);
      const rep = this.repetition(canRepeat);
      if (rep) {
        if (rep !== 'ignored') {
          const last = items.pop()!;
          items.push({ t: 'repeat', node: last, min: rep.min, max: rep.max, greedy: true });
        }
        continue;
      }
      if (c === '^' && (this.ere || atStart)) {
        this.i++;
        items.push({ t: 'assert', kind: 'bol' });
        // A BRE `*` right after a leading `^` is literal; an ERE one is ignored.
        canRepeat = false;
        continue;
      }
      if (c === '$' && (this.ere || this.atBreEnd(depth))) {
        this.i++;
        items.push({ t: 'assert', kind: 'eol' });
        canRepeat = false;
        atStart = false;
        continue;
      }
      items.push(this.atom(depth));
      canRepeat = true;
      atStart = false;
    }
    return cat(items);
  }

  private repetitionAhead(): boolean {
    const c = this.peek();
    const n = this.peek(1);
    if (c === '*') return true;
    if (this.ere) return c === '+' || c === '?' || (c === '{' && this.validIntervalAhead(this.i + 1));
    return c === '\\' && (n === '+' || n === '?' || n === '{');
  }

  /** In a BRE, `$` is an anchor only at the end of the RE or of a subexpression / alternative. */
  private atBreEnd(depth: number): boolean {
    const j = this.i + 1;
    if (j >= this.s.length) return true;
    if (this.s[j] === '\\' && (this.s[j + 1] === '|' || (this.s[j + 1] === ')' && depth >= 0))) return true;
    return false;
  }

  /**
   * Reads a repetition operator at the cursor, if there is one. Returns
   * 'ignored' for an ERE operator with nothing to repeat (GNU warns and drops it).
   */
  private repetition(canRepeat: boolean): { min: number; max: number } | 'ignored' | null {
    const c = this.peek();
    const next = this.peek(1);
    let op: '*' | '+' | '?' | '{' | null = null;
    let width = 1;
    if (c === '*') op = '*';
    else if (this.ere && (c === '+' || c === '?')) op = c;
    else if (this.ere && c === '{') op = this.validIntervalAhead(this.i + 1) ? '{' : null;
    else if (!this.ere && c === '\\' && (next === '+' || next === '?')) {
      op = next;
      width = 2;
    } else if (!this.ere && c === '\\' && next === '{') {
      op = '{';
      width = 2;
    }
    if (op === null) return null;
    if (!canRepeat) {
      // BRE: a leading `*` (or `\+`, `\?`) is an ordinary character; a leading `\{` is literal too.
      if (!this.ere) return null;
      this.warnings.push(op === '{' ? '{...} at start of expression' : `${op} at start of expression`);
      this.i += width;
      if (op === '{') this.i = this.intervalEnd(this.i);
      return 'ignored';
    }
    this.i += width;
    switch (op) {
      case '*':
        return { min: 0, max: Infinity };
      case '+':
        return { min: 1, max: Infinity };
      case '?':
        return { min: 0, max: 1 };
      case '{':
        return this.interval();
    }
  }

  private validIntervalAhead(j: number): boolean {
    const m = /^(\d*)(,(\d*))?\}/.exec(this.s.slice(j));
    return m !== null && (m[1] !== '' || m[2] !== undefined);
  }

  private intervalEnd(j: number): number {
    const close = this.ere ? '}' : '\\}';
    const k = this.s.indexOf(close, j);
    return k < 0 ? this.s.length : k + close.length;
  }

  private interval(): { min: number; max: number } {
    const close = this.ere ? '}' : '\\}';
    const m = /^(\d*)(,(\d*))?/.exec(this.s.slice(this.i))!;
    this.i += m[0].length;
    if (!this.s.startsWith(close, this.i)) {
      if (this.i >= this.s.length || (!this.ere && !this.s.includes('\\}', this.i)))
        throw new RegexSyntaxError(this.ere ? 'Unmatched { or \\{' : 'Unmatched \\{');
      throw new RegexSyntaxError('Invalid content of \\{\\}');
    }
    this.i += close.length;
    const min = m[1] === '' ? 0 : Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (m[1] === '' && m[2] === undefined) throw new RegexSyntaxError('Invalid content of \\{\\}');
    if (min > DUP_MAX || (max !== Infinity && max > DUP_MAX)) throw new RegexSyntaxError('Regular expression too big');
    if (max < min) throw new RegexSyntaxError('Invalid content of \\{\\}');
    return { min, max };
  }

  private atom(depth: number): Node {
    const c = this.s[this.i]!;
    if (c === '.') {
      this.i++;
      return { t: 'any', newline: true };
    }
    if (c === '[') return this.bracket();
    if (this.ere && c === '(') {
      this.i++;
      return this.group(depth);
    }
    if (c === '\\') return this.escape(depth);
    this.i++;
    return { t: 'char', code: c.charCodeAt(0) };
  }

  private group(depth: number): Node {
    const index = ++this.groups;
    const node = this.alternation(depth + 1);
    if (this.ere ? this.peek() !== ')' : !(this.peek() === '\\' && this.peek(1) === ')'))
      throw new RegexSyntaxError('Unmatched ( or \\(');
    this.i += this.ere ? 1 : 2;
    this.closed.add(index);
    return { t: 'group', node, index };
  }

  private escape(depth: number): Node {
    const e = this.s[this.i + 1];
    if (e === undefined) throw new RegexSyntaxError('Trailing backslash');
    this.i += 2;
    if (!this.ere && e === '(') return this.group(depth);
    if (!this.ere && e === '{') return { t: 'char', code: 123 }; // only reached at a start position
    if (e >= '1' && e <= '9' && !this.opts.awk) {
      const n = e.charCodeAt(0) - 48;
      if (!this.closed.has(n)) throw new RegexSyntaxError('Invalid back reference');
      return { t: 'backref', index: n };
    }
    if (this.opts.awk) {
      const c = awkEscape(e, this);
      if (c !== null) return c;
    }
    switch (e) {
      case '<':
        return { t: 'assert', kind: 'word-start' };
      case '>':
        return { t: 'assert', kind: 'word-end' };
      case 'b':
        return { t: 'assert', kind: 'word-boundary' };
      case 'B':
        return { t: 'assert', kind: 'not-word-boundary' };
      case '`':
        return { t: 'assert', kind: 'bol' };
      case "'":
        return { t: 'assert', kind: 'eol' };
      case 'w':
        return { t: 'set', test: isWordCode };
      case 'W':
        return { t: 'set', test: (c) => !isWordCode(c) };
      case 's':
        return { t: 'set', test: SPACE };
      case 'S':
        return { t: 'set', test: (c) => !SPACE(c) };
      default:
        return { t: 'char', code: e.charCodeAt(0) };
    }
  }

  /** Consumes the rest of an awk escape after `\`, already past the escaped char `e`. */
  consumeOctal(first: string): number {
    let v = first.charCodeAt(0) - 48;
    for (let k = 0; k < 2 && /[0-7]/.test(this.s[this.i] ?? ''); k++) v = v * 8 + (this.s.charCodeAt(this.i++) - 48);
    return v;
  }

  private bracket(): Node {
    const { test, end } = parseBracket(this.s, this.i, false);
    this.i = end;
    return { t: 'set', test };
  }
}

function awkEscape(e: string, p: PosixParser): Node | null {
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, v: 11, a: 7, b: 8, '/': 47, '"': 34 };
  if (e in simple) return { t: 'char', code: simple[e]! };
  if (e >= '0' && e <= '7') return { t: 'char', code: p.consumeOctal(e) };
  if (e === 'y') return { t: 'assert', kind: 'word-boundary' };
  if (e === 'B') return { t: 'assert', kind: 'not-word-boundary' };
  return null;
}

/**
 * Parses a POSIX bracket expression starting at `[` (s[start]). With `escapes`
 * (PCRE), backslash escapes are honoured inside; POSIX treats `\` literally.
 */
export function parseBracket(
  s: string,
  start: number,
  escapes: boolean,
  escapeSet?: (s: string, i: number) => { test: CharPredicate | null; code: number | null; end: number },
): { test: CharPredicate; end: number } {
  let i = start + 1;
  const unmatched = () => new RegexSyntaxError('Unmatched [, [^, [:, [., or [=');
  let negate = false;
  if (s[i] === '^') {
    negate = true;
    i++;
  }
  // grep/sed's dfa refuses `[:space:]` written without the outer brackets.
  if (!escapes && s[i] === ':' ) {
    const close = s.indexOf(':]', i + 1);
    if (close > 0 && /^[a-z]+$/.test(s.slice(i + 1, close)) && !s.slice(i + 1, close).includes(']'))
      throw new RegexSyntaxError(`character class syntax is [[:space:]], not [:space:]`);
  }
  const tests: CharPredicate[] = [];
  const ranges: [number, number][] = [];
  let first = true;
  for (;;) {
    if (i >= s.length) throw unmatched();
    const c = s[i]!;
    if (c === ']' && !first) {
      i++;
      break;
    }
    first = false;
    // Start point of a possible range.
    let lo: number | null = null;
    if (c === '[' && (s[i + 1] === ':' || s[i + 1] === '=' || s[i + 1] === '.')) {
      const kind = s[i + 1]!;
      const close = s.indexOf(kind + ']', i + 2);
      if (close < 0) throw unmatched();
      const name = s.slice(i + 2, close);
      i = close + 2;
      if (kind === ':') {
        const cls = POSIX_CLASSES[name];
        if (!cls) throw new RegexSyntaxError('Invalid character class name');
        tests.push(cls);
        continue;
      }
      if (name.length !== 1) throw new RegexSyntaxError('Invalid collation character');
      if (kind === '=') {
        ranges.push([name.charCodeAt(0), name.charCodeAt(0)]);
        continue;
      }
      lo = name.charCodeAt(0);
    } else if (escapes && c === '\\' && escapeSet) {
      const r = escapeSet(s, i);
      i = r.end;
      if (r.test) {
        tests.push(r.test);
        continue;
      }
      lo = r.code!;
    } else {
      lo = c.charCodeAt(0);
      i++;
    }
    // Range?
    if (s[i] === '-' && s[i + 1] !== undefined && s[i + 1] !== ']') {
      i++;
      let hi: number;
      if (s[i] === '[' && s[i + 1] === '.') {
        const close = s.indexOf('.]', i + 2);
        if (close < 0) throw unmatched();
        const name = s.slice(i + 2, close);
        if (name.length !== 1) throw new RegexSyntaxError('Invalid collation character');
        hi = name.charCodeAt(0);
        i = close + 2;
      } else if (escapes && s[i] === '\\' && escapeSet) {
        const r = escapeSet(s, i);
        if (r.test || r.code === null) throw new RegexSyntaxError('invalid range in character class');
        hi = r.code;
        i = r.end;
      } else {
        hi = s.charCodeAt(i);
        i++;
      }
      if (hi < lo) throw new RegexSyntaxError(escapes ? 'range out of order in character class' : 'Invalid range end');
      ranges.push([lo, hi]);
    } else {
      ranges.push([lo, lo]);
    }
  }
  const test: CharPredicate = (code) => {
    let hit = false;
    for (const [a, b] of ranges) if (code >= a && code <= b) hit = true;
    if (!hit) for (const t of tests) if (t(code)) hit = true;
    return hit !== negate;
  };
  return { test, end: i };
}
