// wc — GNU coreutils 9.1, C locale (-m counts bytes, as in the C locale).
//
// Supported: -l -w -c -m (any mix; default -l -w -c), several files with a
// "total" line, files via ctx.readFile. Column width follows coreutils: no
// padding for a single count of a single input, otherwise the width of the
// largest file size, at least 7 when standard input is read.
// Refused: -L, --files0-from, --total.

import { getopt, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { inputs, usageError } from './io.js';
import { Budget } from './limits.js';
import type { Tool } from './types.js';

const SHORT: Record<string, ArgKind> = { l: 'none', w: 'none', c: 'none', m: 'none', L: 'none' };
const LONG: Record<string, [string, ArgKind]> = {
  bytes: ['c', 'none'],
  chars: ['m', 'none'],
  lines: ['l', 'none'],
  words: ['w', 'none'],
  'max-line-length': ['L', 'none'],
  'files0-from': ['files0-from', 'required'],
  total: ['total', 'required'],
};

const SPACE = /[ \t\n\v\f\r]+/;

export const wc: Tool = (argv, stdin, ctx) => {
  const cmd = 'wc';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  const want = { l: false, w: false, c: false, m: false };
  for (const o of parsed.options) {
    if (o.key in want) want[o.key as keyof typeof want] = true;
    else throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
  }
  if (!want.l && !want.w && !want.c && !want.m) want.l = want.w = want.c = true;
  const budget = new Budget(cmd);
  const ins = inputs(parsed.operands, stdin, ctx, budget);
  const rows: { counts: number[]; name: string | null }[] = [];
  const total = [0, 0, 0, 0];
  let stderr = '';
  let status = 0;
  let size = 0;
  for (const input of ins) {
    if (input.text === undefined) {
      stderr += `${cmd}: ${input.name}: No such file or directory\n`;
      status = 1;
      continue;
    }
    const t = input.text;
    if (input.name !== '-') size += t.length;
    const all = [t.split('\n').length - 1, t.split(SPACE).filter((w) => w !== '').length, t.length, t.length];
    const counts = [all[0]!, all[1]!, all[3]!, all[2]!].filter((_, k) => [want.l, want.w, want.m, want.c][k]);
    all.forEach((v, k) => (total[k]! += v));
    rows.push({ counts, name: parsed.operands.length === 0 ? null : input.name });
  }
  const columns = [want.l, want.w, want.m, want.c].filter(Boolean).length;
  const readsStdin = ins.some((i) => i.name === '-');
  let width = Math.max(String(size).length, readsStdin ? 7 : 1);
  if (columns === 1 && ins.length === 1) width = 1;
  if (ins.length > 1) rows.push({ counts: [total[0]!, total[1]!, total[3]!, total[2]!].filter((_, k) => [want.l, want.w, want.m, want.c][k]), name: 'total' });
  const out = rows.map((r) => r.counts.map((c) => String(c).padStart(width)).join(' ') + (r.name === null ? '' : ` ${r.name}`) + '\n').join('');
  return { stdout: out, stderr, status };
};
