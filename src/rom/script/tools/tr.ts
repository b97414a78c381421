// tr — GNU coreutils 9.1, C locale (characters are bytes 0-255).
//
// Supported: SET1 [SET2] with -c/-C, -d, -s, -t; escapes \\ \a \b \f \n \r \t
// \v \NNN, ranges a-z, [:class:], [=c=], and [c*N] / [c*] repeats in SET2.
// Translation pads SET2 with its last character (unless -t). Operand-count
// errors use coreutils' messages. Refused: classes other than [:upper:] /
// [:lower:] in SET2 and case-conversion pairs.

import { getopt, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { usageError } from './io.js';
import { Budget } from './limits.js';
import { POSIX_CLASSES } from './regex/ast.js';
import type { Tool } from './types.js';

const SHORT: Record<string, ArgKind> = { c: 'none', C: 'none', d: 'none', s: 'none', t: 'none' };
const LONG: Record<string, [string, ArgKind]> = {
  complement: ['c', 'none'],
  delete: ['d', 'none'],
  'squeeze-repeats': ['s', 'none'],
  'truncate-set1': ['t', 'none'],
};

class TrError extends Error {}

/** coreutils' quote(): backslashes doubled. */
const q = (s: string) => `'${s.replace(/\\/g, '\\\\')}'`;

/** Expands a set into its characters; `repeat` receives [c*N] items (SET2 only). */
function expand(s: string, set2: boolean): { chars: number[]; fill: number | null } {
  const out: number[] = [];
  let fill: number | null = null;
  let fillAt = -1;
  let i = 0;
  const one = (): number => {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      i++;
      return c.charCodeAt(0);
    }
    const e = s[i + 1]!;
    const simple: Record<string, number> = { '\\': 92, a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };
    if (e in simple) {
      i += 2;
      return simple[e]!;
    }
    const m = /^[0-7]{1,3}/.exec(s.slice(i + 1));
    if (m && parseInt(m[0], 8) < 256) {
      i += 1 + m[0].length;
      return parseInt(m[0], 8);
    }
    i += 2;
    return e.charCodeAt(0);
  };
  while (i < s.length) {
    const cls = /^\[:([a-z]+):\]/.exec(s.slice(i));
    if (cls) {
      const t = POSIX_CLASSES[cls[1]!];
      if (!t) throw new TrError(`invalid character class '${cls[1]}'`);
      if (set2) throw new UnsupportedToolError('tr', `the class [:${cls[1]}:] in the second set`);
      for (let c = 0; c < 256; c++) if (t(c)) out.push(c);
      i += cls[0].length;
      continue;
    }
    const eq = /^\[=(.)=\]/.exec(s.slice(i));
    if (eq) {
      out.push(eq[1]!.charCodeAt(0));
      i += eq[0].length;
      continue;
    }
    const rep = set2 ? /^\[(\\?.)\*(\d*)\]/.exec(s.slice(i)) : null;
    if (rep) {
      const save = i;
      i += 1;
      const c = one();
      i = save + rep[0].length;
      if (rep[2] === '' || Number(rep[2]) === 0) {
        if (fill !== null) throw new TrError('only one [c*] repeat construct may appear in string2');
        fill = c;
        fillAt = out.length;
      } else for (let k = 0; k < parseInt(rep[2]!, rep[2]!.startsWith('0') ? 8 : 10); k++) out.push(c);
      continue;
    }
    const lo = one();
    if (s[i] === '-' && i + 1 < s.length) {
      i++;
      const hi = one();
      if (hi < lo) throw new TrError(`range-endpoints of '${String.fromCharCode(lo)}-${String.fromCharCode(hi)}' are in reverse collating sequence order`);
      for (let c = lo; c <= hi; c++) out.push(c);
      continue;
    }
    out.push(lo);
  }
  if (fill !== null) out.splice(fillAt, 0, -1); // placeholder expanded against SET1's length
  return { chars: out, fill };
}

export const tr: Tool = (argv, stdin) => {
  const cmd = 'tr';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  const f = { c: false, d: false, s: false, t: false };
  for (const o of parsed.options) f[(o.key === 'C' ? 'c' : o.key) as keyof typeof f] = true;
  const ops = parsed.operands;
  const translating = !f.d && !(f.s && ops.length === 1);
  const need = f.d && f.s ? 2 : translating ? 2 : 1;
  if (ops.length === 0) return usageError(cmd, 'missing operand');
  if (ops.length < need) {
    const why = f.d && f.s ? 'Two strings must be given when both deleting and squeezing repeats.' : 'Two strings must be given when translating.';
    return usageError(cmd, `missing operand after ${q(ops[0]!)}\n${why}`);
  }
  if (ops.length > need) {
    const extra = f.d && !f.s ? '\nOnly one string may be given when deleting without squeezing repeats.' : '';
    return usageError(cmd, `extra operand ${q(ops[need]!)}${extra}`);
  }
  if (f.c && translating) throw new UnsupportedToolError(cmd, 'translating a complemented set (-c with SET2)');
  const budget = new Budget(cmd);
  budget.checkInput(stdin);
  let set1: number[];
  let set2: number[] = [];
  try {
    set1 = expand(ops[0]!, false).chars;
    if (f.c) {
      const inSet = new Set(set1);
      set1 = [];
      for (let c = 0; c < 256; c++) if (!inSet.has(c)) set1.push(c);
    }
    if (ops[1] !== undefined) {
      const e2 = expand(ops[1], true);
      if (e2.fill !== null && !translating) throw new TrError('the [c*] construct may appear in string2 only when translating');
      set2 = e2.chars;
      const at = set2.indexOf(-1);
      if (at >= 0) set2.splice(at, 1, ...new Array<number>(Math.max(0, set1.length - (set2.length - 1))).fill(e2.fill!));
    }
  } catch (e) {
    if (e instanceof TrError) return { stdout: '', stderr: `tr: ${e.message}\n`, status: 1 };
    throw e;
  }
  if (translating) {
    if (f.t) set1 = set1.slice(0, set2.length);
    if (set2.length === 0 && set1.length > 0) return { stdout: '', stderr: 'tr: when not truncating set1, string2 must be non-empty\n', status: 1 };
    while (set2.length < set1.length) set2.push(set2[set2.length - 1]!);
  }
  const map = new Map<number, number>();
  if (translating) set1.forEach((c, k) => map.set(c, set2[k]!));
  const del = new Set(f.d ? set1 : []);
  const squeeze = new Set(f.s ? (translating || f.d ? set2 : set1) : []);
  let out = '';
  let last = -1;
  for (let k = 0; k < stdin.length; k++) {
    let c = stdin.charCodeAt(k);
    if (del.has(c)) continue;
    c = map.get(c) ?? c;
    if (squeeze.has(c) && c === last) continue;
    out += String.fromCharCode(c);
    last = c;
  }
  return { stdout: out, stderr: '', status: 0 };
};
