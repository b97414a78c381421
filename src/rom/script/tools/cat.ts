// cat — GNU coreutils 9.1: concatenates standard input ("-" or no operand) and
// files read through ctx.readFile, byte for byte. Supported: -n (number lines),
// -b (number non-blank lines), -E (show $ at line ends), -s (squeeze blank
// lines), -u (ignored). Refused: -A -e -T -t -v (display of control characters).

import { getopt, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { inputs, usageError } from './io.js';
import { Budget } from './limits.js';
import type { Tool } from './types.js';

const SHORT: Record<string, ArgKind> = Object.fromEntries([...'AbeEnstTuv'].map((c) => [c, 'none']));
const LONG: Record<string, [string, ArgKind]> = {
  'show-all': ['A', 'none'],
  'number-nonblank': ['b', 'none'],
  'show-ends': ['E', 'none'],
  number: ['n', 'none'],
  'squeeze-blank': ['s', 'none'],
  'show-tabs': ['T', 'none'],
  'show-nonprinting': ['v', 'none'],
};

export const cat: Tool = (argv, stdin, ctx) => {
  const cmd = 'cat';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  const f = { n: false, b: false, E: false, s: false };
  for (const o of parsed.options) {
    if (o.key === 'u') continue;
    if (o.key in f) f[o.key as keyof typeof f] = true;
    else throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
  }
  const budget = new Budget(cmd);
  let out = '';
  let stderr = '';
  let status = 0;
  let lineNo = 0;
  // Line state carries across files, as cat's does.
  let atLineStart = true;
  let blankRun = 0;
  for (const input of inputs(parsed.operands, stdin, ctx, budget)) {
    if (input.text === undefined) {
      stderr += `${cmd}: ${input.name}: No such file or directory\n`;
      status = 1;
      continue;
    }
    if (!f.n && !f.b && !f.E && !f.s) {
      out += input.text;
      continue;
    }
    const t = input.text;
    for (let i = 0; i < t.length; ) {
      const nl = t.indexOf('\n', i);
      const end = nl < 0 ? t.length : nl;
      const body = t.slice(i, end);
      const blank = atLineStart && body === '' && nl >= 0;
      if (blank) blankRun++;
      else if (atLineStart) blankRun = 0;
      if (!(f.s && blank && blankRun > 1)) {
        if (atLineStart && (f.b ? !blank : f.n)) out += `${String(++lineNo).padStart(6)}\t`;
        // -E shows a CR ending the line as ^M, as cat 9.1 does.
        if (f.E && nl >= 0 && body.endsWith('\r')) out += body.slice(0, -1) + '^M$\n';
        else out += body + (nl >= 0 ? (f.E ? '$' : '') + '\n' : '');
      }
      atLineStart = nl >= 0;
      i = nl < 0 ? t.length : nl + 1;
    }
    budget.checkOutput(out.length);
  }
  return { stdout: out, stderr, status };
};
