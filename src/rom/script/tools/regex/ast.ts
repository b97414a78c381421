// The regular-expression tree every dialect (GNU BRE, GNU ERE, the PCRE subset
// of grep -P, findstr) parses into. One tree, one matcher (vm.ts): dialects
// differ in syntax only, plus the matching discipline (POSIX leftmost-longest
// or Perl leftmost-first) chosen when compiling.

/** A set of characters: a predicate on one UTF-16 code unit. */
export type CharPredicate = (code: number) => boolean;

export type Assertion =
  | 'bol' // ^ : start of the subject
  | 'eol' // $ : end of the subject
  | 'word-boundary' // \b
  | 'not-word-boundary' // \B
  | 'word-start' // \<
  | 'word-end'; // \>

export type Node =
  | { t: 'empty' }
  | { t: 'char'; code: number }
  | { t: 'set'; test: CharPredicate }
  | { t: 'any'; newline: boolean } // `.`; newline = whether it also matches \n
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'repeat'; node: Node; min: number; max: number; greedy: boolean }
  | { t: 'group'; node: Node; index: number | null }
  | { t: 'assert'; kind: Assertion }
  | { t: 'backref'; index: number }
  | { t: 'look'; node: Node; ahead: boolean; negate: boolean }
  | { t: 'keep' }; // PCRE \K: the reported match starts here

export interface ParsedRegex {
  node: Node;
  /** Number of capturing groups. */
  groups: number;
  /** Non-fatal diagnostics the original prints (grep: "warning: * at start of expression"). */
  warnings: string[];
}

/** Valid syntax whose meaning miflash does not implement (or GNU implements erratically). */
export class UnsupportedRegexError extends Error {}

/** A syntax error, worded as the GNU regex library / PCRE2 word it. */
export class RegexSyntaxError extends Error {}

export const isWordCode = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

const between = (c: number, lo: string, hi: string) => c >= lo.charCodeAt(0) && c <= hi.charCodeAt(0);

/** POSIX character classes in the C locale (ASCII only). */
export const POSIX_CLASSES: Record<string, CharPredicate> = {
  alpha: (c) => between(c, 'a', 'z') || between(c, 'A', 'Z'),
  digit: (c) => between(c, '0', '9'),
  alnum: (c) => between(c, 'a', 'z') || between(c, 'A', 'Z') || between(c, '0', '9'),
  upper: (c) => between(c, 'A', 'Z'),
  lower: (c) => between(c, 'a', 'z'),
  space: (c) => c === 32 || (c >= 9 && c <= 13),
  blank: (c) => c === 32 || c === 9,
  punct: (c) => (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126),
  print: (c) => c >= 32 && c <= 126,
  graph: (c) => c >= 33 && c <= 126,
  cntrl: (c) => c < 32 || c === 127,
  xdigit: (c) => between(c, '0', '9') || between(c, 'a', 'f') || between(c, 'A', 'F'),
};

/** ASCII case folding (the C locale folds nothing else). */
export const foldCase = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c);
export const otherCase = (c: number): number =>
  c >= 65 && c <= 90 ? c + 32 : c >= 97 && c <= 122 ? c - 32 : c;

export const cat = (items: Node[]): Node =>
  items.length === 0 ? { t: 'empty' } : items.length === 1 ? items[0]! : { t: 'cat', items };

export const alt = (items: Node[]): Node => (items.length === 1 ? items[0]! : { t: 'alt', items });

/** Shortest and longest subject length a node can match (Infinity when unbounded; backrefs unbounded). */
export function lengthRange(n: Node): [number, number] {
  switch (n.t) {
    case 'empty':
    case 'assert':
    case 'look':
    case 'keep':
      return [0, 0];
    case 'char':
    case 'set':
    case 'any':
      return [1, 1];
    case 'backref':
      return [0, Infinity];
    case 'group':
      return lengthRange(n.node);
    case 'cat': {
      let lo = 0;
      let hi = 0;
      for (const i of n.items) {
        const [a, b] = lengthRange(i);
        lo += a;
        hi += b;
      }
      return [lo, hi];
    }
    case 'alt': {
      let lo = Infinity;
      let hi = 0;
      for (const i of n.items) {
        const [a, b] = lengthRange(i);
        lo = Math.min(lo, a);
        hi = Math.max(hi, b);
      }
      return [lo, hi];
    }
    case 'repeat': {
      const [a, b] = lengthRange(n.node);
      return [a * n.min, b === 0 ? 0 : n.max === Infinity ? Infinity : b * n.max];
    }
  }
}

export function hasBackref(n: Node): boolean {
  switch (n.t) {
    case 'backref':
      return true;
    case 'cat':
    case 'alt':
      return n.items.some(hasBackref);
    case 'repeat':
    case 'group':
    case 'look':
      return hasBackref(n.node);
    default:
      return false;
  }
}
