// cmd.exe's own text semantics as pure tools, for the .bat front end
// (src/rom/script/bat): the `if` comparisons, `for /f` line splitting, and
// Windows `find`. They are tools (not front-end code) because a device answer
// can flow into them: the plan then carries them as terms that the runner
// evaluates with the device's real answers (src/plan/evaluate.ts), exactly as
// the front end evaluated literals at plan time.
//
// Their names contain a `/` so that no script can call them by name: the .sh
// front end never looks a name with `/` up as a tool, and the .bat front end
// calls only these and findstr/find by its own mapping.

import { UnsupportedToolError } from './errors.js';
import type { Tool } from './types.js';

const ok = (stdout = '') => ({ stdout, stderr: '', status: 0 });
const no = () => ({ stdout: '', stderr: '', status: 1 });

/**
 * A number as cmd's `if` reads an operand (strtol-style with base 0: 0x.. hex,
 * 0.. octal, else decimal, optional sign); undefined = not a whole number, so
 * the comparison is a string comparison.
 */
export function cmdNumber(s: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const body = m[2]!;
  const n = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16) : body.length > 1 && body.startsWith('0') ? parseInt(body.slice(1), 8) : parseInt(body, 10);
  return m[1] === '-' ? -n : n;
}

/** `if [/i] A OP B`: OP is == (string equality) or EQU NEQ LSS LEQ GTR GEQ (numeric when both are numbers). */
export function cmdCompare(op: string, a: string, b: string, ci: boolean): boolean {
  const x = ci ? a.toUpperCase() : a;
  const y = ci ? b.toUpperCase() : b;
  if (op === '==') return x === y;
  const na = cmdNumber(a);
  const nb = cmdNumber(b);
  // cmd compares non-numbers with lstrcmp; miflash compares them by code unit (the same order for digits, letters of one case and `-`-separated dates).
  const c = na !== undefined && nb !== undefined ? Math.sign(na - nb) : x < y ? -1 : x > y ? 1 : 0;
  switch (op.toUpperCase()) {
    case 'EQU':
      return c === 0;
    case 'NEQ':
      return c !== 0;
    case 'LSS':
      return c < 0;
    case 'LEQ':
      return c <= 0;
    case 'GTR':
      return c > 0;
    case 'GEQ':
      return c >= 0;
    default:
      throw new UnsupportedToolError('if', `the comparison ${op}`);
  }
}

/** argv: cmd/if OP A B [i]. Status 0 when the condition holds. */
export const cmdIf: Tool = (argv) => {
  const [, op, a, b, flags] = argv;
  if (op === undefined || a === undefined || b === undefined) throw new UnsupportedToolError('if', 'a comparison without two operands');
  return cmdCompare(op, a, b, flags === 'i') ? ok() : no();
};

export interface ForFOptions {
  eol: string | undefined;
  skip: number;
  delims: string;
  /** Token numbers, ascending, 1-based. */
  tokens: number[];
  /** `*`: one more variable gets the rest of the line after the last numbered token. */
  rest: boolean;
  usebackq: boolean;
}

export class ForOptionsError extends Error {}

/** The option string of `for /f "..."` (as cmd reads it: delims= runs to the end unless another keyword follows a space). */
export function parseForOptions(s: string): ForFOptions {
  const o: ForFOptions = { eol: ';', skip: 0, delims: ' \t', tokens: [1], rest: false, usebackq: false };
  let i = 0;
  const kw = /^(eol=|skip=|delims=|tokens=|usebackq)/i;
  while (i < s.length) {
    if (s[i] === ' ' || s[i] === '\t') {
      i++;
      continue;
    }
    const m = kw.exec(s.slice(i));
    if (!m) throw new ForOptionsError(`"${s.slice(i)}" was unexpected at this time.`);
    const key = m[1]!.toLowerCase();
    i += m[1]!.length;
    if (key === 'usebackq') o.usebackq = true;
    else if (key === 'eol=') {
      o.eol = s[i];
      i++;
    } else if (key === 'skip=') {
      const n = /^[0-9]+/.exec(s.slice(i));
      if (!n) throw new ForOptionsError(`skip= needs a number`);
      o.skip = Number(n[0]);
      i += n[0].length;
    } else if (key === 'delims=') {
      let end = s.length;
      const next = /[ \t](eol=|skip=|tokens=|usebackq|delims=)/i.exec(s.slice(i));
      if (next) end = i + next.index;
      o.delims = s.slice(i, end);
      i = end;
    } else {
      const t = /^[0-9,*-]+/.exec(s.slice(i));
      if (!t) throw new ForOptionsError(`tokens= needs numbers`);
      i += t[0].length;
      const spec = t[0];
      o.rest = spec.endsWith('*');
      const set = new Set<number>();
      for (const part of (o.rest ? spec.slice(0, -1) : spec).split(',').filter(Boolean)) {
        const r = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
        if (!r) throw new ForOptionsError(`tokens=${spec} is not valid`);
        const lo = Number(r[1]);
        const hi = r[2] === undefined ? lo : Number(r[2]);
        if (lo < 1 || hi > 31 || hi - lo > 31) throw new ForOptionsError(`tokens=${spec} is not valid`);
        for (let k = lo; k <= hi; k++) set.add(k);
      }
      o.tokens = [...set].sort((a, b) => a - b);
      if (o.tokens.length + (o.rest ? 1 : 0) > 26) throw new ForOptionsError(`tokens=${spec} is not valid`);
    }
  }
  return o;
}

/**
 * The body runs of `for /f` over a text: for each line (LF-separated, a CR
 * before the LF dropped) that is not empty, not among the first `skip` and
 * whose first token does not start with the eol character, the values of
 * the loop variables in order; a line where no requested token exists is
 * skipped, as cmd does.
 */
export function forFRuns(text: string, o: ForFOptions): string[][] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  const runs: string[][] = [];
  let skipped = 0;
  const isDelim = (c: string) => o.delims.includes(c);
  for (const line of lines) {
    if (line === '') continue;
    if (skipped < o.skip) {
      skipped++;
      continue;
    }
    // Token boundaries.
    const toks: Array<{ start: number; end: number }> = [];
    let i = 0;
    while (i < line.length) {
      while (i < line.length && isDelim(line[i]!)) i++;
      if (i >= line.length) break;
      const start = i;
      while (i < line.length && !isDelim(line[i]!)) i++;
      toks.push({ start, end: i });
    }
    if (toks.length === 0) continue;
    if (o.eol !== undefined && line[toks[0]!.start] === o.eol) continue;
    const values = o.tokens.map((k) => (toks[k - 1] ? line.slice(toks[k - 1]!.start, toks[k - 1]!.end) : ''));
    if (o.rest) {
      const last = o.tokens.length === 0 ? 0 : o.tokens[o.tokens.length - 1]!;
      const after = toks[last];
      values.push(after ? line.slice(after.start) : '');
    }
    const found = o.tokens.some((k) => toks[k - 1] !== undefined) || (o.rest && values.at(-1) !== '');
    if (!found) continue;
    runs.push(values);
  }
  return runs;
}

/** argv: cmd/for-f OPTIONS N K — the K-th variable's value on the N-th body run (status 1: there is no N-th run). */
export const cmdForF: Tool = (argv, stdin) => {
  const [, opts, n, k] = argv;
  let o: ForFOptions;
  try {
    o = parseForOptions(opts ?? '');
  } catch (err) {
    if (err instanceof ForOptionsError) return { stdout: '', stderr: `${err.message}\n`, status: 2 };
    throw err;
  }
  const runs = forFRuns(stdin, o);
  const run = runs[Number(n) - 1];
  if (!run) return no();
  return ok(k === undefined ? '' : (run[Number(k) - 1] ?? ''));
};

/** Characters that would change how cmd parses a line if a device answer brought them into it. */
export const CMD_SPECIAL = /[\s&|<>()^",;=%!]/;

/** argv: cmd/plain — status 0 when stdin has none of cmd's special characters (a device answer pasted into a command line stays one word). */
export const cmdPlain: Tool = (_argv, stdin) => (CMD_SPECIAL.test(stdin) ? no() : ok());

/** Windows `find [/v] [/c] [/n] [/i] "string"` over standard input. */
export const cmdFind: Tool = (argv, stdin) => {
  const f = { v: false, c: false, n: false, i: false };
  let needle: string | undefined;
  for (const a of argv.slice(1)) {
    if (needle === undefined && /^\/[a-z]$/i.test(a)) {
      const l = a[1]!.toLowerCase();
      if (l in f) f[l as keyof typeof f] = true;
      else throw new UnsupportedToolError('find', `option ${a}`);
    } else if (needle === undefined) needle = a;
    else throw new UnsupportedToolError('find', 'file operands');
  }
  if (needle === undefined) return { stdout: '', stderr: 'FIND: Parameter format not correct\n', status: 2 };
  const lines = stdin.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const want = f.i ? needle.toUpperCase() : needle;
  let out = '';
  let count = 0;
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const hit = (f.i ? line.toUpperCase() : line).includes(want) !== f.v;
    if (!hit) return;
    count++;
    if (!f.c) out += `${f.n ? `[${i + 1}]` : ''}${line}\r\n`;
  });
  if (f.c) out = `${count}\r\n`;
  return { stdout: out, stderr: '', status: count > 0 ? 0 : 1 };
};

/** The cmd tools by their internal names. */
export const CMD_TOOLS: Record<string, Tool> = {
  'cmd/if': cmdIf,
  'cmd/for-f': cmdForF,
  'cmd/plain': cmdPlain,
  'cmd/find': cmdFind,
};
