// cmd.exe's line parser (its "phase 2"): one logical line of a batch file,
// after percent expansion, into a command tree. cmd expands %var% first and
// parses the result, so the interpreter calls this at run time, once per
// statement it reaches, with the variables of that moment; a parenthesised
// block pulls its further lines (each expanded when pulled, before any of the
// block runs — which is why %var% inside a block has the value from before
// the block).
//
// What is parsed: `&`, `||`, `&&`, `|` (cmd's precedence: `|` binds tightest,
// then `&&`, then `||`, then `&`), parenthesised blocks over several lines,
// redirections (`>`, `>>`, `<`, `N>`, `N>&M`), `^` escapes and line
// continuation, double quotes, `@`, labels and `::` comments, `rem`, and the
// statements whose syntax is cmd's own: `if` (with `else` after a block) and
// `for` (/f, /l, plain). Everything else is a simple command: its name and the
// raw rest of the line, which each command splits its own way (echo and set
// take it as text, programs get Windows argument splitting).
//
// Device answers pasted into a line by expansion are single private-use
// characters (see interpret.ts): the parser treats them as ordinary word
// characters, and the interpreter checks at run time that each such answer
// has none of cmd's special characters (so the parse holds for the device).

export interface Redir {
  fd: number;
  op: '>' | '>>' | '<' | '>&' | '<&';
  target: string;
}

export type IfCond =
  | { k: 'errorlevel'; n: string }
  | { k: 'exist'; path: string }
  | { k: 'defined'; name: string }
  | { k: 'cmp'; op: string; a: string; b: string };

interface Base {
  /** 1-based physical line where the command starts. */
  line: number;
  /** Index of the command among those starting on its line (a stable node id with the line). */
  idx: number;
}

export type BatCmd =
  | (Base & { k: 'simple'; head: string; rest: string; redirs: Redir[] })
  | (Base & { k: 'block'; body: BatCmd[]; redirs: Redir[] })
  | (Base & { k: 'if'; not: boolean; ci: boolean; cond: IfCond; then: BatCmd; else?: BatCmd })
  | (Base & { k: 'for'; mode: 'f' | 'l' | 'plain'; opts: string; v: string; set: string; body: BatCmd })
  | (Base & { k: 'and' | 'or' | 'pipe'; left: BatCmd; right: BatCmd })
  | (Base & { k: 'seq'; items: BatCmd[] })
  | (Base & { k: 'nop' });

/** A cmd syntax error ("X was unexpected at this time."), with the physical line. */
export class BatSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** Marks where `%*` was expanded: the command passes the script's own arguments on. */
export const VENDOR_MARK = '\uf8ff';

const WS = /[ \t\u000b\f]/;
const isWs = (c: string | undefined) => c !== undefined && WS.test(c);
/** Token delimiters of cmd: whitespace and , ; = */
const isDelim = (c: string | undefined) => c !== undefined && (WS.test(c) || c === ',' || c === ';' || c === '=');

export interface LineSource {
  /** The first physical line (1-based number) and its expanded text. */
  first: { no: number; text: string };
  /** The next physical line, expanded now; undefined at the end of the file. */
  pull(): { no: number; text: string } | undefined;
}

/** Parses one statement (a logical line: more physical lines when a block or a ^ continuation is open). */
export function parseStatement(src: LineSource): { cmd: BatCmd; lastLine: number } {
  const p = new Parser(src);
  const cmd = p.statement();
  return { cmd, lastLine: p.lineNo };
}

/**
 * Remembers the parses of one script's statements across the explorer's runs
 * (every path, failure run and goto-loop turn parses its statements again):
 * the parse depends only on the statement's first line number and the
 * expanded texts of the lines it reads, so a statement whose expanded lines
 * are the same as before gets the same tree (or the same syntax error). The
 * lines are still expanded one by one, exactly as far as the parser would
 * read them, so expansion's refusals happen where they did without the cache.
 */
export class StatementCache {
  private readonly entries = new Map<string, CacheEntry[]>();
  /** Bounds the memory a script that builds ever new lines (a counter in a goto loop) can take. */
  private size = 0;
  constructor(private readonly maxEntries = 4096) {}

  parse(src: LineSource): { cmd: BatCmd; lastLine: number } {
    const key = `${src.first.no}\n${src.first.text}`;
    const candidates = this.entries.get(key);
    // Lines pulled from `src` so far (undefined = the end of the file).
    const pulled: Array<{ no: number; text: string } | undefined> = [];
    if (candidates) {
      for (const c of candidates) {
        let j = 0;
        for (; j < c.pulled.length; j++) {
          if (j === pulled.length) pulled.push(src.pull());
          if (pulled[j]?.text !== c.pulled[j]) break;
        }
        if (j < c.pulled.length) continue;
        if (c.result instanceof BatSyntaxError) throw c.result;
        return c.result;
      }
    }
    // Not seen: parse, serving the lines already pulled first.
    let served = 0;
    let pullFailed = false;
    const seen: Array<string | undefined> = [];
    const replay: LineSource = {
      first: src.first,
      pull: () => {
        let n: { no: number; text: string } | undefined;
        if (served < pulled.length) n = pulled[served];
        else {
          try {
            n = src.pull();
          } catch (err) {
            pullFailed = true;
            throw err;
          }
        }
        served++;
        seen.push(n?.text);
        return n;
      },
    };
    let result: { cmd: BatCmd; lastLine: number } | BatSyntaxError;
    try {
      result = parseStatement(replay);
    } catch (err) {
      if (pullFailed || !(err instanceof BatSyntaxError)) throw err;
      result = err;
    }
    if (this.size < this.maxEntries) {
      this.size++;
      const list = candidates ?? [];
      list.push({ pulled: seen, result });
      if (!candidates) this.entries.set(key, list);
    }
    if (result instanceof BatSyntaxError) throw result;
    return result;
  }
}

interface CacheEntry {
  pulled: Array<string | undefined>;
  result: { cmd: BatCmd; lastLine: number } | BatSyntaxError;
}

class Parser {
  private text: string;
  private pos = 0;
  lineNo: number;
  private depth = 0;
  private perLine = new Map<number, number>();

  constructor(private readonly src: LineSource) {
    this.text = src.first.text;
    this.lineNo = src.first.no;
  }

  private base(): Base {
    const idx = this.perLine.get(this.lineNo) ?? 0;
    this.perLine.set(this.lineNo, idx + 1);
    return { line: this.lineNo, idx };
  }

  private fail(msg: string, line = this.lineNo): never {
    throw new BatSyntaxError(line, msg);
  }

  private peek(o = 0): string | undefined {
    return this.text[this.pos + o];
  }

  private atEol(): boolean {
    return this.pos >= this.text.length;
  }

  /** Moves to the next physical line (inside a block); false at the end of the file. */
  private nextLine(): boolean {
    const n = this.src.pull();
    if (!n) return false;
    this.text = n.text;
    this.pos = 0;
    this.lineNo = n.no;
    return true;
  }

  private skipWs(): void {
    while (isWs(this.peek())) this.pos++;
  }

  /** A caret at the end of a line continues the line with the next one (outside quotes). */
  private continuation(): boolean {
    if (this.peek() === '^' && this.pos === this.text.length - 1) {
      const rest = this.text.slice(0, this.pos);
      if (!this.nextLine()) {
        this.text = rest;
        this.pos = rest.length;
        return true;
      }
      const start = rest.length;
      this.text = rest + this.text;
      this.pos = start;
      return true;
    }
    return false;
  }

  statement(): BatCmd {
    const c = this.seq();
    this.skipWs();
    if (!this.atEol()) {
      if (this.peek() === ')') this.fail(') was unexpected at this time.');
      this.fail(`${this.text.slice(this.pos)} was unexpected at this time.`);
    }
    return c;
  }

  private seq(): BatCmd {
    const b = this.base();
    const items = [this.or()];
    for (;;) {
      this.skipWs();
      if (this.peek() === '&' && this.peek(1) !== '&') {
        this.pos++;
        this.skipWs();
        if (this.atEol() || (this.depth > 0 && this.peek() === ')')) break;
        items.push(this.or());
        continue;
      }
      break;
    }
    return items.length === 1 ? items[0]! : { ...b, k: 'seq', items };
  }

  private or(): BatCmd {
    let left = this.and();
    for (;;) {
      this.skipWs();
      if (this.peek() === '|' && this.peek(1) === '|') {
        const b = this.base();
        this.pos += 2;
        this.skipWs();
        if (this.atEol()) this.fail('|| was unexpected at this time.');
        left = { ...b, k: 'or', left, right: this.and() };
        continue;
      }
      return left;
    }
  }

  private and(): BatCmd {
    let left = this.pipe();
    for (;;) {
      this.skipWs();
      if (this.peek() === '&' && this.peek(1) === '&') {
        const b = this.base();
        this.pos += 2;
        this.skipWs();
        if (this.atEol()) this.fail('&& was unexpected at this time.');
        left = { ...b, k: 'and', left, right: this.pipe() };
        continue;
      }
      return left;
    }
  }

  private pipe(): BatCmd {
    let left = this.command();
    for (;;) {
      this.skipWs();
      if (this.peek() === '|' && this.peek(1) !== '|') {
        const b = this.base();
        this.pos++;
        this.skipWs();
        if (this.atEol()) this.fail('| was unexpected at this time.');
        left = { ...b, k: 'pipe', left, right: this.command() };
        continue;
      }
      return left;
    }
  }

  /** One command: a block, if, for, rem, label, or a simple command. */
  private command(): BatCmd {
    // Leading blanks, delimiters and @ are not part of the command.
    while (isDelim(this.peek()) || this.peek() === '@') this.pos++;
    const b = this.base();
    const c = this.peek();
    if (c === undefined) return { ...b, k: 'nop' };
    if (c === '(') return this.block();
    if (c === ':') {
      // A label (or a :: comment): nothing runs; the rest of the line is skipped.
      this.pos = this.text.length;
      return { ...b, k: 'nop' };
    }
    if (c === '&' || c === '|') this.fail(`${c} was unexpected at this time.`);
    if (c === ')' && this.depth > 0) return { ...b, k: 'nop' };
    const headStart = this.pos;
    const head = this.word(true);
    const name = head.toLowerCase();
    if (name === 'rem') {
      // rem takes the rest of the line, specials included.
      this.pos = this.text.length;
      return { ...b, k: 'nop' };
    }
    if (name === 'if') return this.ifCommand(b);
    if (name === 'for') return this.forCommand(b);
    void headStart;
    const { rest, redirs } = this.rest();
    return { ...b, k: 'simple', head, rest, redirs };
  }

  private block(): BatCmd {
    const b = this.base();
    const opened = this.lineNo;
    this.pos++; // (
    this.depth++;
    const body: BatCmd[] = [];
    for (;;) {
      this.skipWs();
      if (this.atEol()) {
        if (!this.nextLine()) this.fail('the file ends inside a parenthesised block (a ")" is missing)', opened);
        continue;
      }
      if (this.peek() === ')') {
        this.pos++;
        break;
      }
      body.push(this.seq());
      this.skipWs();
      if (!this.atEol() && this.peek() !== ')') this.fail(`${this.text.slice(this.pos)} was unexpected at this time.`);
    }
    this.depth--;
    const redirs = this.trailingRedirs();
    return { ...b, k: 'block', body, redirs };
  }

  /** Redirections after a block's `)`. */
  private trailingRedirs(): Redir[] {
    const redirs: Redir[] = [];
    for (;;) {
      this.skipWs();
      const c = this.peek();
      const fdDigit = c !== undefined && /[0-9]/.test(c) && (this.peek(1) === '>' || this.peek(1) === '<');
      if (c !== '>' && c !== '<' && !fdDigit) return redirs;
      redirs.push(this.redirection(fdDigit ? Number(c) : undefined));
    }
  }

  private redirection(fd: number | undefined): Redir {
    if (fd !== undefined) this.pos++;
    const dir = this.peek()!;
    this.pos++;
    let op: Redir['op'] = dir === '>' ? '>' : '<';
    if (dir === '>' && this.peek() === '>') {
      op = '>>';
      this.pos++;
    }
    if (this.peek() === '&') {
      this.pos++;
      op = dir === '>' ? '>&' : '<&';
    }
    this.skipWs();
    const target = this.word(false);
    if (target === '') this.fail('The syntax of the command is incorrect.');
    return { fd: fd ?? (dir === '>' ? 1 : 0), op, target };
  }

  /**
   * A word: up to a delimiter or a special character outside quotes; quotes
   * are kept, carets escape (and are removed). `head` = a command name, which
   * also ends at `(` only when it is `if`/`for`-like... (cmd ends names at delimiters).
   */
  private word(head: boolean): string {
    let out = '';
    let quoted = false;
    for (;;) {
      const c = this.peek();
      if (c === undefined) break;
      if (!quoted) {
        if (this.continuation()) continue;
        if (c === '^') {
          out += this.peek(1) ?? '';
          this.pos += 2;
          continue;
        }
        if (isDelim(c) || c === '&' || c === '|' || c === '<' || c === '>') break;
        if (c === ')' && this.depth > 0) break;
        if (head && c === '(' && out !== '' && !/^echo$/i.test(out)) break;
      }
      if (c === '"') quoted = !quoted;
      out += c;
      this.pos++;
    }
    return out;
  }

  /** The rest of a simple command up to `&`, `|`, the end of the line or a block's `)`, with redirections taken out. */
  private rest(): { rest: string; redirs: Redir[] } {
    let out = '';
    const redirs: Redir[] = [];
    let quoted = false;
    for (;;) {
      const c = this.peek();
      if (c === undefined) break;
      if (!quoted) {
        if (this.continuation()) continue;
        if (c === '^') {
          out += this.peek(1) ?? '';
          this.pos += 2;
          continue;
        }
        if (c === '&' || c === '|') break;
        if (c === ')' && this.depth > 0) break;
        if (c === '>' || c === '<') {
          // A single digit right before the operator, itself after a blank, is the handle.
          let fd: number | undefined;
          if (/[0-9]$/.test(out) && (out.length === 1 || isWs(out[out.length - 2]))) {
            fd = Number(out[out.length - 1]);
            out = out.slice(0, -1);
          }
          if (fd !== undefined) this.pos--; // redirection() skips the digit
          redirs.push(this.redirection(fd));
          continue;
        }
      }
      if (c === '"') quoted = !quoted;
      out += c;
      this.pos++;
    }
    return { rest: out, redirs };
  }

  private keyword(word: string): boolean {
    const s = this.text.slice(this.pos, this.pos + word.length);
    if (s.toLowerCase() !== word) return false;
    const after = this.text[this.pos + word.length];
    if (after !== undefined && !isDelim(after) && after !== '(') return false;
    this.pos += word.length;
    return true;
  }

  /** An if operand: up to a blank or `==`, quotes grouping, carets escaping. */
  private operand(stopAtEq: boolean): string {
    let out = '';
    let quoted = false;
    for (;;) {
      const c = this.peek();
      if (c === undefined) break;
      if (!quoted) {
        if (c === '^') {
          out += this.peek(1) ?? '';
          this.pos += 2;
          continue;
        }
        if (isWs(c) || c === ',' || c === ';') break;
        if (c === '=' && (stopAtEq ? this.peek(1) === '=' : true)) break;
        if (c === '&' || c === '|' || c === '<' || c === '>') break;
        if (c === ')' && this.depth > 0 && !stopAtEq) break;
      }
      if (c === '"') quoted = !quoted;
      out += c;
      this.pos++;
    }
    return out;
  }

  private ifCommand(b: Base): BatCmd {
    let not = false;
    let ci = false;
    this.skipDelims();
    if (this.text.slice(this.pos, this.pos + 2).toLowerCase() === '/i' && isDelim(this.text[this.pos + 2])) {
      ci = true;
      this.pos += 2;
      this.skipDelims();
    }
    if (this.keyword('not')) {
      not = true;
      this.skipDelims();
    }
    let cond: IfCond;
    if (this.keyword('errorlevel')) {
      this.skipDelims();
      cond = { k: 'errorlevel', n: this.operand(false) };
    } else if (this.keyword('exist')) {
      this.skipDelims();
      cond = { k: 'exist', path: this.operand(false) };
    } else if (this.keyword('defined')) {
      this.skipDelims();
      cond = { k: 'defined', name: this.operand(false) };
    } else if (this.keyword('cmdextversion')) {
      this.skipDelims();
      cond = { k: 'cmp', op: 'GEQ', a: '2', b: this.operand(false) };
    } else {
      const a = this.operand(true);
      if (a === '') this.fail(`${this.text.slice(this.pos)} was unexpected at this time.`);
      this.skipWs();
      let op: string;
      if (this.peek() === '=' && this.peek(1) === '=') {
        this.pos += 2;
        op = '==';
      } else {
        this.skipDelims();
        op = this.operand(false).toUpperCase();
        if (!['EQU', 'NEQ', 'LSS', 'LEQ', 'GTR', 'GEQ'].includes(op)) this.fail(`${op || this.text.slice(this.pos)} was unexpected at this time.`);
      }
      this.skipDelims();
      const bOp = this.operand(false);
      if (bOp === '') this.fail('The syntax of the command is incorrect.');
      cond = { k: 'cmp', op, a, b: bOp };
    }
    if (cond.k !== 'cmp' && Object.values(cond)[1] === '') this.fail('The syntax of the command is incorrect.');
    this.skipWs();
    if (this.atEol()) this.fail('The syntax of the command is incorrect.');
    const then = this.branch();
    this.skipWs();
    if (then.k === 'block' && this.keyword('else')) {
      this.skipWs();
      if (this.atEol()) this.fail('The syntax of the command is incorrect.');
      return { ...b, k: 'if', not, ci, cond, then, else: this.seq() };
    }
    return { ...b, k: 'if', not, ci, cond, then };
  }

  /** The command of an if's true branch: a block (then maybe `else`), or the rest of the line. */
  private branch(): BatCmd {
    while (this.peek() === '@') this.pos++;
    if (this.peek() === '(') {
      const save = this.pos;
      const blk = this.block();
      this.skipWs();
      // `if c (a) else (b)`: the block alone; otherwise the block and whatever follows are the branch.
      if (this.text.slice(this.pos, this.pos + 4).toLowerCase() === 'else' && (isDelim(this.text[this.pos + 4]) || this.text[this.pos + 4] === '(' || this.text[this.pos + 4] === undefined)) return blk;
      void save;
      return this.continueAfter(blk);
    }
    return this.seq();
  }

  /** Operators after an already parsed first command (the block of an if). */
  private continueAfter(first: BatCmd): BatCmd {
    let left = first;
    for (;;) {
      this.skipWs();
      const c = this.peek();
      const b = this.base();
      if (c === '|' && this.peek(1) === '|') {
        this.pos += 2;
        this.skipWs();
        left = { ...b, k: 'or', left, right: this.and() };
      } else if (c === '&' && this.peek(1) === '&') {
        this.pos += 2;
        this.skipWs();
        left = { ...b, k: 'and', left, right: this.pipe() };
      } else if (c === '|') {
        this.pos++;
        this.skipWs();
        left = { ...b, k: 'pipe', left, right: this.command() };
      } else if (c === '&') {
        this.pos++;
        this.skipWs();
        if (this.atEol() || (this.depth > 0 && this.peek() === ')')) return left;
        left = { ...b, k: 'seq', items: [left, this.or()] };
      } else return left;
    }
  }

  private skipDelims(): void {
    while (isDelim(this.peek())) this.pos++;
  }

  private forCommand(b: Base): BatCmd {
    this.skipDelims();
    let mode: 'f' | 'l' | 'plain' = 'plain';
    const sw = /^\/([a-z])(?=[\s,;=]|")/i.exec(this.text.slice(this.pos));
    if (sw) {
      const l = sw[1]!.toLowerCase();
      if (l === 'f') mode = 'f';
      else if (l === 'l') mode = 'l';
      else this.fail(`for /${sw[1]} is not supported`);
      this.pos += 2;
      this.skipDelims();
    }
    let opts = '';
    if (mode === 'f' && this.peek() === '"') {
      const end = this.text.indexOf('"', this.pos + 1);
      if (end < 0) this.fail('The syntax of the command is incorrect.');
      opts = this.text.slice(this.pos + 1, end);
      this.pos = end + 1;
      this.skipDelims();
    }
    const m = /^%(~?[A-Za-z])/.exec(this.text.slice(this.pos));
    if (!m || m[1]!.startsWith('~')) this.fail(`${this.text.slice(this.pos).split(/\s/)[0]} was unexpected at this time.`);
    const v = m[1]!;
    this.pos += 2;
    this.skipDelims();
    if (!this.keyword('in')) this.fail(`${this.text.slice(this.pos).split(/\s/)[0] || 'the end of the line'} was unexpected at this time.`);
    this.skipDelims();
    if (this.peek() !== '(') this.fail(`${this.text.slice(this.pos).split(/\s/)[0] || 'the end of the line'} was unexpected at this time.`);
    this.pos++;
    let set = '';
    let quoted = false;
    for (;;) {
      const c = this.peek();
      if (c === undefined) {
        if (!this.nextLine()) this.fail('the file ends inside a for set (a ")" is missing)');
        set += ' ';
        continue;
      }
      if (!quoted) {
        if (c === '^') {
          set += this.peek(1) ?? '';
          this.pos += 2;
          continue;
        }
        if (c === ')') break;
        if (c === '&' || c === '|' || c === '<' || c === '>') this.fail(`${c} was unexpected at this time.`);
      }
      if (c === '"') quoted = !quoted;
      set += c;
      this.pos++;
    }
    this.pos++; // )
    this.skipDelims();
    if (!this.keyword('do')) this.fail(`${this.text.slice(this.pos).split(/\s/)[0] || 'the end of the line'} was unexpected at this time.`);
    this.skipWs();
    if (this.atEol()) this.fail('The syntax of the command is incorrect.');
    const body = this.branch();
    return { ...b, k: 'for', mode, opts, v, set, body };
  }
}

/**
 * Windows program argument splitting (the C runtime's rules): blanks separate
 * arguments outside quotes; quotes group and are removed; `\"` is a quote;
 * 2n backslashes before a quote are n backslashes.
 */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    let arg = '';
    let quoted = false;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === '\\') {
        let n = 0;
        while (s[i + n] === '\\') n++;
        if (s[i + n] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2));
          i += n;
          if (n % 2 === 1) arg += '"';
          else {
            if (quoted && s[i + 1] === '"') {
              arg += '"';
              i++;
            } else quoted = !quoted;
          }
          continue;
        }
        arg += '\\'.repeat(n);
        i += n - 1;
        continue;
      }
      if (c === '"') {
        if (quoted && s[i + 1] === '"') {
          arg += '"';
          i++;
          continue;
        }
        quoted = !quoted;
        continue;
      }
      if (!quoted && (c === ' ' || c === '\t')) break;
      arg += c;
    }
    out.push(arg);
  }
  return out;
}
