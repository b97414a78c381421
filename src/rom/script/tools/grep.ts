// grep, egrep, fgrep — GNU grep 3.8 (Debian 12) under LC_ALL=C.
//
// Supported: -E -F -G -P (last wins), -e PATTERNS (repeatable), -f FILE,
// -i/-y/--no-ignore-case, -v, -w, -x, -c, -o, -q, -s, -n, -b, -h, -H, -l, -L,
// -m NUM, -a, -U (no-op), --label, --color=never|auto, --line-buffered, and
// their long spellings (unique prefixes accepted, as getopt_long does).
// Patterns containing newlines are several patterns. File operands are read
// through ctx.readFile ("-" is standard input). Exit status 0 (a line selected),
// 1 (none), 2 (error; 0 with -q when a line was selected). Input with a NUL
// byte is binary: a selected line prints "grep: NAME: binary file matches" on
// stderr instead, as grep does. A CR before LF is part of the line.
// Options GNU grep knows but miflash does not implement (context -A/-B/-C,
// recursion, -z, --null, -T, -Z, ...) throw UnsupportedToolError; options grep
// itself rejects get grep's usage error and status 2.

import { getopt, lines, type ArgKind } from './args.js';
import { Budget, LIMITS } from './limits.js';
import { ToolLimitError, UnsupportedToolError } from './errors.js';
import { parseRegex, Regex, RegexSyntaxError, UnsupportedRegexError, type Dialect } from './regex/index.js';
import { cat, isWordCode, type Node } from './regex/ast.js';
import type { Tool, ToolResult } from './types.js';

const SUPPORTED = 'EFGPefiyvwxcoqsnbhHlLmaU';
const KNOWN_UNSUPPORTED = 'ABCDdIRrTuVZz0123456789X';
const WITH_ARG = new Set(['e', 'f', 'm', 'A', 'B', 'C', 'D', 'd', 'X']);

const SHORT: Record<string, ArgKind> = Object.fromEntries(
  [...SUPPORTED, ...KNOWN_UNSUPPORTED].map((c) => [c, WITH_ARG.has(c) ? 'required' : 'none']),
);

const LONG: Record<string, [string, ArgKind]> = {
  // In GNU grep's own table order, which its ambiguity message lists.
  'basic-regexp': ['G', 'none'],
  'extended-regexp': ['E', 'none'],
  'fixed-strings': ['F', 'none'],
  'perl-regexp': ['P', 'none'],
  'after-context': ['A', 'required'],
  'before-context': ['B', 'required'],
  'binary-files': ['binary-files', 'required'],
  'byte-offset': ['b', 'none'],
  'context': ['C', 'required'],
  'color': ['color', 'optional'],
  'colour': ['color', 'optional'],
  'count': ['c', 'none'],
  'devices': ['D', 'required'],
  'directories': ['d', 'required'],
  'dereference-recursive': ['R', 'none'],
  'exclude': ['exclude', 'required'],
  'exclude-from': ['exclude-from', 'required'],
  'exclude-dir': ['exclude-dir', 'required'],
  'file': ['f', 'required'],
  'files-with-matches': ['l', 'none'],
  'files-without-match': ['L', 'none'],
  'help': ['help', 'none'],
  'include': ['include', 'required'],
  'ignore-case': ['i', 'none'],
  'no-ignore-case': ['no-ignore-case', 'none'],
  'initial-tab': ['T', 'none'],
  'label': ['label', 'required'],
  'line-buffered': ['line-buffered', 'none'],
  'line-number': ['n', 'none'],
  'line-regexp': ['x', 'none'],
  'max-count': ['m', 'required'],
  'no-filename': ['h', 'none'],
  'no-group-separator': ['no-group-separator', 'none'],
  'group-separator': ['group-separator', 'required'],
  'no-messages': ['s', 'none'],
  'null': ['Z', 'none'],
  'null-data': ['z', 'none'],
  'only-matching': ['o', 'none'],
  'quiet': ['q', 'none'],
  'recursive': ['r', 'none'],
  'regexp': ['e', 'required'],
  'invert-match': ['v', 'none'],
  'silent': ['q', 'none'],
  'text': ['a', 'none'],
  'binary': ['U', 'none'],
  'version': ['V', 'none'],
  'with-filename': ['H', 'none'],
  'word-regexp': ['w', 'none'],
};

const usage = (cmd: string, message?: string): ToolResult => ({
  stdout: '',
  stderr: `${message ? message + '\n' : ''}Usage: ${cmd} [OPTION]... PATTERNS [FILE]...\nTry '${cmd} --help' for more information.\n`,
  status: 2,
});

interface Matcher {
  /** First match in `line` at or after `from` ([start, end]) or null. */
  find(line: string, from: number): [number, number] | null;
}

export const grep: Tool = (argv, stdin, ctx) => {
  const cmd = 'grep';
  const name = argv[0] ?? 'grep';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usage(cmd, parsed.message);
  let dialect: Dialect | 'fixed' = name === 'egrep' ? 'ere' : name === 'fgrep' ? 'fixed' : 'bre';
  const patterns: string[] = [];
  let patternsGiven = false;
  const o = { i: false, v: false, w: false, x: false, c: false, o: false, q: false, s: false, n: false, b: false, l: false, L: false, a: false };
  let withName: boolean | null = null;
  let maxCount = Infinity;
  let label = '(standard input)';
  const budget = new Budget(cmd);
  for (const opt of parsed.options) {
    switch (opt.key) {
      case 'E':
        dialect = 'ere';
        break;
      case 'F':
        dialect = 'fixed';
        break;
      case 'G':
        dialect = 'bre';
        break;
      case 'P':
        dialect = 'pcre';
        break;
      case 'e':
        patterns.push(...opt.value!.split('\n'));
        patternsGiven = true;
        break;
      case 'f': {
        const text = opt.value === '-' ? stdin : ctx.readFile?.(opt.value!);
        if (text === undefined) return { stdout: '', stderr: `grep: ${opt.value}: No such file or directory\n`, status: 2 };
        budget.checkInput(text);
        patterns.push(...lines(text));
        patternsGiven = true;
        break;
      }
      case 'i':
      case 'y':
        o.i = true;
        break;
      case 'no-ignore-case':
        o.i = false;
        break;
      case 'h':
        withName = false;
        break;
      case 'H':
        withName = true;
        break;
      case 'm': {
        const v = opt.value!.trim();
        if (!/^-?\d+$/.test(v)) return { stdout: '', stderr: `grep: invalid max count\n`, status: 2 };
        maxCount = Number(v) < 0 ? Infinity : Number(v);
        break;
      }
      case 'label':
        label = opt.value!;
        break;
      case 'color':
        if (opt.value !== undefined && !['never', 'no', 'none', 'auto', 'tty', 'if-tty'].includes(opt.value))
          throw new UnsupportedToolError(cmd, `--color=${opt.value}`);
        break;
      case 'U':
      case 'line-buffered':
        break;
      default:
        if (opt.key.length === 1 && opt.key in o) (o as Record<string, boolean>)[opt.key] = true;
        else throw new UnsupportedToolError(cmd, `option ${opt.spelled}`);
    }
  }
  const operands = [...parsed.operands];
  if (!patternsGiven) {
    if (operands.length === 0) return usage(cmd);
    patterns.push(...operands.shift()!.split('\n'));
  }
  if (dialect === 'pcre' && patterns.length > 1)
    return { stdout: '', stderr: 'grep: the -P option only supports a single pattern\n', status: 2 };

  let matchers: Matcher[];
  let stderr = '';
  try {
    const built = patterns.map((p) => buildMatcher(p, dialect, o, budget));
    for (const b of built) for (const w of b.warnings) stderr += `grep: warning: ${w}\n`;
    matchers = built.map((b) => b.matcher);
  } catch (e) {
    if (e instanceof RegexSyntaxError) return { stdout: '', stderr: `grep: ${e.message}\n`, status: 2 };
    if (e instanceof UnsupportedRegexError) throw new UnsupportedToolError(cmd, `the -P construct ${e.message}`);
    throw e;
  }

  // GNU grep: the first match across all patterns, longest at the leftmost start.
  const find = (line: string, from: number): [number, number] | null => {
    let best: [number, number] | null = null;
    for (const m of matchers) {
      const r = m.find(line, from);
      if (r && (!best || r[0] < best[0] || (r[0] === best[0] && r[1] > best[1]))) best = r;
    }
    return best;
  };

  const files = operands.length === 0 ? ['-'] : operands;
  const showName = withName ?? files.length > 1;
  let out = '';
  let selectedAny = false;
  let error = false;
  if (maxCount === 0) return { stdout: '', stderr, status: 1 };

  for (const file of files) {
    const text = file === '-' ? stdin : ctx.readFile?.(file);
    const display = file === '-' ? label : file;
    if (text === undefined) {
      if (!o.s) stderr += `grep: ${file}: No such file or directory\n`;
      error = true;
      continue;
    }
    budget.checkInput(text);
    const binary = !o.a && text.includes('\0');
    const prefix = showName ? `${display}:` : '';
    let count = 0;
    let offset = 0;
    let lineNo = 0;
    for (const line of lines(text)) {
      lineNo++;
      const lineOffset = offset;
      offset += line.length + 1;
      const matched = find(line, 0) !== null;
      if (matched === o.v) continue;
      count++;
      selectedAny = true;
      if (o.q) return { stdout: '', stderr, status: 0 };
      if (o.l || o.L) break;
      if (!o.c && !o.q) {
        if (binary) {
          stderr += `grep: ${display}: binary file matches\n`;
          break;
        }
        const head = prefix + (o.n ? `${lineNo}:` : '');
        if (o.o) {
          if (!o.v) {
            let pos = 0;
            while (pos <= line.length) {
              const m = find(line, pos);
              if (!m) break;
              if (m[1] > m[0]) {
                out += `${head}${o.b ? `${lineOffset + m[0]}:` : ''}${line.slice(m[0], m[1])}\n`;
                pos = m[1];
              } else pos = m[1] + 1;
              budget.checkOutput(out.length);
            }
          }
        } else out += `${head}${o.b ? `${lineOffset}:` : ''}${line}\n`;
        budget.checkOutput(out.length);
      }
      if (count >= maxCount) break;
    }
    if (o.q) continue;
    if (o.c) out += `${prefix}${count}\n`;
    if (o.l && count > 0) out += `${display}\n`;
    if (o.L && count === 0) out += `${display}\n`;
  }
  const status = error && !(o.q && selectedAny) ? 2 : selectedAny ? 0 : 1;
  return { stdout: out, stderr, status };
};

function buildMatcher(
  pattern: string,
  dialect: Dialect | 'fixed',
  o: { i: boolean; w: boolean; x: boolean },
  budget: Budget,
): { matcher: Matcher; warnings: string[] } {
  let node: Node;
  let groups = 0;
  let warnings: string[] = [];
  if (dialect === 'fixed') node = cat([...pattern].map((c) => ({ t: 'char', code: c.charCodeAt(0) }) as Node));
  else {
    if (pattern.length > LIMITS.patternChars) throw new ToolLimitError('grep', `a pattern of ${pattern.length} characters`);
    const p = parseRegex(pattern, dialect);
    node = p.node;
    groups = p.groups;
    warnings = p.warnings;
  }
  // -x: the whole line; -w: preceded and followed by a non-word character (or the line's ends).
  if (o.x) node = cat([{ t: 'assert', kind: 'bol' }, { t: 'group', node, index: null }, { t: 'assert', kind: 'eol' }]);
  else if (o.w) {
    const word: Node = { t: 'set', test: isWordCode };
    node = cat([
      { t: 'look', node: word, ahead: false, negate: true },
      { t: 'group', node, index: null },
      { t: 'look', node: word, ahead: true, negate: true },
    ]);
  }
  const regex = new Regex(node, groups, {
    discipline: dialect === 'pcre' ? 'perl' : 'posix',
    icase: o.i,
    command: 'grep',
  });
  return {
    warnings,
    matcher: {
      find(line, from) {
        const m = regex.exec(line, from, budget);
        return m ? [m.start, m.end] : null;
      },
    },
  };
}
