// The .bat/.cmd front end: interprets a batch file against the engine the way
// cmd.exe runs it. It owns cmd's own semantics: percent expansion of a whole
// logical line (a parenthesised block included) before it is parsed and run,
// `!var!` at run time under `setlocal enabledelayedexpansion`, for-variable
// substitution, labels, goto and call, errorlevel (which internal commands
// leave alone) against the exit code `||`/`&&` look at, `if`, `for /f`,
// setlocal scopes, redirections and pipes. Commands go to the engine: fastboot
// becomes plan steps, findstr/find and cmd's comparisons are pure tools, and
// everything else is a builtin implemented here or refused with file, line
// and command. No process is ever spawned; files are read only inside the ROM.
//
// The script runs as if double-clicked in the ROM folder: %~dp0 and %cd% are
// C:\<ROM folder name>\, with no arguments (%* and %1..%9 are empty).
import { concat, isLit, lit, type Term } from '../../../plan/predicate.js';
import { Inconclusive, PathEnd, ScriptInterpretError, Sink, type Engine, type Io, type Loc } from '../interp/engine.js';
import { cmdNumber, ForOptionsError, forFRuns, parseForOptions, type ForFOptions } from '../tools/cmd.js';
import { BatSyntaxError, splitArgs, StatementCache, VENDOR_MARK, type BatCmd, type Redir } from './parse.js';

export interface BatOptions {
  file: string;
  /** The ROM folder's name (its last path component): what %cd% and %~dp0 end in. */
  folderName: string;
}

const MAX_LOOP = 10_000;
/** How far a probe of an operation's failure side looks (statements) before leaving it to a full run. */
const PROBE_STATEMENTS = 8;
/** Device answers pasted into a line are private-use characters U+E000.. (one per answer). */
const SYM_BASE = 0xe000;
const SYM_MAX = 0xf8fe - SYM_BASE;

/** A goto that ran (see Bat.jumping). */
class GotoSignal {
  constructor(
    readonly label: string,
    readonly loc: Loc,
  ) {}
}
class ExitSignal {
  constructor(
    /** `exit` without /b: cmd itself ends, whatever the call depth. */
    readonly all: boolean,
    readonly code: Term,
    readonly loc: Loc,
    readonly node: string,
  ) {}
}

interface Frame {
  /** %0..%9 as written (quotes kept); %0 of a call is the label. */
  args: string[];
  /** The script's own frame (not a `call :label`). */
  top?: boolean;
  /** setlocal depth when the frame began: its own setlocals end with it. */
  scopeBase: number;
}

/** What setlocal saved. Never changed once pushed: snapshots share it. */
interface Scope {
  readonly vars: ReadonlyMap<string, Term>;
  readonly delayed: boolean;
  readonly cwd: string;
}

/** The interpreter's state before a statement, for a probe of an operation's failure side. */
interface Snapshot {
  vars: Map<string, Term>;
  delayed: boolean;
  cwd: string;
  scopes: Scope[];
  dirStack: string[];
  errorlevel: Term;
  echoOn: boolean;
  forVars: Map<string, Term>;
  visits: Map<number, number>;
}

/** What every run of one script shares: its lines, their labels, and the parses of its statements. */
export interface PreparedBat {
  lines: string[];
  /** The label of each line (upper-cased), undefined for other lines. */
  labels: Array<string | undefined>;
  /** Lines runFrame steps over: blank lines and labels. */
  skip: boolean[];
  statements: StatementCache;
}

export function prepareBat(text: string): PreparedBat {
  const lines = physicalLines(text);
  const labels = lines.map(labelOf);
  return { lines, labels, skip: lines.map((l, i) => l.trim() === '' || labels[i] !== undefined), statements: new StatementCache() };
}

/** Interprets the script once (one path); `prepared` comes from prepareBat and may serve many runs. */
export function interpretBat(prepared: PreparedBat, engine: Engine, opts: BatOptions): void {
  const bat = new Bat(engine, opts, prepared);
  engine.setResolveFile((arg) => bat.resolveFile(arg));
  bat.run();
}

function dropVendorMark(s: string): string {
  return s.includes(VENDOR_MARK) ? s.split(VENDOR_MARK).join('') : s;
}

/** The file's lines as cmd reads them: CR removed, a final line without newline kept. */
export function physicalLines(text: string): string[] {
  const lines = text.replace(/^\ufeff/, '').replace(/\r/g, '').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A label line (`:name`, leading blanks allowed) and its name, upper-cased. */
export function labelOf(line: string): string | undefined {
  const m = /^[\s@]*:([^\s:&|<>+=,;"]*)/.exec(line);
  return m ? m[1]!.toUpperCase() : undefined;
}

class Bat {
  private vars = new Map<string, Term>();
  private delayed = false;
  private cwd = '';
  private scopes: Scope[] = [];
  private dirStack: string[] = [];
  private errorlevel: Term = lit('0');
  private echoOn = true;
  private readonly syms: Term[] = [];
  private forVars = new Map<string, Term>();
  private visits = new Map<number, number>();
  private readonly root: string;
  private readonly lines: string[];
  private readonly terminal: Io = { stdin: lit(''), out: new Sink('stdout'), err: new Sink('stderr') };
  /** Statements a probe has run. */
  private probed = 0;
  /** > 0 inside a for /f command or a pipe side (a child cmd: no batch context). */
  private child = 0;
  /**
   * A `goto` that ran: every command returns at once until runFrame takes it. Not thrown: unwinding an
   * exception through the interpreter's frames costs microseconds per frame, and goto loops run thousands.
   */
  private jumping: GotoSignal | undefined;

  constructor(
    private readonly e: Engine,
    private readonly opts: BatOptions,
    private readonly prepared: PreparedBat,
    /** A probe of an operation's failure side (see runFrame). */
    private readonly probing = false,
  ) {
    this.root = `C:\\${opts.folderName}`;
    this.lines = prepared.lines;
  }

  run(): void {
    try {
      this.runFrame(0, { args: [`"${this.root}\\${this.scriptName()}"`], scopeBase: 0, top: true });
    } catch (x) {
      if (x instanceof ExitSignal) this.e.exit(this.codeOf(x.code, x.loc), x.loc, x.node);
      throw x;
    }
  }

  private scriptName(): string {
    return this.opts.file.replace(/^.*[\\/]/, '');
  }

  // ---- helpers ----

  private loc(line: number): Loc {
    return { file: this.opts.file, line, text: this.lines[line - 1] ?? '' };
  }

  private node(c: BatCmd): string {
    return `${c.line}:${c.idx}`;
  }

  private codeOf(t: Term, loc: Loc): number {
    if (this.e.known(t)) {
      const n = cmdNumber(this.e.literal(t, loc, 'the exit code').trim());
      return n === undefined ? 0 : n;
    }
    return this.e.succeeded(t, loc) ? 0 : 1;
  }

  private ok(t: Term, loc: Loc): boolean {
    return this.e.succeeded(t, loc);
  }

  private write(sink: Sink, t: Term, stream: 'stdout' | 'stderr', loc: Loc, node: string): void {
    if (isLit(t) && t.value === '') return;
    if (sink.kind === 'null') return;
    if (sink.kind === 'buffer') {
      sink.parts.push(t);
      return;
    }
    // The console shows CR LF as a line break.
    const shown = isLit(t) ? lit(t.value.replace(/\r\n/g, '\n')) : t;
    this.e.print(shown, sink.kind === 'stderr' ? 'stderr' : stream, loc, `${node}:${sink.kind}`);
  }

  /** A device answer as one character of a line; refused on a path where it would not be one plain word. */
  private sym(t: Term, loc: Loc): string {
    if (isLit(t)) return t.value;
    const numeric = t.kind === 'status' || (t.kind === 'tool' && t.result === 'status');
    if (!numeric) {
      const plain = this.e.tool([lit('cmd/plain')], t, loc).status;
      if (!this.ok(plain, loc)) return this.e.refuse(loc, loc.text, 'a device answer that is empty or has blanks or cmd special characters, pasted into a command line');
    }
    let i = this.syms.findIndex((s) => s === t);
    if (i < 0) {
      if (this.syms.length >= SYM_MAX) return this.e.refuse(loc, loc.text, 'more device answers in one run than miflash follows');
      i = this.syms.push(t) - 1;
    }
    return String.fromCharCode(SYM_BASE + i);
  }

  /** Text of a line (with device answers as private-use characters) as a term. */
  private term(s: string): Term {
    const parts: Term[] = [];
    let cur = '';
    for (const ch of s) {
      const code = ch.charCodeAt(0);
      if (ch === VENDOR_MARK) continue;
      if (code >= SYM_BASE && code < SYM_BASE + this.syms.length) {
        if (cur) parts.push(lit(cur));
        cur = '';
        parts.push(this.syms[code - SYM_BASE]!);
      } else cur += ch;
    }
    if (cur || parts.length === 0) parts.push(lit(cur));
    return concat(...parts);
  }

  private hasSym(s: string): boolean {
    for (const ch of s) {
      const code = ch.charCodeAt(0);
      if (code >= SYM_BASE && code < SYM_BASE + this.syms.length) return true;
    }
    return false;
  }

  /** A string the command needs literally (a path, a number, an option). */
  private literal(s: string, loc: Loc, what: string): string {
    return this.e.literal(this.term(s), loc, what);
  }

  // ---- percent expansion (cmd's phase 1) ----

  private expand(raw: string, frame: Frame, loc: Loc): string {
    let out = '';
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (c !== '%') {
        out += c;
        continue;
      }
      const n = raw[i + 1];
      if (n === undefined) break;
      if (n === '%') {
        out += '%';
        i++;
        continue;
      }
      if (n === '*') {
        out += VENDOR_MARK + frame.args.slice(1).join(' ');
        i++;
        continue;
      }
      if (/[0-9]/.test(n)) {
        out += frame.args[Number(n)] ?? '';
        i++;
        continue;
      }
      if (n === '~') {
        const m = /^~([fdpnxsatz]*)([0-9])/i.exec(raw.slice(i + 1));
        if (!m) throw new BatSyntaxError(loc.line, 'The following usage of the path operator in batch-parameter substitution is invalid');
        i += m[0].length;
        const k = Number(m[2]);
        // %~dp0 and friends name the batch file even inside a call.
        const v = k === 0 ? `${this.root}\\${this.scriptName()}` : (frame.args[k] ?? '');
        out += this.pathMods(unquote(v), m[1]!.toLowerCase(), loc);
        continue;
      }
      const close = raw.indexOf('%', i + 1);
      if (close < 0) continue; // a lone % is dropped
      out += this.varRef(raw.slice(i + 1, close), loc);
      i = close;
    }
    return out;
  }

  /** %name%, %name:~a,b%, %name:x=y%; an undefined variable is empty in a batch file. */
  private varRef(spec: string, loc: Loc): string {
    const colon = spec.indexOf(':');
    const name = colon < 0 ? spec : spec.slice(0, colon);
    const value = this.lookup(name, loc);
    if (colon < 0 || value === undefined) return value === undefined ? '' : this.sym(value, loc);
    const op = spec.slice(colon + 1);
    const v = this.e.literal(value, loc, `%${spec}%`);
    const sub = /^~(-?[0-9]+)?(?:,(-?[0-9]+))?$/.exec(op);
    if (sub) {
      let start = Number(sub[1] ?? 0);
      if (start < 0) start = Math.max(0, v.length + start);
      let s = v.slice(start);
      if (sub[2] !== undefined) {
        const len = Number(sub[2]);
        s = len >= 0 ? s.slice(0, len) : s.slice(0, Math.max(0, s.length + len));
      }
      return s;
    }
    const eq = op.indexOf('=');
    if (eq > 0) {
      let from = op.slice(0, eq);
      const to = op.slice(eq + 1);
      const star = from.startsWith('*');
      if (star) from = from.slice(1);
      const at = v.toLowerCase().indexOf(from.toLowerCase());
      if (star) return at < 0 ? v : to + v.slice(at + from.length);
      return replaceAllCi(v, from, to);
    }
    return `%${spec}%`;
  }

  private lookup(name: string, loc: Loc): Term | undefined {
    const key = name.toUpperCase();
    const v = this.vars.get(key);
    if (v !== undefined) return v;
    switch (key) {
      case 'ERRORLEVEL':
        return this.errorlevel;
      case 'CD':
        return lit(this.winCwd());
      case 'CMDEXTVERSION':
        return lit('2');
      case '__CD__':
        return lit(`${this.winCwd()}\\`);
      case 'RANDOM':
      case 'DATE':
      case 'TIME':
      case 'CMDCMDLINE':
        return this.e.refuse(loc, loc.text, `%${name}% (the plan must not depend on the clock, chance or how cmd was started)`);
      default:
        return undefined;
    }
  }

  // ---- for variables and delayed expansion (at run time) ----

  private late(s: string, loc: Loc): string {
    let out = s;
    if (this.forVars.size > 0 && out.includes('%')) out = this.forSubst(out, loc);
    if (this.delayed && out.includes('!')) out = this.delayedExpand(out, loc);
    return out;
  }

  private forSubst(s: string, loc: Loc): string {
    let out = '';
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c !== '%') {
        out += c;
        continue;
      }
      if (this.forVars.has(s[i + 1] ?? '')) {
        out += this.sym(this.forVars.get(s[i + 1]!)!, loc);
        i++;
        continue;
      }
      if (s[i + 1] === '~') {
        // %~mods<var>: the longest run of modifiers followed by a loop variable.
        const m = /^~([fdpnxsatz]*)/i.exec(s.slice(i + 1))!;
        let done = false;
        for (let len = m[1]!.length; len >= 0; len--) {
          const v = s[i + 2 + len];
          if (v !== undefined && this.forVars.has(v)) {
            const value = this.e.literal(this.forVars.get(v)!, loc, `%~${m[1]!.slice(0, len)}${v}`);
            out += this.pathMods(unquote(value), m[1]!.slice(0, len).toLowerCase(), loc);
            i += 2 + len;
            done = true;
            break;
          }
        }
        if (done) continue;
      }
      out += c;
    }
    return out;
  }

  private delayedExpand(s: string, loc: Loc): string {
    let out = '';
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c === '^' && i + 1 < s.length) {
        out += s[++i];
        continue;
      }
      if (c !== '!') {
        out += c;
        continue;
      }
      const close = s.indexOf('!', i + 1);
      if (close < 0) continue; // a lone ! is dropped
      const v = this.lookup(s.slice(i + 1, close), loc);
      if (v !== undefined) out += this.sym(v, loc);
      i = close;
    }
    return out;
  }

  /** %~dpnx-style modifiers of a path (d drive, p folder, n name, x extension, f full path; none = unquoted). */
  private pathMods(p: string, mods: string, loc: Loc): string {
    if (mods === '') return p;
    if (/[sat$z]/.test(mods)) return this.e.refuse(loc, loc.text, `the path modifier ~${mods} (short names, attributes, times, sizes)`);
    const full = this.winFull(p);
    const m = /^([A-Za-z]:)?(.*\\)?([^\\]*)$/.exec(full)!;
    const drive = m[1] ?? '';
    const dir = m[2] ?? '';
    const base = m[3] ?? '';
    const dot = base.lastIndexOf('.');
    const name = dot < 0 ? base : base.slice(0, dot);
    const ext = dot < 0 ? '' : base.slice(dot);
    if (mods.includes('f') && !/[dpnx]/.test(mods)) return full;
    return (mods.includes('d') ? drive : '') + (mods.includes('p') ? dir : '') + (mods.includes('n') ? name : '') + (mods.includes('x') ? ext : '');
  }

  // ---- paths ----

  private winCwd(): string {
    return this.cwd ? `${this.root}\\${this.cwd.replace(/\//g, '\\')}` : this.root;
  }

  /** A Windows path made absolute against the current folder, . and .. resolved. */
  private winFull(p: string): string {
    const s = p.replace(/\//g, '\\');
    let parts: string[];
    let drive: string;
    if (/^[A-Za-z]:\\/.test(s)) {
      drive = s.slice(0, 2);
      parts = s.slice(3).split('\\');
    } else if (s.startsWith('\\')) {
      drive = 'C:';
      parts = s.slice(1).split('\\');
    } else {
      drive = 'C:';
      parts = [...this.winCwd().slice(3).split('\\'), ...s.split('\\')];
    }
    const out: string[] = [];
    for (const x of parts) {
      if (x === '' || x === '.') continue;
      if (x === '..') out.pop();
      else out.push(x);
    }
    return `${drive}\\${out.join('\\')}`;
  }

  /** A script path as a ROM-relative path ('' = the ROM folder); undefined = outside the ROM. */
  romPath(p: string): string | undefined {
    const full = this.winFull(p);
    const root = this.root.toLowerCase();
    const low = full.toLowerCase();
    if (low !== root && !low.startsWith(`${root}\\`)) return undefined;
    const rel = full.slice(this.root.length + 1).replace(/\\/g, '/');
    // Windows paths are case-insensitive: use the ROM's own spelling when it has the file.
    const files = this.e.romFiles();
    if (rel && !files.includes(rel)) {
      const hit = files.find((f) => f.toLowerCase() === rel.toLowerCase());
      if (hit) return hit;
    }
    return rel;
  }

  resolveFile(arg: string): { ok: true; file: string } | { ok: false; why: string } {
    const p = this.romPath(arg);
    if (p === undefined || p === '') return { ok: false, why: `${arg} is outside the ROM folder` };
    return { ok: true, file: p };
  }

  private exists(rel: string): boolean {
    if (rel === '') return true;
    if (/[*?]/.test(rel)) {
      const re = new RegExp(`^${rel.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`, 'i');
      return this.e.romFiles().some((f) => re.test(f));
    }
    const files = this.e.romFiles();
    return files.includes(rel) || files.some((f) => f.startsWith(`${rel}/`)) || this.e.readFile(rel) !== undefined;
  }

  // ---- statements, labels, frames ----

  private runFrame(start: number, frame: Frame): void {
    let pos = start;
    while (pos < this.lines.length) {
      const raw = this.lines[pos]!;
      if (this.prepared.skip[pos]) {
        pos++;
        continue;
      }
      const loc = this.loc(pos + 1);
      // A probe looks a few statements ahead; a script that carries on longer is left to a full failure run.
      if (this.probing && ++this.probed > PROBE_STATEMENTS) throw new Inconclusive();
      let cursor = pos;
      let parsed: { cmd: BatCmd; lastLine: number };
      try {
        parsed = this.prepared.statements.parse({
          first: { no: pos + 1, text: this.expand(raw, frame, loc) },
          pull: () => {
            if (cursor + 1 >= this.lines.length) return undefined;
            cursor++;
            return { no: cursor + 1, text: this.expand(this.lines[cursor]!, frame, this.loc(cursor + 1)) };
          },
        });
      } catch (err) {
        if (err instanceof BatSyntaxError) return this.e.refuse(this.loc(err.line), this.lines[err.line - 1] ?? '', `cmd syntax error: ${err.message}`);
        throw err;
      }
      const next = parsed.lastLine;
      // A statement that runs a device operation: look at once at what the script does when the operation fails
      // (usually `|| echo M && exit /b 1` on the same line), so the explorer need not re-run the whole script for it.
      const before = !this.probing && this.child === 0 ? this.snapshot() : undefined;
      const mark = this.e.mark();
      const seen = this.visits.get(pos) ?? 0;
      this.visits.set(pos, seen + 1);
      const go = () => {
        const status = this.exec(parsed.cmd, this.terminal, frame);
        // Like a shell's `$?` after a simple command or pipeline: a device-dependent status nothing looks at is an ignored check.
        if (!this.jumping && this.child === 0 && (parsed.cmd.k === 'simple' || parsed.cmd.k === 'pipe')) this.e.noteStatus(status, loc, `${pos + 1}:s`);
      };
      // A statement run again (a goto loop) is another step each time.
      if (seen === 0) go();
      else this.e.inFrame(`goto${pos + 1}#${seen}`, loc, go);
      const jump = this.jumping;
      this.jumping = undefined;
      if (before) for (const op of this.e.unprobedOpsSince(mark)) this.probeFailure(op, pos, frame, before);
      if (jump) {
        if (jump.label === 'EOF') return;
        const target = this.findLabel(jump.label, next);
        if (target === undefined) return this.e.refuse(jump.loc, jump.loc.text, `goto ${jump.label.toLowerCase()}: the script has no such label`);
        pos = target + 1;
        continue;
      }
      pos = next;
    }
  }

  private snapshot(): Snapshot {
    return {
      vars: new Map(this.vars),
      delayed: this.delayed,
      cwd: this.cwd,
      // Scopes are never changed once pushed (endlocal copies the map it returns to): sharing them is safe.
      scopes: [...this.scopes],
      dirStack: [...this.dirStack],
      errorlevel: this.errorlevel,
      echoOn: this.echoOn,
      forVars: new Map(this.forVars),
      visits: new Map(this.visits),
    };
  }

  private restore(s: Snapshot): void {
    this.vars = new Map(s.vars);
    this.delayed = s.delayed;
    this.cwd = s.cwd;
    this.scopes = [...s.scopes];
    this.dirStack = [...s.dirStack];
    this.errorlevel = s.errorlevel;
    this.echoOn = s.echoOn;
    this.forVars = new Map(s.forVars);
    this.visits = new Map(s.visits);
  }

  /** Re-runs the statement at `pos` and what follows with operation `op` failing, on a probe engine. */
  private probeFailure(op: string, pos: number, frame: Frame, before: Snapshot): void {
    const child = this.e.probe(op);
    const bat = new Bat(child, this.opts, this.prepared, true);
    bat.restore(before);
    child.setResolveFile((arg) => bat.resolveFile(arg));
    try {
      bat.runFrame(pos, frame);
      child.concludeProbe(op, {});
    } catch (x) {
      if (x instanceof ExitSignal) {
        // `exit /b` inside a call only returns: what the caller does next is not known here.
        if (!x.all && !frame.top) return child.concludeProbe(op, {});
        let code: number;
        try {
          code = bat.codeOf(x.code, x.loc);
        } catch (y) {
          if (y instanceof Inconclusive) return child.concludeProbe(op, {});
          throw y;
        }
        child.concludeProbe(op, { exit: code });
      } else if (x instanceof PathEnd) child.concludeProbe(op, { refused: x.terminal.type === 'refuse' });
      else if (x instanceof Inconclusive || x instanceof ScriptInterpretError) child.concludeProbe(op, {});
      else throw x;
    }
  }

  /** cmd looks for a label from the line after the current statement to the end, then from the top. */
  private findLabel(name: string, from: number): number | undefined {
    const n = this.lines.length;
    for (let k = 0; k < n; k++) {
      const i = (from + k) % n;
      if (this.prepared.labels[i] === name) return i;
    }
    return undefined;
  }

  // ---- commands ----

  private exec(c: BatCmd, io: Io, frame: Frame): Term {
    switch (c.k) {
      case 'nop':
        return lit('0');
      case 'seq': {
        let s: Term = lit('0');
        for (const x of c.items) {
          s = this.exec(x, io, frame);
          if (this.jumping) return s;
        }
        return s;
      }
      case 'and': {
        const s = this.exec(c.left, io, frame);
        if (this.jumping) return s;
        return this.ok(s, this.loc(c.line)) ? this.exec(c.right, io, frame) : s;
      }
      case 'or': {
        const s = this.exec(c.left, io, frame);
        if (this.jumping) return s;
        return this.ok(s, this.loc(c.line)) ? s : this.exec(c.right, io, frame);
      }
      case 'pipe':
        return this.pipe(c, io, frame);
      case 'block': {
        const io2 = this.redirect(c.redirs, io, this.loc(c.line));
        if (!io2) return lit('1');
        let s: Term = lit('0');
        for (const x of c.body) {
          s = this.exec(x, io2, frame);
          if (this.jumping) return s;
        }
        return s;
      }
      case 'if':
        return this.ifCommand(c, io, frame);
      case 'for':
        return this.forCommand(c, io, frame);
      case 'simple':
        this.e.tick(this.loc(c.line));
        return this.simple(c, io, frame);
    }
  }

  /** Both sides of a pipe run in child cmd processes: what they set does not stay; `exit` ends only that side. */
  private pipe(c: Extract<BatCmd, { left: BatCmd }>, io: Io, frame: Frame): Term {
    const buf = new Sink('buffer');
    this.inChild(() => this.exec(c.left, { stdin: io.stdin, out: buf, err: io.err }, frame), c);
    const s = this.inChild(() => this.exec(c.right, { stdin: buf.text(), out: io.out, err: io.err }, frame), c);
    this.errorlevel = s;
    return s;
  }

  private inChild(fn: () => Term, c: BatCmd): Term {
    const saved = { vars: new Map(this.vars), delayed: this.delayed, cwd: this.cwd, forVars: this.forVars, scopes: this.scopes.length };
    this.child++;
    try {
      return fn();
    } catch (x) {
      if (x instanceof ExitSignal) return x.code;
      throw x;
    } finally {
      this.child--;
      this.vars = saved.vars;
      this.delayed = saved.delayed;
      this.cwd = saved.cwd;
      this.forVars = saved.forVars;
      this.scopes.length = saved.scopes;
      void c;
    }
  }

  private ifCommand(c: Extract<BatCmd, { k: 'if' }>, io: Io, frame: Frame): Term {
    const loc = this.loc(c.line);
    let truth: boolean;
    const cond = c.cond;
    switch (cond.k) {
      case 'errorlevel': {
        const n = this.literal(this.late(cond.n, loc), loc, 'the errorlevel number');
        if (cmdNumber(n) === undefined) return this.syntax(loc, `${n} was unexpected at this time.`);
        truth = this.ok(this.e.tool([lit('cmd/if'), lit('GEQ'), this.errorlevel, lit(n)], lit(''), loc).status, loc);
        break;
      }
      case 'exist': {
        const p = this.literal(this.late(cond.path, loc), loc, 'the path of `if exist`');
        const rel = this.romPath(unquote(p));
        truth = rel !== undefined && this.exists(rel);
        break;
      }
      case 'defined': {
        const name = this.literal(this.late(cond.name, loc), loc, 'the variable name of `if defined`');
        truth = this.vars.has(name.toUpperCase());
        break;
      }
      case 'cmp': {
        const a = this.term(this.late(cond.a, loc));
        const b = this.term(this.late(cond.b, loc));
        const r = this.e.tool([lit('cmd/if'), lit(cond.op), a, b, lit(c.ci ? 'i' : '')], lit(''), loc);
        truth = this.ok(r.status, loc);
        break;
      }
    }
    if (truth !== c.not) return this.exec(c.then, io, frame);
    if (c.else) return this.exec(c.else, io, frame);
    return lit('0');
  }

  private syntax(loc: Loc, msg: string): never {
    return this.e.refuse(loc, loc.text, `cmd syntax error: ${msg}`);
  }

  private forCommand(c: Extract<BatCmd, { k: 'for' }>, io: Io, frame: Frame): Term {
    const loc = this.loc(c.line);
    const letters = (n: number): string[] => Array.from({ length: n }, (_, k) => String.fromCharCode(c.v.charCodeAt(0) + k));
    const saved = this.forVars;
    /** One turn of the loop; false = a goto left the loop. */
    const iterate = (i: number, values: Term[], names: string[]): boolean => {
      this.e.tick(loc);
      if (i >= MAX_LOOP) return this.e.refuse(loc, loc.text, `a for loop that turns more than ${MAX_LOOP} times`);
      this.forVars = new Map(saved);
      names.forEach((n, k) => this.forVars.set(n, values[k] ?? lit('')));
      this.e.inFrame(`for${this.node(c)}#${i}`, loc, () => this.exec(c.body, io, frame));
      return !this.jumping;
    };
    try {
      if (c.mode === 'l') {
        const nums = this.literal(this.late(c.set, loc), loc, 'the range of for /l')
          .split(/[\s,;=]+/)
          .filter(Boolean)
          .map((x) => cmdNumber(x) ?? 0);
        const [start = 0, step = 0, end = 0] = nums;
        let i = 0;
        for (let v = start; step >= 0 ? v <= end : v >= end; v += step) if (!iterate(i++, [lit(String(v))], [c.v])) break;
        return lit('0');
      }
      if (c.mode === 'plain') {
        const words = wordsOf(this.late(c.set, loc));
        for (const [i, w] of words.entries()) {
          if (/[*?]/.test(w)) this.e.refuse(loc, loc.text, 'a for loop over file wildcards');
          if (!iterate(i, [this.term(w)], [c.v])) break;
        }
        return lit('0');
      }
      let o: ForFOptions;
      const optText = this.literal(this.late(c.opts, loc), loc, 'the options of for /f');
      try {
        o = parseForOptions(optText);
      } catch (err) {
        if (err instanceof ForOptionsError) return this.syntax(loc, err.message);
        throw err;
      }
      const names = letters(o.tokens.length + (o.rest ? 1 : 0));
      const source = this.forSource(this.late(c.set, loc).trim(), o.usebackq, io, frame, loc);
      if (source === undefined) return lit('1');
      if (this.e.known(source)) {
        const runs = forFRuns(this.e.literal(source, loc, 'the text of for /f'), o);
        for (const [i, vals] of runs.entries()) if (!iterate(i, vals.map((v) => lit(v)), names)) break;
        return lit('0');
      }
      // A device answer: each body run is a question the plan carries (is there an n-th line?).
      for (let n = 1; ; n++) {
        const has = this.e.tool([lit('cmd/for-f'), lit(optText), lit(String(n))], source, loc).status;
        if (!this.ok(has, loc)) break;
        if (n > 1) return this.e.refuse(loc, loc.text, 'for /f over a device answer with more than one line (miflash follows one)');
        const vals = names.map((_, k) => this.e.tool([lit('cmd/for-f'), lit(optText), lit(String(n)), lit(String(k + 1))], source, loc).stdout);
        if (!iterate(n - 1, vals, names)) break;
      }
      return lit('0');
    } finally {
      this.forVars = saved;
    }
  }

  /** The text a for /f walks: a string, the files' contents, or a command's output. undefined = a file is missing. */
  private forSource(set: string, usebackq: boolean, io: Io, frame: Frame, loc: Loc): Term | undefined {
    const q = set[0];
    const end = set[set.length - 1];
    const cmdQuote = usebackq ? '`' : "'";
    const strQuote = usebackq ? "'" : '"';
    if (set.length >= 2 && q === cmdQuote && end === cmdQuote) {
      const inner = set.slice(1, -1);
      const buf = new Sink('buffer');
      let parsed: BatCmd;
      try {
        parsed = this.prepared.statements.parse({ first: { no: loc.line, text: inner }, pull: () => undefined }).cmd;
      } catch (err) {
        if (err instanceof BatSyntaxError) return this.syntax(loc, err.message);
        throw err;
      }
      this.inChild(() => this.exec(parsed, { stdin: lit(''), out: buf, err: io.err }, frame), parsed);
      return buf.text();
    }
    if (set.length >= 2 && q === strQuote && end === strQuote) return this.term(set.slice(1, -1));
    let text = '';
    for (const f of wordsOf(set)) {
      const path = this.literal(unquote(f), loc, 'a file name of for /f');
      const rel = this.romPath(path);
      const content = rel === undefined || rel === '' ? undefined : this.e.readFile(rel);
      if (content === undefined) {
        this.write(io.err, lit(`The system cannot find the file ${path}.\r\n`), 'stderr', loc, `${loc.line}:forf`);
        return undefined;
      }
      text += content;
    }
    return lit(text);
  }

  private redirect(redirs: Redir[], io: Io, loc: Loc): Io | undefined {
    const r = { ...io };
    for (const x of redirs) {
      const target = unquote(this.literal(this.late(x.target, loc), loc, 'a redirection target')).toLowerCase();
      if (x.op === '>&' || x.op === '<&') {
        if (target === '1' || target === '2') {
          const to = target === '1' ? r.out : r.err;
          if (x.fd === 1) r.out = to;
          else if (x.fd === 2) r.err = to;
          else return this.e.refuse(loc, loc.text, `handle ${x.fd}`);
          continue;
        }
        return this.e.refuse(loc, loc.text, `handle ${target}`);
      }
      const isNul = target === 'nul' || target === 'nul:';
      if (x.op === '<') {
        if (!isNul) return this.e.refuse(loc, loc.text, `reading input from ${target}`);
        r.stdin = lit('');
        continue;
      }
      if (!isNul) return this.e.refuse(loc, loc.text, `writing to ${target} (scripts interpreted by miflash write nothing but nul)`);
      const sink = new Sink('null');
      if (x.fd === 1) r.out = sink;
      else if (x.fd === 2) r.err = sink;
      else return this.e.refuse(loc, loc.text, `handle ${x.fd}`);
    }
    return r;
  }

  private simple(c: Extract<BatCmd, { k: 'simple' }>, io0: Io, frame: Frame): Term {
    const loc = this.loc(c.line);
    const node = this.node(c);
    const vendor = (c.head + c.rest).includes(VENDOR_MARK);
    const head = dropVendorMark(this.late(c.head, loc));
    const rest = dropVendorMark(this.late(c.rest, loc));
    if (head === '') return lit('0');
    const io = this.redirect(c.redirs, io0, loc);
    if (!io) return lit('1');
    if (this.hasSym(head)) return this.e.refuse(loc, loc.text, 'a command name that depends on the device');
    // echo. echo( echo: ... print the rest as it is.
    const echoSep = /^echo[.:(\\/+[\]]/i.exec(head);
    if (echoSep) return this.echo(head.slice(5) + rest, true, io, loc, node);
    const bare = unquote(head);
    const base = bare.replace(/^.*[\\/]/, '').toLowerCase().replace(/\.(exe|com)$/, '');
    const hasPath = /[\\/:]/.test(bare);
    if (hasPath && base !== 'fastboot') return this.e.refuse(loc, bare, `${bare} is not a command miflash interprets`);
    switch (base) {
      case 'echo':
        return this.echo(rest, false, io, loc, node);
      case 'set':
        return this.set(rest, io, loc, node);
      case 'setlocal':
        return this.setlocal(rest, loc);
      case 'endlocal':
        this.endlocal(frame);
        return lit('0');
      case 'goto': {
        const target = wordsOf(rest)[0] ?? '';
        if (target === '') return this.syntax(loc, 'No batch label specified to GOTO command.');
        if (this.child > 0) return this.e.refuse(loc, loc.text, 'goto inside a pipe or for /f command');
        this.jumping = new GotoSignal(this.literal(target, loc, 'a goto label').replace(/^:/, '').toUpperCase(), loc);
        return lit('0');
      }
      case 'call':
        return this.call(rest, c, frame, loc);
      case 'exit':
        return this.exit(rest, loc, node);
      case 'rem':
        return lit('0');
      case 'pause':
        this.write(io.out, lit('Press any key to continue . . . \r\n'), 'stdout', loc, node);
        return lit('0');
      case 'title':
      case 'cls':
      case 'color':
        return lit('0');
      case 'path':
        if (rest.trim() !== '') this.vars.set('PATH', this.term(rest.slice(1)));
        return lit('0');
      case 'cd':
      case 'chdir':
      case 'pushd':
      case 'popd':
        return this.cd(base, rest, io, loc, node);
      case 'ping':
        return this.ping(rest, loc, node);
      case 'timeout':
        return this.timeout(rest, loc, node);
      case 'choice':
        return this.choice(rest, io, loc, node);
      case 'powershell':
        return this.powershell(rest, io, loc, node);
      case 'fastboot': {
        const argv = splitArgs(rest).map((a) => this.term(a));
        const r = this.e.fastboot(argv, { vendor, node }, loc);
        if (io.out === io.err) this.write(io.out, this.e.merged(r), 'stdout', loc, node);
        else {
          this.write(io.out, r.stdout, 'stdout', loc, node);
          this.write(io.err, r.stderr, 'stderr', loc, node);
        }
        this.errorlevel = r.status;
        return r.status;
      }
      case 'findstr':
      case 'find': {
        const argv = [lit(base === 'find' ? 'cmd/find' : 'findstr'), ...splitArgs(rest).map((a) => this.term(a))];
        const r = this.e.tool(argv, io.stdin, loc);
        this.write(io.out, r.stdout, 'stdout', loc, node);
        this.write(io.err, r.stderr, 'stderr', loc, node);
        this.errorlevel = r.status;
        return r.status;
      }
      default:
        return this.e.refuse(loc, bare, `${bare} is not a command miflash interprets`);
    }
  }

  private echo(rest: string, separated: boolean, io: Io, loc: Loc, node: string): Term {
    if (!separated) {
      const arg = rest.trim().toLowerCase();
      if (rest.trim() === '') {
        this.write(io.out, lit(`ECHO is ${this.echoOn ? 'on' : 'off'}.\r\n`), 'stdout', loc, node);
        return lit('0');
      }
      if (arg === 'off' || arg === 'on') {
        // Command echoing is not reproduced (it only shows the commands); the state answers a bare `echo`.
        this.echoOn = arg === 'on';
        return lit('0');
      }
    }
    // The first character after `echo` separates; the rest, trailing blanks included, is printed.
    const text = separated ? rest : rest.slice(1);
    this.write(io.out, concat(this.term(text), lit('\r\n')), 'stdout', loc, node);
    return lit('0');
  }

  private set(rest: string, io: Io, loc: Loc, node: string): Term {
    const arg = rest.replace(/^[ \t]+/, '');
    if (/^\/a/i.test(arg)) return this.setA(arg.slice(2), io, loc, node);
    if (/^\/p/i.test(arg)) return this.setP(arg.slice(2).replace(/^[ \t]+/, ''), io, loc, node);
    if (arg.trim() === '') return this.e.refuse(loc, loc.text, '`set` without arguments (it lists the environment)');
    let body = arg;
    if (body.startsWith('"')) {
      const last = body.lastIndexOf('"');
      body = last > 0 ? body.slice(1, last) : body.slice(1);
    }
    const eq = body.indexOf('=');
    if (eq === 0) {
      this.write(io.err, lit('The syntax of the command is incorrect.\r\n'), 'stderr', loc, node);
      this.errorlevel = lit('1');
      return lit('1');
    }
    if (eq < 0) {
      const prefix = this.literal(body.trim(), loc, 'a variable name').toUpperCase();
      if ([...this.vars.keys()].some((k) => k.startsWith(prefix))) return this.e.refuse(loc, loc.text, '`set NAME` (it lists variables)');
      this.write(io.err, lit(`Environment variable ${body.trim()} not defined\r\n`), 'stderr', loc, node);
      this.errorlevel = lit('1');
      return lit('1');
    }
    const name = this.literal(body.slice(0, eq), loc, 'a variable name').toUpperCase();
    const value = body.slice(eq + 1);
    if (value === '') this.vars.delete(name);
    else this.vars.set(name, this.term(value));
    return lit('0');
  }

  private setP(arg: string, io: Io, loc: Loc, node: string): Term {
    let body = arg;
    if (body.startsWith('"')) {
      const last = body.lastIndexOf('"');
      body = last > 0 ? body.slice(1, last) : body.slice(1);
    }
    const eq = body.indexOf('=');
    if (eq <= 0) {
      this.write(io.err, lit('The syntax of the command is incorrect.\r\n'), 'stderr', loc, node);
      this.errorlevel = lit('1');
      return lit('1');
    }
    const name = this.literal(body.slice(0, eq), loc, 'a variable name').toUpperCase();
    let prompt = body.slice(eq + 1);
    if (prompt.length >= 2 && prompt.startsWith('"') && prompt.endsWith('"')) prompt = prompt.slice(1, -1);
    this.write(io.out, this.term(prompt), 'stdout', loc, node);
    let line: string | undefined;
    if (io.stdin === this.terminal.stdin) line = this.e.input();
    else if (this.e.known(io.stdin)) {
      const v = this.e.literal(io.stdin, loc, 'the input of set /p');
      line = v === '' ? undefined : v.split('\n')[0]!.replace(/\r$/, '');
    } else return this.e.refuse(loc, loc.text, 'set /p reading a device answer');
    // Nothing typed: the variable keeps its value and errorlevel is 1.
    if (line === undefined || line === '') {
      this.errorlevel = lit('1');
      return lit('1');
    }
    this.vars.set(name, lit(line));
    return lit('0');
  }

  private setA(expr: string, io: Io, loc: Loc, node: string): Term {
    const text = this.literal(expr, loc, 'a set /a expression').replace(/"/g, '');
    try {
      evalSetA(text, {
        get: (n) => {
          const v = this.vars.get(n.toUpperCase());
          if (v === undefined) return 0;
          const s = this.e.literal(v, loc, `%${n}% in set /a`).trim();
          return cmdNumber(s) ?? (Number.parseInt(s, 10) || 0);
        },
        set: (n, v) => this.vars.set(n.toUpperCase(), lit(String(v))),
      });
      return lit('0');
    } catch (err) {
      if (!(err instanceof SetAError)) throw err;
      this.write(io.err, lit(`${err.message}\r\n`), 'stderr', loc, node);
      this.errorlevel = lit(String(err.code));
      return lit('1');
    }
  }

  private setlocal(rest: string, loc: Loc): Term {
    this.scopes.push({ vars: new Map(this.vars), delayed: this.delayed, cwd: this.cwd });
    for (const w of wordsOf(this.literal(rest, loc, 'setlocal options'))) {
      const o = w.toLowerCase();
      if (o === 'enabledelayedexpansion') this.delayed = true;
      else if (o === 'disabledelayedexpansion') this.delayed = false;
      else if (o !== 'enableextensions') return this.e.refuse(loc, loc.text, `setlocal ${w}`);
    }
    return lit('0');
  }

  private endlocal(frame: Frame): void {
    if (this.scopes.length <= frame.scopeBase) return;
    const s = this.scopes.pop()!;
    // A copy: the scope itself may still be in a snapshot (see snapshot()).
    this.vars = new Map(s.vars);
    this.delayed = s.delayed;
    this.cwd = s.cwd;
  }

  private call(rest: string, c: BatCmd, frame: Frame, loc: Loc): Term {
    const words = wordsOf(rest);
    const target = words[0] ?? '';
    if (!target.startsWith(':')) return this.e.refuse(loc, loc.text, `call ${target} runs another batch file or program`);
    if (this.child > 0) return this.e.refuse(loc, loc.text, 'call of a label inside a pipe or for /f command');
    const name = this.literal(target.slice(1), loc, 'a call label').toUpperCase();
    const at = this.findLabel(name, c.line);
    if (at === undefined) return this.e.refuse(loc, loc.text, `call :${name.toLowerCase()}: the script has no such label`);
    const sub: Frame = { args: [target, ...words.slice(1)], scopeBase: this.scopes.length, top: false };
    const savedFor = this.forVars;
    try {
      this.e.inFrame(`call${this.node(c)}`, loc, () => this.runFrame(at + 1, sub));
    } catch (x) {
      if (!(x instanceof ExitSignal) || x.all) throw x;
      this.errorlevel = x.code;
    } finally {
      this.forVars = savedFor;
      while (this.scopes.length > sub.scopeBase) this.endlocal({ args: [], scopeBase: sub.scopeBase });
    }
    return this.errorlevel;
  }

  private exit(rest: string, loc: Loc, node: string): never {
    const words = wordsOf(this.literal(rest, loc, 'the arguments of exit'));
    const b = words[0]?.toLowerCase() === '/b';
    const n = words[b ? 1 : 0];
    const code = n === undefined ? this.errorlevel : lit(String(cmdNumber(n) ?? 0));
    throw new ExitSignal(!b, code, loc, node);
  }

  private cd(name: string, rest: string, io: Io, loc: Loc, node: string): Term {
    if (name === 'popd') {
      const d = this.dirStack.pop();
      if (d !== undefined) this.cwd = d;
      return lit('0');
    }
    let arg = this.literal(rest, loc, 'a folder').trim();
    if (/^\/d\b/i.test(arg)) arg = arg.slice(2).trim();
    arg = unquote(arg);
    if (arg === '') {
      if (name === 'pushd') return lit('0');
      this.write(io.out, lit(`${this.winCwd()}\r\n`), 'stdout', loc, node);
      return lit('0');
    }
    const rel = this.romPath(arg);
    if (rel === undefined || (rel !== '' && !this.e.romFiles().some((f) => f.startsWith(`${rel}/`)))) {
      this.write(io.err, lit('The system cannot find the path specified.\r\n'), 'stderr', loc, node);
      this.errorlevel = lit('1');
      return lit('1');
    }
    if (name === 'pushd') this.dirStack.push(this.cwd);
    this.cwd = rel;
    return lit('0');
  }

  /** `ping -n N 127.0.0.1` is the classic batch sleep: N-1 seconds (its statistics are not reproduced). */
  private ping(rest: string, loc: Loc, node: string): Term {
    const a = splitArgs(this.literal(rest, loc, 'the arguments of ping'));
    let n = 4;
    let host: string | undefined;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!.toLowerCase();
      if ((x === '-n' || x === '/n') && a[i + 1] !== undefined) n = cmdNumber(a[++i]!) ?? -1;
      else if ((x === '-w' || x === '/w') && a[i + 1] !== undefined) i++;
      else if (host === undefined && !x.startsWith('-') && !x.startsWith('/')) host = x;
      else return this.e.refuse(loc, loc.text, `ping option ${a[i]}`);
    }
    if (!host || !['127.0.0.1', 'localhost', '::1'].includes(host) || n < 1) return this.e.refuse(loc, loc.text, 'ping of another host than this computer');
    if (n > 1) this.e.sleep(n - 1, loc, node);
    this.errorlevel = lit('0');
    return lit('0');
  }

  private timeout(rest: string, loc: Loc, node: string): Term {
    const a = splitArgs(this.literal(rest, loc, 'the arguments of timeout'));
    let secs: number | undefined;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!.toLowerCase();
      if (x === '/t' && a[i + 1] !== undefined) secs = cmdNumber(a[++i]!);
      else if (x === '/nobreak') continue;
      else if (secs === undefined && cmdNumber(x) !== undefined) secs = cmdNumber(x);
      else return this.e.refuse(loc, loc.text, `timeout option ${a[i]}`);
    }
    if (secs === undefined || secs < 0) return this.e.refuse(loc, loc.text, 'timeout that waits for a key press');
    if (secs > 0) this.e.sleep(secs, loc, node);
    this.errorlevel = lit('0');
    return lit('0');
  }

  /** `choice [/C keys] [/N] [/CS] [/T s /D key] [/M text]`: reads a key from --input; errorlevel = its position. */
  private choice(rest: string, io: Io, loc: Loc, node: string): Term {
    const a = splitArgs(this.literal(rest, loc, 'the arguments of choice'));
    let keys = 'YN';
    let show = true;
    let cs = false;
    let dflt: string | undefined;
    let text = '';
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!.toLowerCase();
      if (x === '/c' && a[i + 1] !== undefined) keys = a[++i]!;
      else if (x === '/n') show = false;
      else if (x === '/cs') cs = true;
      else if (x === '/t' && a[i + 1] !== undefined) i++;
      else if (x === '/d' && a[i + 1] !== undefined) dflt = a[++i]!;
      else if (x === '/m' && a[i + 1] !== undefined) text = a[++i]!;
      else return this.e.refuse(loc, loc.text, `choice option ${a[i]}`);
    }
    const norm = (s: string) => (cs ? s : s.toUpperCase());
    if (show) this.write(io.out, lit(`${text ? `${text} ` : ''}[${[...keys.toUpperCase()].join(',')}]?`), 'stdout', loc, node);
    let picked: number | undefined;
    while (picked === undefined) {
      const line = this.e.input();
      if (line === undefined) break;
      for (const ch of line) {
        const k = norm(keys).indexOf(norm(ch));
        if (k >= 0) {
          picked = k;
          break;
        }
      }
    }
    if (picked === undefined && dflt !== undefined) picked = norm(keys).indexOf(norm(dflt));
    const level = picked === undefined || picked < 0 ? 255 : picked + 1;
    if (show && picked !== undefined && picked >= 0) this.write(io.out, lit(`${keys[picked]}\r\n`), 'stdout', loc, node);
    this.errorlevel = lit(String(level));
    return lit(String(level));
  }

  /**
   * `powershell [-NoProfile] [-Command] "..."` with one Get-Date conversion of
   * a date to text or seconds — what batch scripts use to compare dates. It
   * runs as the `date` tool (GNU date under UTC), so a device's date works.
   */
  private powershell(rest: string, io: Io, loc: Loc, node: string): Term {
    const a = splitArgs(rest);
    let i = 0;
    while (i < a.length && /^-(noprofile|nologo|noninteractive|executionpolicy|command|c)$/i.test(a[i]!)) {
      if (/^-executionpolicy$/i.test(a[i]!)) i++;
      i++;
    }
    const script = a.slice(i).join(' ').trim();
    const conv = getDateConversion(script);
    if (!conv) return this.e.refuse(loc, loc.text, 'powershell other than a Get-Date conversion of a date');
    const date = this.term(conv.date);
    const r = this.e.tool([lit('date'), lit('-u'), lit('-d'), date, lit(`+${conv.format}`)], lit(''), loc);
    this.write(io.out, r.stdout, 'stdout', loc, node);
    this.write(io.err, r.stderr, 'stderr', loc, node);
    this.errorlevel = r.status;
    return r.status;
  }
}

/** Get-Date forms: `(Get-Date [-Date] 'D').ToString('F')`, `Get-Date [-Date] 'D' -Format 'F'`, `... -UFormat %s`, optionally cast with [int]/[long]/[int64]. */
export function getDateConversion(script: string): { date: string; format: string } | undefined {
  let s = script.trim().replace(/^\[(?:int|long|int64|double|string)\]\s*/i, '');
  const arg = `'([^']*)'|"([^"]*)"|([^\\s'"()]+)`;
  const dateArg = new RegExp(`^Get-Date\\s+(?:-Date\\s+)?(?:${arg})`, 'i');
  const toString = new RegExp(`^\\(\\s*Get-Date\\s+(?:-Date\\s+)?(?:${arg})\\s*\\)\\.ToString\\(\\s*(?:'([^']*)'|"([^"]*)")\\s*\\)$`, 'i');
  const m1 = toString.exec(s);
  if (m1) {
    const f = netFormat(m1[4] ?? m1[5] ?? '');
    return f === undefined ? undefined : { date: m1[1] ?? m1[2] ?? m1[3] ?? '', format: f };
  }
  // `[int](Get-Date 'D' -UFormat %s)`: the parenthesised pipeline.
  if (/^\(.*\)$/s.test(s)) s = s.slice(1, -1).trim();
  const m2 = dateArg.exec(s);
  if (!m2) return undefined;
  const date = m2[1] ?? m2[2] ?? m2[3] ?? '';
  const tail = s.slice(m2[0].length).trim();
  const uf = /^-UFormat\s+(?:'([^']*)'|"([^"]*)"|(\S+))$/i.exec(tail);
  if (uf) {
    const f = uf[1] ?? uf[2] ?? uf[3] ?? '';
    return /^(%[sYmdHMS]|[-_: /.])+$/.test(f) ? { date, format: f } : undefined;
  }
  const ff = /^-Format\s+(?:'([^']*)'|"([^"]*)"|(\S+))$/i.exec(tail);
  if (ff) {
    const f = netFormat(ff[1] ?? ff[2] ?? ff[3] ?? '');
    return f === undefined ? undefined : { date, format: f };
  }
  return undefined;
}

/** A .NET custom date format of yyyy MM dd HH mm ss and separators, as a date(1) format. */
function netFormat(f: string): string | undefined {
  let out = '';
  const re = /yyyy|MM|dd|HH|mm|ss|[-_: /.]/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(f))) {
    at = re.lastIndex;
    const map: Record<string, string> = { yyyy: '%Y', MM: '%m', dd: '%d', HH: '%H', mm: '%M', ss: '%S' };
    out += map[m[0]] ?? m[0];
  }
  return at === f.length && out !== '' ? out : undefined;
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s.replace(/"/g, '');
}

function replaceAllCi(v: string, from: string, to: string): string {
  if (from === '') return v;
  let out = '';
  let i = 0;
  const low = v.toLowerCase();
  const f = from.toLowerCase();
  for (;;) {
    const at = low.indexOf(f, i);
    if (at < 0) return out + v.slice(i);
    out += v.slice(i, at) + to;
    i = at + from.length;
  }
}

/** cmd's argument words: delimited by blanks , ; = outside quotes (quotes kept). */
export function wordsOf(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (const c of s) {
    if (c === '"') quoted = !quoted;
    if (!quoted && /[\s,;=]/.test(c)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
      continue;
    }
    cur += c;
    has = true;
  }
  if (has) out.push(cur);
  return out;
}

class SetAError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** set /a: 32-bit integer arithmetic with C operators, variables by name, assignments and commas. */
export function evalSetA(src: string, env: { get(n: string): number; set(n: string, v: number): void }): number {
  const toks = src.match(/\s*(0[xX][0-9a-fA-F]+|[0-9]+|[A-Za-z_$#@.?~][A-Za-z0-9_$#@.?]*|<<=|>>=|<<|>>|[-+*/%&|^]=|[-+*/%()!~&|^=,])\s*/gy);
  if (!toks || toks.join('').length !== src.length) throw new SetAError('Missing operator.', 1073750989);
  const t = toks.map((x) => x.trim()).filter(Boolean);
  let i = 0;
  const wrap = (n: number) => n | 0;
  const peek = () => t[i];
  const isName = (x: string | undefined) => x !== undefined && /^[A-Za-z_$#@.?]/.test(x);
  const primary = (): number => {
    const x = t[i++];
    if (x === undefined) throw new SetAError('Missing operand.', 1073750991);
    if (x === '(') {
      const v = comma();
      if (t[i++] !== ')') throw new SetAError('Unbalanced parenthesis.', 1073750988);
      return v;
    }
    if (x === '-') return wrap(-primary());
    if (x === '+') return primary();
    if (x === '!') return primary() === 0 ? 1 : 0;
    if (x === '~') return ~primary();
    if (/^[0-9]/.test(x)) {
      const n = cmdNumber(x);
      if (n === undefined) throw new SetAError('Invalid number.  Numeric constants are either decimal (17),\r\nhexadecimal (0x11), or octal (021).', 1073750990);
      return wrap(n);
    }
    return wrap(env.get(x));
  };
  const bin = (ops: string[], sub: () => number, f: (a: number, op: string, b: number) => number) => (): number => {
    let a = sub();
    while (ops.includes(peek() ?? '')) {
      const op = t[i++]!;
      a = f(a, op, sub());
    }
    return a;
  };
  const arith = (a: number, op: string, b: number): number => {
    switch (op) {
      case '*':
        return Math.imul(a, b);
      case '/':
      case '%':
        if (b === 0) throw new SetAError('Divide by zero error.', 1073750993);
        return op === '/' ? wrap(Math.trunc(a / b)) : wrap(a % b);
      case '+':
        return wrap(a + b);
      case '-':
        return wrap(a - b);
      case '<<':
        return a << (b & 31);
      case '>>':
        return a >> (b & 31);
      case '&':
        return a & b;
      case '^':
        return a ^ b;
      default:
        return a | b;
    }
  };
  const mul = bin(['*', '/', '%'], primary, arith);
  const add = bin(['+', '-'], mul, arith);
  const shift = bin(['<<', '>>'], add, arith);
  const band = bin(['&'], shift, arith);
  const bxor = bin(['^'], band, arith);
  const bor = bin(['|'], bxor, arith);
  const assign = (): number => {
    if (isName(peek()) && /^(=|[-+*/%&|^]=|<<=|>>=)$/.test(t[i + 1] ?? '')) {
      const name = t[i]!;
      const op = t[i + 1]!;
      i += 2;
      const rhs = assign();
      const v = op === '=' ? rhs : arith(wrap(env.get(name)), op.slice(0, -1), rhs);
      env.set(name, v);
      return v;
    }
    return bor();
  };
  const comma = (): number => {
    let v = assign();
    while (peek() === ',') {
      i++;
      v = assign();
    }
    return v;
  };
  const v = comma();
  if (i < t.length) throw new SetAError('Missing operator.', 1073750989);
  return v;
}
