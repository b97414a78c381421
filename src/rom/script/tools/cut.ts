// cut — GNU coreutils 9.1, C locale (characters are bytes).
//
// Supported: -b LIST, -c LIST, -f LIST, -d DELIM, -s, -n (ignored),
// --complement, --output-delimiter=STR, -z refused; LIST as N, N-, -M, N-M
// separated by commas or blanks; files via ctx.readFile. Every output line ends
// in a newline, as cut writes it. coreutils' messages and status 1 for bad
// lists and option mixes.

import { getopt, lines, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { inputs, missing, usageError } from './io.js';
import { Budget } from './limits.js';
import type { Tool } from './types.js';

const SHORT: Record<string, ArgKind> = { b: 'required', c: 'required', f: 'required', d: 'required', s: 'none', n: 'none', z: 'none' };
const LONG: Record<string, [string, ArgKind]> = {
  bytes: ['b', 'required'],
  characters: ['c', 'required'],
  fields: ['f', 'required'],
  delimiter: ['d', 'required'],
  'only-delimited': ['s', 'none'],
  complement: ['complement', 'none'],
  'output-delimiter': ['output-delimiter', 'required'],
  'zero-terminated': ['z', 'none'],
  help: ['help', 'none'],
  version: ['version', 'none'],
};

type Range = [number, number]; // 1-based inclusive; hi = Infinity for open

function parseList(list: string, fields: boolean): Range[] | string {
  const what = fields ? 'field' : 'byte/character position';
  const ranges: Range[] = [];
  for (const part of list.split(/[,\t ]/)) {
    if (part === '') return fields ? 'fields are numbered from 1' : 'byte/character positions are numbered from 1';
    const m = /^(\d*)(-(\d*))?$/.exec(part);
    if (!m) return `invalid ${what} '${part}'`;
    if (m[2] === undefined) {
      const n = Number(m[1]);
      if (n === 0) return fields ? 'fields are numbered from 1' : 'byte/character positions are numbered from 1';
      ranges.push([n, n]);
      continue;
    }
    if (m[1] === '' && m[3] === '') return 'invalid range with no endpoint: -';
    const lo = m[1] === '' ? 1 : Number(m[1]);
    const hi = m[3] === '' ? Infinity : Number(m[3]);
    if (lo === 0) return fields ? 'fields are numbered from 1' : 'byte/character positions are numbered from 1';
    if (hi < lo) return 'invalid decreasing range';
    ranges.push([lo, hi]);
  }
  return ranges;
}

export const cut: Tool = (argv, stdin, ctx) => {
  const cmd = 'cut';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  let mode: 'b' | 'c' | 'f' | null = null;
  let list = '';
  let delim: string | null = null;
  let onlyDelimited = false;
  let complement = false;
  let outDelim: string | null = null;
  for (const o of parsed.options) {
    switch (o.key) {
      case 'b':
      case 'c':
      case 'f':
        if (mode !== null) return usageError(cmd, 'only one list may be specified');
        mode = o.key;
        list = o.value!;
        break;
      case 'd':
        if (o.value!.length > 1) return usageError(cmd, 'the delimiter must be a single character');
        delim = o.value!;
        break;
      case 's':
        onlyDelimited = true;
        break;
      case 'n':
        break;
      case 'complement':
        complement = true;
        break;
      case 'output-delimiter':
        outDelim = o.value!;
        break;
      default:
        throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
    }
  }
  if (mode === null) return usageError(cmd, 'you must specify a list of bytes, characters, or fields');
  if (mode !== 'f' && delim !== null) return usageError(cmd, 'an input delimiter may be specified only when operating on fields');
  if (mode !== 'f' && onlyDelimited)
    return usageError(cmd, 'suppressing non-delimited lines makes sense\n\tonly when operating on fields');
  const ranges = parseList(list, mode === 'f');
  if (typeof ranges === 'string') return usageError(cmd, ranges);
  const selected = (n: number) => ranges.some(([a, b]) => n >= a && n <= b) !== complement;
  const d = delim === null ? '\t' : delim === '' ? '\0' : delim;
  const od = outDelim ?? (mode === 'f' ? d : null);

  const budget = new Budget(cmd);
  let out = '';
  let stderr = '';
  let status = 0;
  for (const input of inputs(parsed.operands, stdin, ctx, budget)) {
    if (input.text === undefined) {
      stderr += missing(cmd, input.name);
      status = 1;
      continue;
    }
    for (const line of lines(input.text)) {
      if (mode === 'f') {
        if (!line.includes(d)) {
          if (!onlyDelimited) out += line + '\n';
          continue;
        }
        const parts = line.split(d);
        out += parts.filter((_, k) => selected(k + 1)).join(od!) + '\n';
      } else {
        let s = '';
        let prev = -1;
        for (let k = 0; k < line.length; k++) {
          if (!selected(k + 1)) continue;
          // --output-delimiter separates non-adjacent runs of positions.
          if (od !== null && prev >= 0 && prev !== k - 1 && s !== '') s += od;
          s += line[k];
          prev = k;
        }
        out += s + '\n';
      }
      budget.checkOutput(out.length);
    }
  }
  return { stdout: out, stderr, status };
};
