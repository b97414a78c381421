// sort and uniq — GNU coreutils 9.1, C locale (byte order).
//
// sort: -n -r -u -s -f -b, -t SEP, -k F1[.C1][flags][,F2[.C2][flags]] (flags n r
// b f), several -k; a last-resort whole-line byte comparison breaks ties unless
// -s or -u. Fields without -t start at a blank-to-non-blank transition and keep
// their leading blanks, as GNU's do. Refused: -g -h -M -V -R -c -C -m -o -z and
// the other options.
// uniq: -c -d -u -i -f N -s N -w N, adjacent lines only; input file via
// ctx.readFile. Refused: -D, --group, -z, an output file operand.

import { getopt, lines, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { inputs, usageError } from './io.js';
import { Budget } from './limits.js';
import type { Tool } from './types.js';

interface Key {
  f1: number;
  c1: number;
  f2: number; // Infinity = end of line
  c2: number; // 0 = end of field
  numeric: boolean;
  reverse: boolean;
  blanks: boolean;
  fold: boolean;
}

const isBlank = (c: string) => c === ' ' || c === '\t';

/** Start offsets of fields (1-based index -> offset); without a separator, fields keep leading blanks. */
function fieldStarts(line: string, sep: string | null): { starts: number[]; ends: number[] } {
  const starts: number[] = [];
  const ends: number[] = [];
  if (sep !== null) {
    let s = 0;
    for (;;) {
      const k = line.indexOf(sep, s);
      starts.push(s);
      ends.push(k < 0 ? line.length : k);
      if (k < 0) break;
      s = k + 1;
    }
    return { starts, ends };
  }
  let i = 0;
  while (i < line.length) {
    const s = i;
    while (i < line.length && isBlank(line[i]!)) i++;
    while (i < line.length && !isBlank(line[i]!)) i++;
    starts.push(s);
    ends.push(i);
  }
  if (starts.length === 0) {
    starts.push(0);
    ends.push(0);
  }
  return { starts, ends };
}

function keyText(line: string, k: Key, sep: string | null): string {
  const { starts, ends } = fieldStarts(line, sep);
  const fi = k.f1 - 1;
  if (fi >= starts.length) return '';
  let b = starts[fi]!;
  if (k.blanks) while (b < ends[fi]! && isBlank(line[b]!)) b++;
  b = Math.min(b + k.c1 - 1, ends[fi]!);
  let e = line.length;
  if (k.f2 !== Infinity) {
    const fj = k.f2 - 1;
    if (fj < starts.length) e = k.c2 === 0 ? ends[fj]! : Math.min(starts[fj]! + k.c2, ends[fj]!);
  }
  return e > b ? line.slice(b, e) : '';
}

function numericValue(s: string): number {
  const m = /^[ \t]*(-?)(\d*)(\.\d*)?/.exec(s)!;
  const v = Number(`${m[2] || '0'}${m[3] && m[3] !== '.' ? m[3] : ''}`);
  return m[1] ? -v : v;
}

const cmpBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function parseKey(spec: string, global: Partial<Key>): Key | null {
  const m = /^(\d+)(?:\.(\d+))?([bnrf]*)(?:,(\d+)(?:\.(\d+))?([bnrf]*))?$/.exec(spec);
  if (!m || Number(m[1]) === 0) return null;
  const flags = (m[3] ?? '') + (m[6] ?? '');
  const own = flags !== '';
  return {
    f1: Number(m[1]),
    c1: m[2] ? Number(m[2]) : 1,
    f2: m[4] ? Number(m[4]) : Infinity,
    c2: m[5] ? Number(m[5]) : 0,
    numeric: own ? flags.includes('n') : !!global.numeric,
    reverse: own ? flags.includes('r') : !!global.reverse,
    blanks: own ? flags.includes('b') : !!global.blanks,
    fold: own ? flags.includes('f') : !!global.fold,
  };
}

export const sort: Tool = (argv, stdin, ctx) => {
  const cmd = 'sort';
  const short: Record<string, ArgKind> = Object.fromEntries([...'nrusfbgChMVRcmz'].map((c) => [c, 'none']));
  Object.assign(short, { t: 'required', k: 'required', o: 'required', S: 'required', T: 'required' });
  const long: Record<string, [string, ArgKind]> = {
    'numeric-sort': ['n', 'none'],
    reverse: ['r', 'none'],
    unique: ['u', 'none'],
    stable: ['s', 'none'],
    'ignore-case': ['f', 'none'],
    'ignore-leading-blanks': ['b', 'none'],
    'field-separator': ['t', 'required'],
    key: ['k', 'required'],
  };
  const parsed = getopt(cmd, argv.slice(1), { short, long });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2), 2);
  const g: Partial<Key> & { unique?: boolean; stable?: boolean } = {};
  let sep: string | null = null;
  const keySpecs: string[] = [];
  for (const o of parsed.options) {
    if (o.key === 'n') g.numeric = true;
    else if (o.key === 'r') g.reverse = true;
    else if (o.key === 'u') g.unique = true;
    else if (o.key === 's') g.stable = true;
    else if (o.key === 'f') g.fold = true;
    else if (o.key === 'b') g.blanks = true;
    else if (o.key === 't') {
      if (o.value!.length !== 1) return { stdout: '', stderr: `sort: multi-character tab '${o.value}'\n`, status: 2 };
      sep = o.value!;
    } else if (o.key === 'k') keySpecs.push(o.value!);
    else throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
  }
  const keys: Key[] = [];
  for (const spec of keySpecs) {
    const k = parseKey(spec, g);
    if (!k) throw new UnsupportedToolError(cmd, `the key specification -k ${spec}`);
    keys.push(k);
  }
  const whole: Key = { f1: 1, c1: 1, f2: Infinity, c2: 0, numeric: !!g.numeric, reverse: !!g.reverse, blanks: !!g.blanks, fold: !!g.fold };
  const budget = new Budget(cmd);
  const all: string[] = [];
  let stderr = '';
  for (const input of inputs(parsed.operands, stdin, ctx, budget)) {
    if (input.text === undefined) {
      stderr += `sort: cannot read: ${input.name}: No such file or directory\n`;
      return { stdout: '', stderr, status: 2 };
    }
    all.push(...lines(input.text));
  }
  const cmpKey = (a: string, b: string, k: Key): number => {
    let x = keys.length ? keyText(a, k, sep) : a;
    let y = keys.length ? keyText(b, k, sep) : b;
    if (!keys.length && k.blanks) {
      x = x.replace(/^[ \t]+/, '');
      y = y.replace(/^[ \t]+/, '');
    }
    let c: number;
    if (k.numeric) c = Math.sign(numericValue(x) - numericValue(y));
    else c = k.fold ? cmpBytes(x.toUpperCase(), y.toUpperCase()) : cmpBytes(x, y);
    return k.reverse ? -c : c;
  };
  const cmpAll = (a: string, b: string): number => {
    for (const k of keys.length ? keys : [whole]) {
      const c = cmpKey(a, b, k);
      if (c) return c;
    }
    return 0;
  };
  const sorted = all
    .map((l, i) => ({ l, i }))
    .sort((p, q) => {
      const c = cmpAll(p.l, q.l);
      if (c || g.unique || g.stable) return c || p.i - q.i;
      const last = cmpBytes(p.l, q.l);
      return (g.reverse ? -last : last) || p.i - q.i;
    })
    .map((x) => x.l);
  const out: string[] = [];
  for (const l of sorted) if (!g.unique || out.length === 0 || cmpAll(out[out.length - 1]!, l) !== 0) out.push(l);
  return { stdout: out.map((l) => l + '\n').join(''), stderr, status: 0 };
};

export const uniq: Tool = (argv, stdin, ctx) => {
  const cmd = 'uniq';
  const short: Record<string, ArgKind> = { c: 'none', d: 'none', u: 'none', i: 'none', D: 'none', z: 'none', f: 'required', s: 'required', w: 'required' };
  const long: Record<string, [string, ArgKind]> = {
    count: ['c', 'none'],
    repeated: ['d', 'none'],
    unique: ['u', 'none'],
    'ignore-case': ['i', 'none'],
    'skip-fields': ['f', 'required'],
    'skip-chars': ['s', 'required'],
    'check-chars': ['w', 'required'],
  };
  const parsed = getopt(cmd, argv.slice(1), { short, long });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  const f = { c: false, d: false, u: false, i: false };
  let skipFields = 0;
  let skipChars = 0;
  let check = Infinity;
  for (const o of parsed.options) {
    if (o.key in f) f[o.key as keyof typeof f] = true;
    else if (o.key === 'f' || o.key === 's' || o.key === 'w') {
      if (!/^\d+$/.test(o.value!)) {
        const what = { f: 'number of fields to skip', s: 'number of bytes to skip', w: 'number of bytes to compare' }[o.key];
        return { stdout: '', stderr: `uniq: ${o.value}: invalid ${what}\n`, status: 1 };
      }
      const n = Number(o.value);
      if (o.key === 'f') skipFields = n;
      else if (o.key === 's') skipChars = n;
      else check = n;
    } else throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
  }
  if (parsed.operands.length > 1) throw new UnsupportedToolError(cmd, 'an output file operand');
  const budget = new Budget(cmd);
  const [input] = inputs(parsed.operands, stdin, ctx, budget);
  if (input!.text === undefined) return { stdout: '', stderr: `uniq: ${input!.name}: No such file or directory\n`, status: 1 };
  const key = (l: string): string => {
    let i = 0;
    for (let n = 0; n < skipFields; n++) {
      while (i < l.length && isBlank(l[i]!)) i++;
      while (i < l.length && !isBlank(l[i]!)) i++;
    }
    const k = l.slice(i + skipChars).slice(0, check === Infinity ? undefined : check);
    return f.i ? k.toUpperCase() : k;
  };
  let out = '';
  const ls = lines(input!.text);
  for (let i = 0; i < ls.length; ) {
    let j = i + 1;
    while (j < ls.length && key(ls[j]!) === key(ls[i]!)) j++;
    const n = j - i;
    if ((!f.d || n > 1) && (!f.u || n === 1)) out += (f.c ? `${String(n).padStart(7)} ` : '') + ls[i] + '\n';
    i = j;
  }
  return { stdout: out, stderr: '', status: 0 };
};
