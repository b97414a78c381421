// head and tail — GNU coreutils 9.1, C locale.
//
// Supported: -n [-+]NUM, -c [-+]NUM (head: -NUM = all but the last NUM; tail:
// +NUM = from the NUMth on), the obsolete forms `head -5`, `tail -1`, `tail +2`
// and `-5c`/`-5l`, multiplier suffixes (b, kB, K, MB, M, GB, G), -q, -v and
// "==> name <==" headers for several files, files via ctx.readFile. Output
// keeps input bytes exactly (a missing final newline stays missing).
// Refused: -f/-F/--follow, -z, --pid, -s.

import { getopt, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { inputs, usageError } from './io.js';
import { Budget } from './limits.js';
import type { Tool } from './types.js';

const SUFFIX: Record<string, number> = { '': 1, b: 512, kB: 1000, K: 1024, k: 1024, KiB: 1024, MB: 1e6, M: 1024 ** 2, MiB: 1024 ** 2, GB: 1e9, G: 1024 ** 3, GiB: 1024 ** 3 };

function parseCount(s: string): { n: number; sign: '' | '+' | '-' } | null {
  const m = /^([+-]?)(\d+)([a-zA-Z]*)$/.exec(s);
  if (!m || !(m[3]! in SUFFIX)) return null;
  return { n: Number(m[2]) * SUFFIX[m[3]!]!, sign: m[1] as '' | '+' | '-' };
}

/** Splits into lines keeping their terminators. */
function splitKeep(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', start)) {
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

function makeHeadTail(which: 'head' | 'tail'): Tool {
  return (argv, stdin, ctx) => {
    const cmd = which;
    let args = argv.slice(1);
    // Obsolete syntax: a first argument -NUM[bcl] (tail also +NUM[bcl]).
    let obsolete: { unit: 'n' | 'c'; count: string } | null = null;
    const ob = /^([-+])(\d*)([bcl]?)$/.exec(args[0] ?? '');
    // tail reads the obsolete form only before at most one file operand.
    const tailOk = args.length === 1 || (args.length === 2 && (!args[1]!.startsWith('-') || args[1] === '-' || args[1] === '--'));
    if (which === 'tail' && ob && ob[1] === '-' && ob[2] !== '' && !tailOk)
      return { stdout: '', stderr: `tail: option used in invalid context -- ${ob[2]![0]}\n`, status: 1 };
    if (ob && (ob[1] === '-' || (which === 'tail' && tailOk)) && (ob[2] !== '' || ob[1] === '+') && args[0] !== '-') {
      const num = ob[2] === '' ? '10' : ob[2]!;
      const n = ob[3] === 'b' ? String(Number(num) * 512) : num;
      obsolete = { unit: ob[3] === 'c' || ob[3] === 'b' ? 'c' : 'n', count: which === 'tail' && ob[1] === '+' ? `+${n}` : n };
      args = args.slice(1);
    }
    const short: Record<string, ArgKind> = { n: 'required', c: 'required', q: 'none', v: 'none', z: 'none', f: 'none', F: 'none', s: 'required' };
    const long: Record<string, [string, ArgKind]> = {
      lines: ['n', 'required'],
      bytes: ['c', 'required'],
      quiet: ['q', 'none'],
      silent: ['q', 'none'],
      verbose: ['v', 'none'],
      'zero-terminated': ['z', 'none'],
      follow: ['f', 'optional'],
      retry: ['retry', 'none'],
      pid: ['pid', 'required'],
      'sleep-interval': ['s', 'required'],
    };
    const parsed = getopt(cmd, args, { short, long });
    if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
    let unit: 'n' | 'c' = obsolete?.unit ?? 'n';
    let countText = obsolete?.count ?? '10';
    let headers: boolean | null = null;
    for (const o of parsed.options) {
      if (o.key === 'n' || o.key === 'c') {
        unit = o.key;
        countText = o.value!;
      } else if (o.key === 'q') headers = false;
      else if (o.key === 'v') headers = true;
      else throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
    }
    const count = parseCount(countText);
    if (!count)
      return { stdout: '', stderr: `${cmd}: invalid number of ${unit === 'n' ? 'lines' : 'bytes'}: '${countText}'\n`, status: 1 };
    // tail -n 0 / -c 0 never opens its inputs.
    if (which === 'tail' && count.n === 0 && count.sign !== '+') return { stdout: '', stderr: '', status: 0 };
    const budget = new Budget(cmd);
    const ins = inputs(parsed.operands, stdin, ctx, budget);
    const showHeaders = headers ?? ins.length > 1;
    let out = '';
    let stderr = '';
    let status = 0;
    let first = true;
    for (const input of ins) {
      const display = input.name === '-' ? 'standard input' : input.name;
      if (input.text === undefined) {
        stderr += `${cmd}: cannot open '${input.name}' for reading: No such file or directory\n`;
        status = 1;
        continue;
      }
      if (showHeaders) out += `${first ? '' : '\n'}==> ${display} <==\n`;
      first = false;
      out += select(which, unit, count, input.text);
    }
    return { stdout: out, stderr, status };
  };
}

function select(which: 'head' | 'tail', unit: 'n' | 'c', { n, sign }: { n: number; sign: string }, text: string): string {
  if (unit === 'c') {
    if (which === 'head') return sign === '-' ? text.slice(0, Math.max(0, text.length - n)) : text.slice(0, n);
    return sign === '+' ? text.slice(Math.max(0, n - 1)) : n === 0 ? '' : text.slice(-n);
  }
  const ls = splitKeep(text);
  if (which === 'head') return (sign === '-' ? ls.slice(0, Math.max(0, ls.length - n)) : ls.slice(0, n)).join('');
  return (sign === '+' ? ls.slice(Math.max(0, n - 1)) : n === 0 ? [] : ls.slice(-n)).join('');
}

export const head: Tool = makeHeadTail('head');
export const tail: Tool = makeHeadTail('tail');
