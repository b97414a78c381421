// The subset of PCRE2 syntax `grep -P` patterns in flash scripts use, parsed
// into the shared tree and matched leftmost-first as PCRE does.
//
// Supported: literals and escapes (\t \n \r \f \e \a \xHH \x{H..} \0oo, any
// escaped punctuation), . ^ $ \A \z \Z, classes \d \D \w \W \s \S \h \H and
// bracket classes with escapes, ranges and [:posix:] classes, groups ( ) (?: ),
// alternation, quantifiers * + ? {m} {m,} {m,n} and their lazy forms, back
// references \1-\9, lookahead (?= (?!, fixed-length lookbehind (?<= (?<!, \K.
//
// Refused (UnsupportedRegexError): inline options (?i), named groups,
// possessive quantifiers, atomic groups, \p{..}, \Q..\E, \R, \X, recursion,
// conditionals, callouts, verbs. Errors PCRE2 itself raises are reported with
// its wording (RegexSyntaxError).

import { alt, cat, isWordCode, lengthRange, RegexSyntaxError, UnsupportedRegexError, type CharPredicate, type Node, type ParsedRegex } from './ast.js';
import { parseBracket } from './posix.js';

export { UnsupportedRegexError };

const DIGIT: CharPredicate = (c) => c >= 48 && c <= 57;
const PSPACE: CharPredicate = (c) => c === 32 || (c >= 9 && c <= 13);
const HSPACE: CharPredicate = (c) => c === 32 || c === 9;

export function parsePcre(src: string): ParsedRegex {
  const p = new PcreParser(src);
  const node = p.alternation();
  if (p.i < src.length) throw new RegexSyntaxError('unmatched closing parenthesis');
  return { node, groups: p.groups, warnings: [] };
}

/** Reads one escape at s[i] === '\\' for use inside and outside classes. */
function classEscape(s: string, i: number): { test: CharPredicate | null; code: number | null; end: number } {
  const e = s[i + 1];
  if (e === undefined) throw new RegexSyntaxError('\\ at end of pattern');
  const sets: Record<string, CharPredicate> = {
    d: DIGIT,
    D: (c) => !DIGIT(c),
    w: isWordCode,
    W: (c) => !isWordCode(c),
    s: PSPACE,
    S: (c) => !PSPACE(c),
    h: HSPACE,
    H: (c) => !HSPACE(c),
  };
  if (sets[e]) return { test: sets[e]!, code: null, end: i + 2 };
  const simple: Record<string, number> = { t: 9, n: 10, r: 13, f: 12, e: 27, a: 7 };
  if (e in simple) return { test: null, code: simple[e]!, end: i + 2 };
  if (e === 'x') {
    if (s[i + 2] === '{') {
      const close = s.indexOf('}', i + 3);
      const hex = close < 0 ? '' : s.slice(i + 3, close);
      if (!/^[0-9a-fA-F]{1,4}$/.test(hex)) throw new UnsupportedRegexError('\\x{...} outside the 16-bit range');
      return { test: null, code: parseInt(hex, 16), end: close + 1 };
    }
    const m = /^[0-9a-fA-F]{0,2}/.exec(s.slice(i + 2))![0];
    return { test: null, code: m === '' ? 0 : parseInt(m, 16), end: i + 2 + m.length };
  }
  if (e === '0') {
    const m = /^[0-7]{0,2}/.exec(s.slice(i + 2))![0];
    return { test: null, code: parseInt('0' + m, 8), end: i + 2 + m.length };
  }
  if (/[A-Za-z0-9]/.test(e)) {
    if (/[pPQERXNCcgkou]/.test(e)) throw new UnsupportedRegexError(`\\${e}`);
    throw new RegexSyntaxError('unrecognized character follows \\');
  }
  return { test: null, code: e.charCodeAt(0), end: i + 2 };
}

class PcreParser {
  i = 0;
  groups = 0;

  constructor(private readonly s: string) {}

  alternation(): Node {
    const items = [this.sequence()];
    while (this.s[this.i] === '|') {
      this.i++;
      items.push(this.sequence());
    }
    return alt(items);
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') {
      const q = this.quantifier();
      if (q) {
        const last = items.pop();
        if (!last || last.t === 'assert' || last.t === 'keep' || last.t === 'look')
          throw new RegexSyntaxError('quantifier does not follow a repeatable item');
        if (last.t === 'repeat' && last.greedy && !q.afterRepeatOk) throw new UnsupportedRegexError('possessive quantifier');
        items.push({ t: 'repeat', node: last, min: q.min, max: q.max, greedy: q.greedy });
        continue;
      }
      items.push(this.atom());
    }
    return cat(items);
  }

  private quantifier(): { min: number; max: number; greedy: boolean; afterRepeatOk: boolean } | null {
    const c = this.s[this.i];
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.s.slice(this.i));
      if (!m) return null; // PCRE2 10.42: not a quantifier, a literal `{`
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > 65535 || max !== Infinity && max > 65535) throw new RegexSyntaxError('number too big in {} quantifier');
      if (max < min) throw new RegexSyntaxError('numbers out of order in {} quantifier');
      this.i += m[0].length - 1;
    } else return null;
    this.i++;
    let greedy = true;
    if (this.s[this.i] === '?') {
      greedy = false;
      this.i++;
    } else if (this.s[this.i] === '+') throw new UnsupportedRegexError('possessive quantifier');
    return { min, max, greedy, afterRepeatOk: false };
  }

  private atom(): Node {
    const c = this.s[this.i]!;
    switch (c) {
      case '.':
        this.i++;
        return { t: 'any', newline: false };
      case '^':
        this.i++;
        return { t: 'assert', kind: 'bol' };
      case '$':
        this.i++;
        return { t: 'assert', kind: 'eol' };
      case '[': {
        const { test, end } = parseBracket(this.s, this.i, true, classEscape);
        this.i = end;
        return { t: 'set', test };
      }
      case '(':
        return this.group();
      case '\\':
        return this.escape();
      default:
        this.i++;
        return { t: 'char', code: c.charCodeAt(0) };
    }
  }

  private group(): Node {
    this.i++;
    let node: Node;
    if (this.s[this.i] === '?') {
      const head = this.s.slice(this.i, this.i + 3);
      let kind: 'plain' | 'ahead' | 'nahead' | 'behind' | 'nbehind';
      if (head.startsWith('?:')) kind = 'plain';
      else if (head.startsWith('?=')) kind = 'ahead';
      else if (head.startsWith('?!')) kind = 'nahead';
      else if (head === '?<=') kind = 'behind';
      else if (head === '?<!') kind = 'nbehind';
      else throw new UnsupportedRegexError(`group syntax (${head}`);
      this.i += kind === 'behind' || kind === 'nbehind' ? 3 : 2;
      const inner = this.alternation();
      this.close();
      if (kind === 'plain') return inner;
      const ahead = kind === 'ahead' || kind === 'nahead';
      if (!ahead) {
        // PCRE2 10.42 requires each lookbehind alternative to have a fixed length.
        const alts = inner.t === 'alt' ? inner.items : [inner];
        for (const a of alts) {
          const [lo, hi] = lengthRange(a);
          if (lo !== hi) throw new RegexSyntaxError('lookbehind assertion is not fixed length');
        }
      }
      return { t: 'look', node: inner, ahead, negate: kind === 'nahead' || kind === 'nbehind' };
    }
    const index = ++this.groups;
    node = this.alternation();
    this.close();
    return { t: 'group', node, index };
  }

  private close(): void {
    if (this.s[this.i] !== ')') throw new RegexSyntaxError('missing closing parenthesis');
    this.i++;
  }

  private escape(): Node {
    const e = this.s[this.i + 1];
    const asserts: Record<string, Node> = {
      b: { t: 'assert', kind: 'word-boundary' },
      B: { t: 'assert', kind: 'not-word-boundary' },
      A: { t: 'assert', kind: 'bol' },
      z: { t: 'assert', kind: 'eol' },
      Z: { t: 'assert', kind: 'eol' },
      K: { t: 'keep' },
    };
    if (e !== undefined && asserts[e]) {
      this.i += 2;
      return asserts[e]!;
    }
    if (e !== undefined && e >= '1' && e <= '9') {
      this.i += 2;
      const n = e.charCodeAt(0) - 48;
      // PCRE2 allows forward references; a group that never exists is an error.
      if (n > this.countGroups()) throw new RegexSyntaxError('reference to non-existent subpattern');
      return { t: 'backref', index: n };
    }
    const r = classEscape(this.s, this.i);
    this.i = r.end;
    return r.test ? { t: 'set', test: r.test } : { t: 'char', code: r.code! };
  }

  /** Capturing groups in the whole pattern (for validating back references). */
  private countGroups(): number {
    let n = 0;
    let inClass = false;
    for (let k = 0; k < this.s.length; k++) {
      const c = this.s[k];
      if (c === '\\') k++;
      else if (inClass) inClass = c !== ']';
      else if (c === '[') inClass = true;
      else if (c === '(' && this.s[k + 1] !== '?') n++;
    }
    return n;
  }
}

export { cat, alt };
