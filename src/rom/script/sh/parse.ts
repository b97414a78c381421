// A parser for POSIX shell scripts (the Shell Command Language grammar of
// POSIX.1-2017 §2.10: lists, and-or lists, pipelines, simple and compound
// commands, function definitions, redirections, here-documents, quoting and
// every expansion form), plus the bash forms flash scripts use (`function f`,
// `[[ ... ]]`, `&>`, `<<<`, `$'...'`), which the interpreter allows only for
// #!/bin/bash scripts. Recursive descent over the source text: no regexes
// over lines, no tokeniser state machine to get out of step.
//
// Why hand-written: see README "Dependencies and why" (the npm shell parsers
// cost 150 ms to 1 s of start-up; this one parses a flash_all.sh in well under
// a millisecond). Its correctness is checked against dash and bash themselves
// (test/rom/sh/parse.test.ts).
import type { Command, List, ParamOp, Pos, Redir, Word, WordPart } from './ast.js';

export class ShSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    message: string,
  ) {
    super(message);
  }
}

const RESERVED = new Set(['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'case', 'esac', 'while', 'until', 'for', 'in', '{', '}', '!', 'function', '[[', ']]']);
/** Words that end a list. */
const LIST_END = new Set(['then', 'else', 'elif', 'fi', 'do', 'done', 'esac', '}']);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPS = ['&&', '||', ';;', ';&', '|&', '&>>', '&>', '<<<', '<<-', '<<', '>>', '<&', '>&', '<>', '>|', ';', '&', '|', '(', ')', '<', '>'];
const REDIR_OPS = new Set(['&>>', '&>', '<<<', '<<-', '<<', '>>', '<&', '>&', '<>', '>|', '<', '>']);
const RESERVED_RUN = /[A-Za-z{}!\[\]]+/y;
const MAX_NESTING = 200;

export interface ParseOptions {
  /** Accept bash-only syntax. */
  bash: boolean;
}

export function parseSh(source: string, opts: ParseOptions = { bash: true }): List {
  const p = new Parser(source.startsWith('\ufeff') ? source.slice(1) : source, opts);
  return p.program();
}

class Parser {
  private pos = 0;
  private readonly lineStarts: number[] = [0];
  private readonly pendingHeredocs: Array<{ redir: Redir; delim: string; quoted: boolean; strip: boolean }> = [];
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly opts: ParseOptions,
    private readonly ids: { n: number } = { n: 0 },
    /** Lines before this text in the script (sub-parses of backquotes, here-documents, arithmetic). */
    private readonly lineBase = 0,
  ) {
    for (let i = 0; i < src.length; i++) if (src[i] === '\n') this.lineStarts.push(i + 1);
  }

  // ---- positions and errors ----

  private lineOf(offset: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  private at(offset = this.pos): Pos {
    return { line: this.lineOf(offset) + this.lineBase, offset };
  }

  private lineText(offset: number): string {
    const line = this.lineOf(offset);
    const start = this.lineStarts[line - 1]!;
    const end = this.src.indexOf('\n', start);
    return this.src.slice(start, end < 0 ? undefined : end).replace(/\r$/, '').trim();
  }

  private fail(msg: string, offset = this.pos): never {
    throw new ShSyntaxError(this.lineOf(offset) + this.lineBase, this.lineText(offset), msg);
  }

  private bashOnly(what: string, offset = this.pos): void {
    if (!this.opts.bash) this.fail(`${what} is bash syntax, but the script is run by sh (no #!/bin/bash)`, offset);
  }

  // ---- characters ----

  private ch(o = 0): string {
    return this.src[this.pos + o] ?? '';
  }

  private startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  /** Skips a backslash-newline (line continuation) at the current position, repeatedly. */
  private skipContinuations(): void {
    while (this.ch() === '\\' && (this.ch(1) === '\n' || (this.ch(1) === '\r' && this.ch(2) === '\n'))) this.pos += this.ch(1) === '\r' ? 3 : 2;
  }

  /** Blanks, continuations and a comment (up to, not including, the newline). */
  private skipBlanks(): void {
    for (;;) {
      this.skipContinuations();
      const c = this.ch();
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '#') {
        while (this.pos < this.src.length && this.ch() !== '\n') this.pos++;
      } else return;
    }
  }

  /** Newlines (reading here-documents due at each) and blanks. */
  private skipNewlines(): boolean {
    let any = false;
    for (;;) {
      this.skipBlanks();
      if (this.ch() !== '\n') return any;
      this.pos++;
      any = true;
      this.readHeredocs();
    }
  }

  private isMetaAt(i: number): boolean {
    const c = this.src[i]!;
    return c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')' || c === '<' || c === '>' || (c === '\r' && this.src[i + 1] === '\n');
  }

  private isMeta(c: string): boolean {
    return c === '' || c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')' || c === '<' || c === '>' || (c === '\r' && this.ch(1) === '\n');
  }

  /** The control or redirection operator at the current position, if any. */
  private peekOp(): string | undefined {
    this.skipContinuations();
    const c = this.src.charCodeAt(this.pos);
    // Only these characters start an operator.
    if (c !== 38 && c !== 124 && c !== 59 && c !== 40 && c !== 41 && c !== 60 && c !== 62) return undefined;
    return OPS.find((o) => this.src.startsWith(o, this.pos));
  }

  // ---- grammar ----

  program(): List {
    const list = this.list();
    this.skipNewlines();
    if (this.pos < this.src.length) {
      const op = this.peekOp();
      this.fail(`unexpected ${op ? `"${op}"` : `"${this.peekWordText() ?? this.ch()}"`}`);
    }
    this.readHeredocs(); // a here-document operator on the last line: its body is empty
    return list;
  }

  private peekWordText(): string | undefined {
    const save = this.pos;
    const w = this.word();
    this.pos = save;
    return w?.text;
  }

  /** A reserved word at the current position (command position only), without consuming it. */
  private peekReserved(): string | undefined {
    this.skipBlanks();
    RESERVED_RUN.lastIndex = this.pos;
    const m = RESERVED_RUN.exec(this.src);
    if (!m || !RESERVED.has(m[0])) return undefined;
    // The word must end there (`fi;`, `done)`, `then\n`), not go on (`fix`, `do=1`, `{a}`).
    const end = this.pos + m[0].length;
    const next = this.src[end] ?? '';
    if (!(next === '' || next === ' ' || next === '\t' || next === '\n' || next === '\r' || next === ';' || next === '&' || next === '|' || next === '(' || next === ')' || next === '<' || next === '>')) return undefined;
    return m[0];
  }

  private expectReserved(word: string): void {
    const r = this.peekReserved();
    if (r !== word) this.fail(`expected "${word}"${r ? ` but found "${r}"` : ''}`);
    this.skipBlanks();
    this.word();
  }

  private list(end?: Set<string>): List {
    const cmds: Command[] = [];
    if (++this.depth > MAX_NESTING) this.fail('commands nest too deeply');
    try {
      for (;;) {
        this.skipNewlines();
        if (this.pos >= this.src.length) break;
        const op = this.peekOp();
        if (op === ')' || op === ';;' || op === ';&') break;
        const r = this.peekReserved();
        if (r !== undefined && (LIST_END.has(r) || end?.has(r))) break;
        let cmd = this.andOr();
        this.skipBlanks();
        const sep = this.peekOp();
        if (sep === '&') {
          this.pos++;
          cmd = { k: 'background', cmd, pos: cmd.pos, text: cmd.text };
        } else if (sep === ';') this.pos++;
        else if (this.ch() !== '\n' && this.pos < this.src.length && sep !== ')' && sep !== ';;' && sep !== ';&') {
          const rr = this.peekReserved();
          if (rr === undefined || !LIST_END.has(rr)) this.fail(`unexpected ${sep ? `"${sep}"` : `"${this.peekWordText() ?? this.ch()}"`}`);
        }
        cmds.push(cmd);
      }
    } finally {
      this.depth--;
    }
    return { cmds };
  }

  private andOr(): Command {
    const first = this.pipeline();
    const rest: Array<{ op: '&&' | '||'; cmd: Command }> = [];
    for (;;) {
      this.skipBlanks();
      const op = this.peekOp();
      if (op !== '&&' && op !== '||') break;
      this.pos += 2;
      this.skipNewlines();
      rest.push({ op, cmd: this.pipeline() });
    }
    return rest.length === 0 ? first : { k: 'andor', first, rest, pos: first.pos, text: first.text };
  }

  private pipeline(): Command {
    this.skipBlanks();
    const start = this.pos;
    let bang = false;
    if (this.peekReserved() === '!') {
      this.word();
      bang = true;
    }
    const cmds = [this.command()];
    for (;;) {
      this.skipBlanks();
      const op = this.peekOp();
      if (op === '|&') this.fail('"|&" is not supported');
      if (op !== '|') break;
      this.pos++;
      this.skipNewlines();
      cmds.push(this.command());
    }
    return cmds.length === 1 && !bang ? cmds[0]! : { k: 'pipeline', bang, cmds, pos: this.at(start), text: this.lineText(start) };
  }

  private command(): Command {
    this.skipBlanks();
    const start = this.pos;
    const base = { pos: this.at(start), text: this.lineText(start) };
    const r = this.peekReserved();
    if (this.pos >= this.src.length) this.fail('a command is missing');
    switch (r) {
      case 'if':
        return this.withRedirs(this.ifCommand(base));
      case 'while':
      case 'until': {
        this.word();
        const cond = this.list(new Set(['do']));
        this.expectReserved('do');
        const body = this.list();
        this.expectReserved('done');
        return this.withRedirs({ k: 'loop', until: r === 'until', cond, body, redirs: [], ...base });
      }
      case 'for':
        return this.withRedirs(this.forCommand(base));
      case 'case':
        return this.withRedirs(this.caseCommand(base));
      case '{': {
        this.word();
        const body = this.list();
        this.expectReserved('}');
        return this.withRedirs({ k: 'group', body, subshell: false, redirs: [], ...base });
      }
      case 'function': {
        this.bashOnly('"function NAME"');
        this.word();
        this.skipBlanks();
        const name = this.word();
        if (!name || !NAME.test(name.text)) this.fail('bad function name');
        this.skipBlanks();
        if (this.startsWith('()')) this.pos += 2;
        else if (this.peekOp() === '(') {
          this.pos++;
          this.skipBlanks();
          if (this.ch() !== ')') this.fail('expected ")"');
          this.pos++;
        }
        this.skipNewlines();
        return { k: 'func', name: name.text, body: this.command(), ...base };
      }
      case '[[': {
        this.bashOnly('"[["');
        this.word();
        const words: Word[] = [];
        for (;;) {
          this.skipBlanks();
          if (this.peekReserved() === ']]') {
            this.word();
            break;
          }
          const op = this.peekOp();
          if (op === '&&' || op === '||' || op === '(' || op === ')' || op === '<' || op === '>') {
            words.push({ parts: [{ k: 'lit', v: op, quoted: false }], pos: this.at(), text: op });
            this.pos += op.length;
            continue;
          }
          const w = this.word();
          if (!w) this.fail('"[[" without "]]"');
          words.push(w);
        }
        return this.withRedirs({ k: 'dbracket', words, redirs: [], ...base });
      }
      case undefined:
        break;
      default:
        if (r !== '!' && r !== ']]') this.fail(`unexpected "${r}"`);
    }
    if (this.peekOp() === '(') {
      this.pos++;
      const body = this.list();
      this.skipNewlines();
      if (this.peekOp() !== ')') this.fail('"(" without ")"');
      this.pos++;
      return this.withRedirs({ k: 'group', body, subshell: true, redirs: [], ...base });
    }
    // NAME() compound: a function definition.
    const save = this.pos;
    const w = this.word();
    if (w && NAME.test(w.text) && w.parts.every((x) => x.k === 'lit' && !x.quoted)) {
      this.skipBlanks();
      if (this.ch() === '(') {
        this.pos++;
        this.skipBlanks();
        if (this.ch() !== ')') this.fail('expected ")" in a function definition');
        this.pos++;
        this.skipNewlines();
        return { k: 'func', name: w.text, body: this.command(), ...base };
      }
    }
    this.pos = save;
    return this.simple(base);
  }

  private withRedirs(c: Command): Command {
    for (;;) {
      this.skipBlanks();
      const r = this.redirection();
      if (!r) return c;
      if (!('redirs' in c)) this.fail('a redirection here is not supported');
      c.redirs.push(r);
    }
  }

  private ifCommand(base: { pos: Pos; text: string }): Command {
    this.word();
    const clauses: Array<{ cond: List; body: List }> = [];
    let elseBody: List | undefined;
    const cond = this.list(new Set(['then']));
    this.expectReserved('then');
    clauses.push({ cond, body: this.list() });
    for (;;) {
      const r = this.peekReserved();
      if (r === 'elif') {
        this.word();
        const c = this.list(new Set(['then']));
        this.expectReserved('then');
        clauses.push({ cond: c, body: this.list() });
      } else if (r === 'else') {
        this.word();
        elseBody = this.list();
      } else break;
    }
    this.expectReserved('fi');
    if (clauses.some((c) => c.cond.cmds.length === 0)) this.fail('"if" without a condition', base.pos.offset);
    return { k: 'if', clauses, ...(elseBody ? { else: elseBody } : {}), redirs: [], ...base };
  }

  private forCommand(base: { pos: Pos; text: string }): Command {
    this.word();
    this.skipBlanks();
    const name = this.word();
    if (!name || !NAME.test(name.text)) this.fail('"for" needs a variable name');
    this.skipNewlines();
    let words: Word[] | undefined;
    if (this.peekReserved() === 'in') {
      this.word();
      words = [];
      for (;;) {
        this.skipBlanks();
        const op = this.peekOp();
        if (op === ';' || this.ch() === '\n') {
          if (op === ';') this.pos++;
          break;
        }
        const w = this.word();
        if (!w) this.fail('bad word in "for ... in"');
        words.push(w);
      }
    } else if (this.peekOp() === ';') this.pos++;
    this.skipNewlines();
    this.expectReserved('do');
    const body = this.list();
    this.expectReserved('done');
    return { k: 'for', name: name.text, ...(words ? { words } : {}), body, redirs: [], ...base };
  }

  private caseCommand(base: { pos: Pos; text: string }): Command {
    this.word();
    this.skipBlanks();
    const word = this.word();
    if (!word) this.fail('"case" needs a word');
    this.skipNewlines();
    this.expectReserved('in');
    const items: Array<{ patterns: Word[]; body: List }> = [];
    for (;;) {
      this.skipNewlines();
      if (this.peekReserved() === 'esac') break;
      if (this.peekOp() === '(') this.pos++;
      const patterns: Word[] = [];
      for (;;) {
        this.skipBlanks();
        const w = this.word();
        if (!w) this.fail('bad pattern in "case"');
        patterns.push(w);
        this.skipBlanks();
        if (this.peekOp() === '|') {
          this.pos++;
          continue;
        }
        if (this.peekOp() !== ')') this.fail('expected ")" after a case pattern');
        this.pos++;
        break;
      }
      const body = this.list(new Set(['esac']));
      items.push({ patterns, body });
      this.skipNewlines();
      const op = this.peekOp();
      if (op === ';;') this.pos += 2;
      else if (op === ';&') this.fail('";&" is not supported');
      else if (this.peekReserved() !== 'esac') this.fail('expected ";;" or "esac"');
    }
    this.expectReserved('esac');
    return { k: 'case', word, items, redirs: [], ...base };
  }

  private simple(base: { pos: Pos; text: string }): Command {
    const assigns: Array<{ name: string; value: Word }> = [];
    const words: Word[] = [];
    const redirs: Redir[] = [];
    for (;;) {
      this.skipBlanks();
      const r = this.redirection();
      if (r) {
        redirs.push(r);
        continue;
      }
      const op = this.peekOp();
      if (op !== undefined || this.ch() === '\n' || this.pos >= this.src.length) break;
      const w = this.word();
      if (!w) break;
      if (words.length === 0) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(w.text);
        const first = w.parts[0];
        if (m && first?.k === 'lit' && !first.quoted && first.v.startsWith(`${m[1]}=`)) {
          const rest = first.v.slice(m[1]!.length + 1);
          const parts = [...(rest ? [{ ...first, v: rest }] : []), ...w.parts.slice(1)];
          assigns.push({ name: m[1]!, value: { parts, pos: w.pos, text: w.text.slice(m[1]!.length + 1) } });
          continue;
        }
        if (/^[A-Za-z_][A-Za-z0-9_]*\+?=\(/.test(w.text) || (m && this.ch() === '(')) this.fail('arrays are not supported');
      }
      words.push(w);
    }
    if (assigns.length === 0 && words.length === 0 && redirs.length === 0) this.fail(`unexpected ${this.peekOp() ? `"${this.peekOp()}"` : 'end of line'}`);
    return { k: 'simple', assigns, words, redirs, ...base };
  }

  private redirection(): Redir | undefined {
    const save = this.pos;
    let fd: number | undefined;
    let i = this.pos;
    while (i < this.src.length && i - this.pos < 10 && this.src.charCodeAt(i) >= 48 && this.src.charCodeAt(i) <= 57) i++;
    if (i > this.pos && (this.src[i] === '<' || this.src[i] === '>')) {
      fd = Number(this.src.slice(this.pos, i));
      this.pos = i;
    }
    const op = this.peekOp();
    if (op === undefined || !REDIR_OPS.has(op)) {
      this.pos = save;
      return undefined;
    }
    if (op.startsWith('&') || op === '<<<') {
      this.bashOnly(`"${op}"`);
      if (fd !== undefined) this.fail(`bad redirection ${fd}${op}`);
    }
    this.pos += op.length;
    this.skipBlanks();
    const target = this.word();
    if (!target) this.fail(`"${op}" without a target`);
    const r: Redir = { fd: fd ?? (op.startsWith('<') && op !== '<>' ? 0 : 1), op: op as Redir['op'], target };
    if (op === '<<' || op === '<<-') {
      const quoted = target.parts.some((p) => p.k !== 'lit' || p.quoted);
      const delim = target.parts.map((p) => (p.k === 'lit' ? p.v : p.k === 'dq' ? p.parts.map((q) => (q.k === 'lit' ? q.v : '')).join('') : '')).join('');
      this.pendingHeredocs.push({ redir: r, delim, quoted, strip: op === '<<-' });
    }
    return r;
  }

  private readHeredocs(): void {
    while (this.pendingHeredocs.length > 0) {
      const h = this.pendingHeredocs.shift()!;
      const start = this.pos;
      let bodyEnd = -1;
      for (;;) {
        if (this.pos >= this.src.length) {
          // dash and bash end a here-document at the end of the script (bash warns).
          bodyEnd = this.src.length;
          break;
        }
        const nl = this.src.indexOf('\n', this.pos);
        const end = nl < 0 ? this.src.length : nl;
        let line = this.src.slice(this.pos, end).replace(/\r$/, '');
        if (h.strip) line = line.replace(/^\t+/, '');
        if (line === h.delim) {
          bodyEnd = this.pos;
          this.pos = nl < 0 ? end : nl + 1;
          break;
        }
        this.pos = nl < 0 ? end : nl + 1;
      }
      let text = this.src.slice(start, bodyEnd);
      if (h.strip) text = text.replace(/^\t+/gm, '');
      const pos = this.at(start);
      h.redir.heredoc = h.quoted ? { parts: [{ k: 'lit', v: text, quoted: true }], pos, text } : this.subWord(text, start, 'heredoc');
    }
  }

  /** Parses text (a here-document body, backquote contents) with the parser's line numbers. */
  private subWord(text: string, offset: number, mode: 'heredoc'): Word {
    const sub = new Parser(text, this.opts, this.ids, this.lineOf(offset) - 1 + this.lineBase);
    const parts = sub.dqParts('', mode);
    return { parts, pos: this.at(offset), text };
  }

  // ---- words ----

  /** A word at the current position, or undefined at an operator, newline or end. */
  private word(): Word | undefined {
    this.skipContinuations();
    const start = this.pos;
    const parts: WordPart[] = [];
    let lit = '';
    const flush = () => {
      if (lit !== '') parts.push({ k: 'lit', v: lit, quoted: false });
      lit = '';
    };
    for (;;) {
      this.skipContinuations();
      const c = this.ch();
      if (this.isMeta(c)) break;
      if (c === '\\') {
        flush();
        if (this.pos + 1 >= this.src.length) {
          this.pos++;
          parts.push({ k: 'lit', v: '\\', quoted: true });
          break;
        }
        parts.push({ k: 'lit', v: this.src[this.pos + 1]!, quoted: true });
        this.pos += 2;
      } else if (c === "'") {
        flush();
        const end = this.src.indexOf("'", this.pos + 1);
        if (end < 0) this.fail('unterminated single quote', start);
        parts.push({ k: 'lit', v: this.src.slice(this.pos + 1, end), quoted: true });
        this.pos = end + 1;
      } else if (c === '"') {
        flush();
        this.pos++;
        parts.push({ k: 'dq', parts: this.dqParts('"', 'dq') });
      } else if (c === '$' && this.ch(1) === "'") {
        this.bashOnly("$'...'");
        flush();
        parts.push({ k: 'lit', v: this.ansiC(), quoted: true });
      } else if (c === '$' || c === '`') {
        const x = this.dollarOrBackquote();
        if (x) {
          flush();
          parts.push(x);
        } else {
          lit += c;
          this.pos++;
        }
      } else {
        // A run of ordinary characters at once.
        let j = this.pos + 1;
        while (j < this.src.length) {
          const d = this.src[j]!;
          if (d === '\\' || d === "'" || d === '"' || d === '$' || d === '`' || this.isMetaAt(j)) break;
          j++;
        }
        lit += this.src.slice(this.pos, j);
        this.pos = j;
      }
    }
    flush();
    if (this.pos === start) return undefined;
    return { parts, pos: this.at(start), text: this.src.slice(start, this.pos) };
  }

  /** Inside "..." (until the closing quote) or a here-document (until the end). */
  private dqParts(close: string, mode: 'dq' | 'heredoc'): WordPart[] {
    const start = this.pos;
    const parts: WordPart[] = [];
    let lit = '';
    const flush = () => {
      if (lit !== '') parts.push({ k: 'lit', v: lit, quoted: true });
      lit = '';
    };
    for (;;) {
      if (this.pos >= this.src.length) {
        if (mode === 'heredoc') break;
        this.fail('unterminated double quote', start - 1);
      }
      const c = this.ch();
      if (mode === 'dq' && c === close) {
        this.pos++;
        break;
      }
      if (c === '\\') {
        const n = this.ch(1);
        if (n === '\n') this.pos += 2;
        else if (n === '$' || n === '`' || n === '\\' || (mode === 'dq' && n === '"')) {
          lit += n;
          this.pos += 2;
        } else {
          lit += c;
          this.pos++;
        }
      } else if (c === '$' || c === '`') {
        const x = this.dollarOrBackquote();
        if (x) {
          flush();
          parts.push(x);
        } else {
          lit += c;
          this.pos++;
        }
      } else {
        lit += c;
        this.pos++;
      }
    }
    flush();
    return parts;
  }

  private ansiC(): string {
    const start = this.pos;
    this.pos += 2;
    let out = '';
    const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', e: '\x1b', f: '\f', v: '\v' };
    for (;;) {
      const c = this.ch();
      if (c === '') this.fail("unterminated $'...'", start);
      this.pos++;
      if (c === "'") return out;
      if (c === '\\') {
        const n = this.ch();
        this.pos++;
        out += esc[n] ?? `\\${n}`;
      } else out += c;
    }
  }

  /** `$...` or a backquoted command at the current position; undefined for a literal `$`. */
  private dollarOrBackquote(): WordPart | undefined {
    const start = this.pos;
    if (this.ch() === '`') {
      // The contents up to the next unescaped backquote, with \` \\ \$ unescaped, parsed as a script.
      let i = this.pos + 1;
      let inner = '';
      for (;;) {
        const c = this.src[i];
        if (c === undefined) this.fail('unterminated backquote', start);
        if (c === '`') break;
        if (c === '\\' && (this.src[i + 1] === '`' || this.src[i + 1] === '\\' || this.src[i + 1] === '$')) {
          inner += this.src[i + 1];
          i += 2;
          continue;
        }
        inner += c;
        i++;
      }
      this.pos = i + 1;
      const sub = new Parser(inner, this.opts, this.ids, this.lineOf(start) - 1 + this.lineBase);
      let body: List;
      try {
        body = sub.program();
      } catch (err) {
        if (err instanceof ShSyntaxError) this.fail(`in a backquoted command: ${err.message}`, start);
        throw err;
      }
      return { k: 'cmdsub', body, text: this.src.slice(start, this.pos), id: ++this.ids.n };
    }
    const n = this.ch(1);
    if (n === '(' && this.ch(2) === '(') {
      // $(( arithmetic )): up to the matching "))".
      let i = this.pos + 3;
      let depth = 0;
      for (;;) {
        const c = this.src[i];
        if (c === undefined) this.fail('unterminated $((', start);
        if (c === '(') depth++;
        else if (c === ')') {
          if (depth === 0 && this.src[i + 1] === ')') break;
          depth--;
        }
        i++;
      }
      const text = this.src.slice(this.pos + 3, i);
      const sub = new Parser(text, this.opts, this.ids, this.lineOf(start) - 1 + this.lineBase);
      const parts = sub.dqParts('', 'heredoc');
      this.pos = i + 2;
      return { k: 'arith', expr: { parts, pos: this.at(start), text } };
    }
    if (n === '(') {
      this.pos += 2;
      const body = this.list();
      this.skipNewlines();
      if (this.ch() !== ')') this.fail('"$(" without ")"', start);
      this.pos++;
      return { k: 'cmdsub', body, text: this.src.slice(start, this.pos), id: ++this.ids.n };
    }
    if (n === '{') return this.braceParam();
    if (/[A-Za-z_]/.test(n)) {
      let i = this.pos + 1;
      while (/[A-Za-z0-9_]/.test(this.src[i] ?? '')) i++;
      const name = this.src.slice(this.pos + 1, i);
      this.pos = i;
      return { k: 'param', name };
    }
    if (/[0-9@*#?$!-]/.test(n) && n !== '') {
      this.pos += 2;
      return { k: 'param', name: n };
    }
    return undefined;
  }

  private braceParam(): WordPart {
    const start = this.pos;
    this.pos += 2;
    let length = false;
    if (this.ch() === '#' && this.ch(1) !== '}' && /[A-Za-z_0-9@*#?$!-]/.test(this.ch(1))) {
      length = true;
      this.pos++;
    }
    let name: string;
    const m = /^([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])/.exec(this.src.slice(this.pos, this.pos + 64));
    if (!m) this.fail('bad ${...} substitution', start);
    name = m[1]!;
    this.pos += name.length;
    if (length) {
      if (this.ch() !== '}') this.fail('bad ${#...} substitution', start);
      this.pos++;
      return { k: 'param', name, length: true };
    }
    if (this.ch() === '}') {
      this.pos++;
      return { k: 'param', name };
    }
    const ops: ParamOp[] = [':-', ':=', ':?', ':+', '##', '%%', '-', '=', '?', '+', '#', '%'];
    const op = ops.find((o) => this.startsWith(o));
    if (!op) {
      if (this.ch() === '/' || this.ch() === ':' || this.ch() === '^' || this.ch() === ',') this.fail(`\${${name}${this.ch()}...} (bash substitution) is not supported`, start);
      this.fail('bad ${...} substitution', start);
    }
    this.pos += op.length;
    const argStart = this.pos;
    const parts = this.braceArg();
    return { k: 'param', name, op, arg: { parts, pos: this.at(argStart), text: this.src.slice(argStart, this.pos - 1) } };
  }

  /** The word inside ${name OP word}, up to the matching "}". */
  private braceArg(): WordPart[] {
    const start = this.pos;
    const parts: WordPart[] = [];
    let lit = '';
    const flush = () => {
      if (lit !== '') parts.push({ k: 'lit', v: lit, quoted: false });
      lit = '';
    };
    for (;;) {
      const c = this.ch();
      if (c === '') this.fail('"${" without "}"', start);
      if (c === '}') {
        this.pos++;
        break;
      }
      if (c === '\\') {
        flush();
        parts.push({ k: 'lit', v: this.ch(1), quoted: true });
        this.pos += 2;
      } else if (c === "'") {
        flush();
        const end = this.src.indexOf("'", this.pos + 1);
        if (end < 0) this.fail('unterminated single quote', start);
        parts.push({ k: 'lit', v: this.src.slice(this.pos + 1, end), quoted: true });
        this.pos = end + 1;
      } else if (c === '"') {
        flush();
        this.pos++;
        parts.push({ k: 'dq', parts: this.dqParts('"', 'dq') });
      } else if (c === '$' || c === '`') {
        const x = this.dollarOrBackquote();
        if (x) {
          flush();
          parts.push(x);
        } else {
          lit += c;
          this.pos++;
        }
      } else {
        lit += c;
        this.pos++;
      }
    }
    flush();
    return parts;
  }
}
