// findstr — Windows cmd's text search, from Microsoft's documentation and its
// documented quirks (no oracle runs here: tests are spec-based).
//
// Supported: /b /e /l /r /i /x /v /n /m /p (ignored) /c:"string", options with /
// or -, any case, several letters in one option (/ri); without /c: the search
// string is a space-separated list of alternatives; with /c: one string,
// literal unless /r is given. Regex dialect: . * ^ (at the start) $ (at the
// end) [class] [^class] [0-9]-style digit ranges, \x escapes, \< \>.
// Quirks kept: `$` matches before a line's CR LF; a piped last line without a
// newline gets CR LF appended on output. Exit status 0 (a line printed), 1
// (none), 2 (bad command line: "FINDSTR: Bad command line").
// Refused (UnsupportedToolError): /s /o /a /f /d /g /off, and letter ranges
// such as [a-z] (findstr ranges follow a collation order that is not ASCII).

import { UnsupportedToolError } from './errors.js';
import { Budget } from './limits.js';
import { alt, cat, type Node } from './regex/ast.js';
import { Regex } from './regex/engine.js';
import type { Tool } from './types.js';

function parseFindstrRegex(s: string): Node {
  const items: Node[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '^' && i === 0) items.push({ t: 'assert', kind: 'bol' });
    else if (c === '$' && i === s.length - 1) items.push({ t: 'assert', kind: 'eol' });
    else if (c === '.') items.push({ t: 'any', newline: true });
    else if (c === '*' && items.length > 0 && items[items.length - 1]!.t !== 'assert') {
      items.push({ t: 'repeat', node: items.pop()!, min: 0, max: Infinity, greedy: true });
    } else if (c === '\\' && (s[i + 1] === '<' || s[i + 1] === '>')) {
      items.push({ t: 'assert', kind: s[++i] === '<' ? 'word-start' : 'word-end' });
    } else if (c === '\\' && i + 1 < s.length) items.push({ t: 'char', code: s.charCodeAt(++i) });
    else if (c === '[') {
      const close = s.indexOf(']', i + 2);
      if (close < 0) {
        items.push({ t: 'char', code: 91 });
        continue;
      }
      let body = s.slice(i + 1, close);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      const ranges: [number, number][] = [];
      for (let k = 0; k < body.length; k++) {
        if (body[k + 1] === '-' && k + 2 < body.length) {
          const lo = body[k]!;
          const hi = body[k + 2]!;
          if (!/[0-9]/.test(lo) || !/[0-9]/.test(hi))
            throw new UnsupportedToolError('findstr', `the character range [${lo}-${hi}] (findstr ranges are not in ASCII order)`);
          ranges.push([lo.charCodeAt(0), hi.charCodeAt(0)]);
          k += 2;
        } else ranges.push([body.charCodeAt(k), body.charCodeAt(k)]);
      }
      items.push({ t: 'set', test: (code) => ranges.some(([a, b]) => code >= a && code <= b) !== negate });
      i = close;
    } else items.push({ t: 'char', code: c.charCodeAt(0) });
  }
  return cat(items);
}

const literal = (s: string): Node => cat([...s].map((c) => ({ t: 'char', code: c.charCodeAt(0) }) as Node));

export const findstr: Tool = (argv, stdin, ctx) => {
  const cmd = 'findstr';
  const bad = { stdout: '', stderr: 'FINDSTR: Bad command line\n', status: 2 };
  const f = { b: false, e: false, l: false, r: false, i: false, x: false, v: false, n: false, m: false };
  const strings: string[] = [];
  let classic: string | null = null;
  const files: string[] = [];
  for (const a of argv.slice(1)) {
    if ((a.startsWith('/') || a.startsWith('-')) && a.length > 1 && classic === null && files.length === 0) {
      const body = a.slice(1);
      const cMatch = /^([a-z]*)c:(.*)$/is.exec(body);
      const letters = (cMatch ? cMatch[1]! : body).toLowerCase();
      for (const l of letters) {
        if (l in f) f[l as keyof typeof f] = true;
        else if (l === 'p') continue;
        else if ('soafdg'.includes(l)) throw new UnsupportedToolError(cmd, `option /${l}`);
        else return bad;
      }
      if (cMatch) strings.push(cMatch[2]!);
      continue;
    }
    if (strings.length === 0 && classic === null) classic = a;
    else files.push(a);
  }
  const useRegex = f.r || (!f.l && strings.length === 0);
  const searches = strings.length > 0 ? strings : classic === null ? [] : classic.split(' ').filter((x) => x !== '');
  if (strings.length === 0 && classic === null) return bad;
  if (classic !== null && strings.length > 0) files.unshift(classic);
  const nodes = searches.map((s) => (useRegex ? parseFindstrRegex(s) : literal(s)));
  let node: Node = alt(nodes.length ? nodes : [{ t: 'empty' }]);
  if (f.x || f.b) node = cat([{ t: 'assert', kind: 'bol' }, node]);
  if (f.x || f.e) node = cat([node, { t: 'assert', kind: 'eol' }]);
  const budget = new Budget(cmd);
  const re = new Regex(node, 0, { discipline: 'posix', icase: f.i, command: cmd });
  let out = '';
  let stderr = '';
  let found = false;
  const list = files.length === 0 ? [null] : files;
  for (const file of list) {
    const text = file === null ? stdin : ctx.readFile?.(file);
    if (text === undefined) {
      stderr += `FINDSTR: Cannot open ${file}\n`;
      continue;
    }
    budget.checkInput(text);
    let start = 0;
    let lineNo = 0;
    let fileHit = false;
    while (start < text.length) {
      const nl = text.indexOf('\n', start);
      const raw = nl < 0 ? text.slice(start) : text.slice(start, nl + 1);
      start = nl < 0 ? text.length : nl + 1;
      lineNo++;
      // `$` matches before the line's CR LF (and, for the last line, only before a newline).
      const body = raw.endsWith('\r\n') ? raw.slice(0, -2) : raw.endsWith('\n') ? raw.slice(0, -1) : raw;
      const subject = nl < 0 && (f.e || f.x || /\$$/.test(searches.join(' '))) ? body + '\u0000' : body;
      const hit = re.exec(subject, 0, budget) !== null;
      if (hit === f.v) continue;
      found = true;
      fileHit = true;
      if (f.m) break;
      const prefix = (files.length > 1 && file !== null ? `${file}:` : '') + (f.n ? `${lineNo}:` : '');
      out += prefix + (nl < 0 ? raw + '\r\n' : raw);
      budget.checkOutput(out.length);
    }
    if (f.m && fileHit) out += `${file ?? ''}\r\n`;
  }
  return { stdout: out, stderr, status: found ? 0 : 1 };
};
