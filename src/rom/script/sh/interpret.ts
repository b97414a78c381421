// The .sh front end: interprets a parsed script against the engine, as dash
// (Debian's /bin/sh) or bash would run it — whichever the shebang names. It
// owns the shell's own semantics: variables, quoting and word expansion,
// field splitting, redirections, pipelines, and-or lists, compound commands,
// functions, errexit, `$?`. Commands go to the engine: `fastboot` becomes plan
// steps, text tools are pure functions, and everything else is either a
// builtin implemented here or refused with file, line and command. No
// process is ever spawned; files are read only inside the ROM, and the only
// file written to is /dev/null.
import { lit, concat, isLit, type Term } from '../../../plan/predicate.js';
import { Inconclusive, PathEnd, ScriptInterpretError, Sink, type Engine, type Io, type Loc } from '../interp/engine.js';
import type { Command, List, Redir, Word, WordPart } from './ast.js';

/** The ROM folder as the script sees it: `$0` is `/ROM/<script>`, and the script starts in /ROM. */
export const ROM_ROOT = '/ROM';

export interface ShOptions {
  file: string;
  shell: 'dash' | 'bash';
}

const MAX_LOOP = 10_000;

/** Internal control flow, never seen by the engine. */
class ShExit {
  constructor(
    readonly status: number,
    readonly loc: Loc,
    readonly node: string,
  ) {}
}
class LoopJump {
  constructor(
    readonly kind: 'break' | 'continue',
    public levels: number,
  ) {}
}
class FuncReturn {
  constructor(readonly status: Term) {}
}

const NO_LOCALS: Snapshot['locals'] = [];

interface Snapshot extends State {
  positional: Term[];
  status: Term;
  conditions: number;
  locals: ReadonlyArray<ReadonlyMap<string, Term | undefined>>;
}

interface State {
  readonly vars: ReadonlyMap<string, Term>;
  readonly funcs: ReadonlyMap<string, Command>;
  cwd: string;
  errexit: boolean;
  nounset: boolean;
}

export function interpretSh(ast: List, engine: Engine, opts: ShOptions): void {
  const sh = new Sh(engine, opts);
  engine.setResolveFile((arg) => sh.resolveFile(arg));
  sh.run(ast);
}

class Sh {
  // Read-only here: changes go through writableVars() / writableFuncs() (copy on write, see saveState).
  private vars: ReadonlyMap<string, Term> = new Map();
  private funcs: ReadonlyMap<string, Command> = new Map();
  private positional: Term[] = [];
  private status: Term = lit('0');
  private cwd = ''; // ROM-relative
  private errexit = false;
  private nounset = false;
  /** > 0 while running a condition (if/while test, && || left sides, !): errexit does not apply. */
  private conditions = 0;
  /** What `local` saved, per function call. A scope map is never changed (`local` replaces it): snapshots share them. */
  private localScopes: Array<ReadonlyMap<string, Term | undefined>> = [];
  /** `vars` / `funcs` is also held by a saved state: copy it before changing it. */
  private sharedVars = false;
  private sharedFuncs = false;
  private readonly terminal: Io = { stdin: lit(''), out: new Sink('stdout'), err: new Sink('stderr') };

  constructor(
    private readonly e: Engine,
    private readonly opts: ShOptions,
    /** A probe of an operation's failure side (see list()). */
    private readonly probing = false,
  ) {}

  run(ast: List): void {
    try {
      this.list(ast, this.terminal);
    } catch (x) {
      if (x instanceof ShExit) this.e.exit(x.status, x.loc, x.node);
      if (x instanceof FuncReturn || x instanceof LoopJump) return; // a stray return/break at top level ends nothing more
      throw x;
    }
  }

  // ---- helpers ----

  private readonly locs = new WeakMap<object, Loc>();

  private loc(c: { pos: { line: number }; text: string }): Loc {
    let l = this.locs.get(c);
    if (!l) this.locs.set(c, (l = { file: this.opts.file, line: c.pos.line, text: c.text }));
    return l;
  }

  private node(c: { pos: { line: number; offset: number } }): string {
    return `${c.pos.line}:${c.pos.offset}`;
  }

  private refuse(c: { pos: { line: number }; text: string }, construct: string, why: string): never {
    return this.e.refuse(this.loc(c), construct, why);
  }

  private setStatus(t: Term | number): void {
    this.status = typeof t === 'number' ? lit(String(t)) : t;
  }

  /** Whether the last status is 0 (forks when it depends on the device). */
  private ok(c: { pos: { line: number }; text: string }): boolean {
    return this.e.succeeded(this.status, this.loc(c));
  }

  private write(sink: Sink, t: Term, stream: 'stdout' | 'stderr', c: Command): void {
    if (isLit(t) && t.value === '') return;
    if (sink.kind === 'null') return;
    if (sink.kind === 'buffer') {
      sink.parts.push(t);
      return;
    }
    this.e.print(t, sink.kind === 'stderr' ? 'stderr' : stream, this.loc(c), `${this.node(c)}:${sink.kind}`);
  }

  private checkErrexit(c: Command): void {
    if (!this.errexit || this.conditions > 0) return;
    if (this.ok(c)) return;
    const s = this.e.known(this.status) ? Number((this.status as { value: string }).value) : 1;
    throw new ShExit(s, this.loc(c), `errexit:${this.node(c)}`);
  }

  /** A statement's device-dependent status, for the engine's ignored-check detection (not inside conditions or substitutions). */
  private statementDone(c: Command): void {
    if (this.conditions === 0 && this.captures === 0) this.e.noteStatus(this.status, this.loc(c), this.node(c));
  }

  private captures = 0;

  private inCondition<T>(fn: () => T): T {
    this.conditions++;
    try {
      return fn();
    } finally {
      this.conditions--;
    }
  }

  /**
   * The maps of a saved state are shared, not copied (a snapshot is taken before every statement): they are
   * copied on the first change after that instead (writableVars / writableFuncs).
   */
  private saveState(): State {
    this.sharedVars = true;
    this.sharedFuncs = true;
    return { vars: this.vars, funcs: this.funcs, cwd: this.cwd, errexit: this.errexit, nounset: this.nounset };
  }

  private restoreState(s: State): void {
    this.vars = s.vars;
    this.funcs = s.funcs;
    this.sharedVars = true;
    this.sharedFuncs = true;
    this.cwd = s.cwd;
    this.errexit = s.errexit;
    this.nounset = s.nounset;
  }

  private writableVars(): Map<string, Term> {
    if (!this.sharedVars) return this.vars as Map<string, Term>;
    const copy = new Map(this.vars);
    this.vars = copy;
    this.sharedVars = false;
    return copy;
  }

  private writableFuncs(): Map<string, Command> {
    if (!this.sharedFuncs) return this.funcs as Map<string, Command>;
    const copy = new Map(this.funcs);
    this.funcs = copy;
    this.sharedFuncs = false;
    return copy;
  }

  /** A subshell: changes to variables, functions, directory and options stay inside; `exit` ends only it. */
  private subshell(fn: () => void): void {
    const saved = this.saveState();
    const savedPositional = this.positional;
    try {
      fn();
    } catch (x) {
      if (x instanceof ShExit) this.setStatus(x.status);
      else if (!(x instanceof FuncReturn || x instanceof LoopJump)) throw x;
    } finally {
      this.restoreState(saved);
      this.positional = savedPositional;
    }
  }

  // ---- lists and commands ----

  private list(l: List, io: Io): void {
    for (let i = 0; i < l.cmds.length; i++) {
      const c = l.cmds[i]!;
      // A statement that runs a device operation: look right away at what the rest of this list does when
      // the operation fails (usually `if [ $? -ne 0 ]; then echo M; exit 1; fi`), so the explorer need not
      // re-run the whole script from the start to learn it.
      const probe = !this.probing && this.captures === 0 && io.out.kind !== 'buffer' && io.err.kind !== 'buffer';
      const before = probe ? this.snapshot() : undefined;
      const mark = this.e.mark();
      this.command(c, io);
      if (before) for (const op of this.e.unprobedOpsSince(mark)) this.probeFailure(op, l, i, io, before);
    }
  }

  private snapshot(): Snapshot {
    this.sharedVars = true;
    this.sharedFuncs = true;
    // One object literal (no spread of saveState()): this runs before every statement.
    return {
      vars: this.vars,
      funcs: this.funcs,
      cwd: this.cwd,
      errexit: this.errexit,
      nounset: this.nounset,
      positional: this.positional,
      status: this.status,
      conditions: this.conditions,
      locals: this.localScopes.length === 0 ? NO_LOCALS : [...this.localScopes],
    };
  }

  private probeFailure(op: string, l: List, i: number, io: Io, before: Snapshot): void {
    const child = this.e.probe(op);
    const sh = new Sh(child, this.opts, true);
    sh.restoreState(before);
    sh.positional = before.positional;
    sh.status = before.status;
    sh.conditions = before.conditions;
    sh.localScopes = [...before.locals];
    child.setResolveFile((arg) => sh.resolveFile(arg));
    try {
      sh.list({ cmds: l.cmds.slice(i) }, io);
      child.concludeProbe(op, {});
    } catch (x) {
      if (x instanceof ShExit) child.concludeProbe(op, { exit: x.status });
      else if (x instanceof PathEnd) child.concludeProbe(op, { refused: x.terminal.type === 'refuse' });
      else if (x instanceof Inconclusive || x instanceof FuncReturn || x instanceof LoopJump || x instanceof ScriptInterpretError) child.concludeProbe(op, {});
      else throw x;
    }
  }

  private command(c: Command, io: Io): void {
    this.e.tick(this.loc(c));
    switch (c.k) {
      case 'simple':
        this.simple(c, io);
        // `v=$(...)` reads a value; its status is no check the script ignores.
        if (c.words.length > 0) this.statementDone(c);
        this.checkErrexit(c);
        return;
      case 'pipeline':
        this.pipeline(c, io);
        this.statementDone(c);
        if (!c.bang) this.checkErrexit(c);
        return;
      case 'andor': {
        this.inCondition(() => this.command(c.first, io));
        for (const [i, r] of c.rest.entries()) {
          const pass = this.ok(c) === (r.op === '&&');
          if (!pass) continue;
          if (i === c.rest.length - 1) this.command(r.cmd, io);
          else this.inCondition(() => this.command(r.cmd, io));
        }
        return;
      }
      case 'if':
        return this.withRedirs(c, io, c.redirs, (io2) => {
          for (const cl of c.clauses) {
            this.inCondition(() => this.list(cl.cond, io2));
            if (this.ok(c)) {
              this.setStatus(0);
              this.list(cl.body, io2);
              return;
            }
          }
          this.setStatus(0);
          if (c.else) this.list(c.else, io2);
        });
      case 'loop':
        return this.withRedirs(c, io, c.redirs, (io2) => this.loop(c, io2));
      case 'for':
        return this.withRedirs(c, io, c.redirs, (io2) => this.forLoop(c, io2));
      case 'case':
        return this.withRedirs(c, io, c.redirs, (io2) => this.caseCommand(c, io2));
      case 'group':
        return this.withRedirs(c, io, c.redirs, (io2) => {
          if (c.subshell) this.subshell(() => this.list(c.body, io2));
          else this.list(c.body, io2);
          if (c.subshell) this.checkErrexit(c);
        });
      case 'func':
        this.writableFuncs().set(c.name, c.body);
        this.setStatus(0);
        return;
      case 'background':
        return this.refuse(c, c.text, 'a command run in the background (&)');
      case 'dbracket':
        return this.refuse(c, c.text, '[[ ... ]] is not supported; use [ ... ]');
    }
  }

  private loop(c: Extract<Command, { k: 'loop' }>, io: Io): void {
    this.setStatus(0);
    let bodyStatus: Term = lit('0');
    for (let i = 0; ; i++) {
      if (i >= MAX_LOOP) return this.refuse(c, c.text, `a loop that turns more than ${MAX_LOOP} times`);
      const stop = this.e.inFrame(`loop${c.pos.offset}#${i}`, this.loc(c), () => {
        this.inCondition(() => this.list(c.cond, io));
        if (this.ok(c) === c.until) return true;
        try {
          this.list(c.body, io);
        } catch (x) {
          if (!(x instanceof LoopJump)) throw x;
          if (x.levels > 1) {
            x.levels--;
            throw x;
          }
          if (x.kind === 'break') return true;
        }
        bodyStatus = this.status;
        return false;
      });
      if (stop) break;
    }
    this.setStatus(bodyStatus);
  }

  private forLoop(c: Extract<Command, { k: 'for' }>, io: Io): void {
    const items = c.words ? c.words.flatMap((w) => this.fields(w, c)) : this.positional;
    this.setStatus(0);
    for (const [i, item] of items.entries()) {
      const stop = this.e.inFrame(`for${c.pos.offset}#${i}`, this.loc(c), () => {
        this.assign(c.name, item, c);
        try {
          this.list(c.body, io);
        } catch (x) {
          if (!(x instanceof LoopJump)) throw x;
          if (x.levels > 1) {
            x.levels--;
            throw x;
          }
          if (x.kind === 'break') return true;
        }
        return false;
      });
      if (stop) break;
    }
  }

  private caseCommand(c: Extract<Command, { k: 'case' }>, io: Io): void {
    const subject = this.e.literal(this.word(c.word, c), this.loc(c), 'the word a `case` matches');
    this.setStatus(0);
    for (const item of c.items) {
      for (const p of item.patterns) {
        const pattern = this.pattern(p, c);
        if (pattern.test(subject)) {
          this.list(item.body, io);
          return;
        }
      }
    }
  }

  private pipeline(c: Extract<Command, { k: 'pipeline' }>, io: Io): void {
    let input = io.stdin;
    for (const [i, stage] of c.cmds.entries()) {
      const last = i === c.cmds.length - 1;
      const out = last ? io.out : new Sink('buffer');
      const stageIo = { stdin: input, out, err: io.err };
      // Every stage runs in a subshell (dash and bash without lastpipe).
      if (c.cmds.length > 1) this.subshell(() => this.inCondition(() => this.command(stage, stageIo)));
      else this.inCondition(() => this.command(stage, stageIo));
      input = out.kind === 'buffer' && !last ? out.text() : lit('');
    }
    if (c.bang) this.setStatus(this.ok(c) ? 1 : 0);
  }

  private withRedirs(c: Command, io: Io, redirs: Redir[], fn: (io: Io) => void): void {
    const io2 = this.redirect(c, io, redirs);
    if (!io2) return;
    fn(io2);
  }

  // ---- simple commands ----

  private simple(c: Extract<Command, { k: 'simple' }>, io: Io): void {
    const vendor = c.words.some(hasAllArgs);
    const argv = c.words.flatMap((w) => this.fields(w, c));
    if (argv.length === 0) {
      // Assignments only: the status is that of the last command substitution, else 0.
      this.setStatus(0);
      for (const a of c.assigns) this.assign(a.name, this.word(a.value, c), c);
      const io2 = this.redirect(c, io, c.redirs);
      if (!io2) return;
      return;
    }
    // Prefix assignments (VAR=x cmd) only matter to the command's environment, which no command here reads.
    for (const a of c.assigns) this.word(a.value, c);
    const io2 = this.redirect(c, io, c.redirs);
    if (!io2) return;
    const name = this.e.literal(argv[0]!, this.loc(c), 'the command name');
    this.runCommand(name, argv, io2, c, vendor);
  }

  private runCommand(name: string, argv: Term[], io: Io, c: Extract<Command, { k: 'simple' }>, vendor: boolean): void {
    const fn = this.funcs.get(name);
    if (fn) return this.call(fn, argv.slice(1), io, c);
    const base = name.replace(/^.*\//, '');
    if (base === 'fastboot' || base === 'fastboot.exe') {
      const r = this.e.fastboot(argv.slice(1), { vendor, node: this.node(c) }, this.loc(c));
      if (io.out === io.err) this.write(io.out, this.e.merged(r), 'stdout', c);
      else {
        this.write(io.out, r.stdout, 'stdout', c);
        this.write(io.err, r.stderr, 'stderr', c);
      }
      this.setStatus(r.status);
      return;
    }
    const builtin = this.builtin(name, argv, io, c);
    if (builtin) return;
    if (name.includes('/')) return this.refuse(c, name, `${name} is not a command miflash interprets`);
    const r = this.e.tool(argv, io.stdin, this.loc(c));
    this.write(io.out, r.stdout, 'stdout', c);
    this.write(io.err, r.stderr, 'stderr', c);
    this.setStatus(r.status);
  }

  private call(body: Command, args: Term[], io: Io, c: Extract<Command, { k: 'simple' }>): void {
    const saved = this.positional;
    this.positional = args;
    this.localScopes.push(new Map());
    try {
      this.e.inFrame(`call${c.pos.offset}`, this.loc(c), () => this.command(body, io));
    } catch (x) {
      if (!(x instanceof FuncReturn)) throw x;
      this.setStatus(x.status);
    } finally {
      this.positional = saved;
      const scope = this.localScopes.pop()!;
      for (const [k, v] of scope) {
        if (v === undefined) this.writableVars().delete(k);
        else this.writableVars().set(k, v);
      }
    }
  }

  /** Shell builtins and the pure host commands miflash implements; false = not one. */
  private builtin(name: string, argv: Term[], io: Io, c: Extract<Command, { k: 'simple' }>): boolean {
    const args = () => argv.slice(1).map((a, i) => this.e.literal(a, this.loc(c), `argument ${i + 1} of ${name}`));
    const num = (s: string | undefined, dflt: number): number => {
      if (s === undefined) return dflt;
      if (!/^[0-9]+$/.test(s)) return this.refuse(c, c.text, `${name}: numeric argument required`);
      return Number(s);
    };
    switch (name) {
      case ':':
      case 'true':
        this.setStatus(0);
        return true;
      case 'false':
        this.setStatus(1);
        return true;
      case 'echo':
        this.echo(argv.slice(1), io, c);
        return true;
      case 'exit': {
        const a = argv[1];
        const s = a === undefined ? this.statusNumber(c) : num(this.e.literal(a, this.loc(c), 'the exit status'), 0) & 255;
        throw new ShExit(s, this.loc(c), this.node(c));
      }
      case 'return': {
        const a = argv[1];
        throw new FuncReturn(a === undefined ? this.status : lit(String(num(this.e.literal(a, this.loc(c), 'the return status'), 0) & 255)));
      }
      case 'break':
      case 'continue':
        throw new LoopJump(name, num(args()[0], 1));
      case 'shift':
        this.positional = this.positional.slice(num(args()[0], 1));
        this.setStatus(0);
        return true;
      case 'set':
        this.set(args(), c);
        return true;
      case 'unset':
        for (const a of args().filter((x) => !x.startsWith('-'))) this.writableVars().delete(a);
        this.setStatus(0);
        return true;
      case 'export':
      case 'readonly':
      case 'local':
        for (const [i, a] of argv.slice(1).entries()) {
          const s = this.e.literal(a, this.loc(c), `argument ${i + 1} of ${name}`);
          if (s.startsWith('-')) continue;
          const eq = s.indexOf('=');
          const v = eq < 0 ? undefined : s.slice(eq + 1);
          const n = eq < 0 ? s : s.slice(0, eq);
          if (name === 'local') {
            const top = this.localScopes.length - 1;
            const scope = this.localScopes[top];
            if (scope && !scope.has(n)) this.localScopes[top] = new Map(scope).set(n, this.vars.get(n));
          }
          // The value was expanded as part of the word; keep it a term when it is one whole expansion.
          if (v !== undefined) this.assign(n, lit(v), c);
        }
        this.setStatus(0);
        return true;
      case 'read':
        this.read(args(), c, io);
        return true;
      case 'sleep': {
        const a = args();
        const m = a.length === 1 ? /^([0-9]+(?:\.[0-9]+)?)s?$/.exec(a[0]!) : null;
        if (!m) return this.refuse(c, c.text, 'sleep takes one number of seconds here');
        this.e.sleep(Number(m[1]), this.loc(c), this.node(c));
        this.setStatus(0);
        return true;
      }
      case 'clear':
      case 'wait':
        this.setStatus(0);
        return true;
      case 'cd': {
        const a = args();
        const dir = this.romPath(a[0] ?? ROM_ROOT);
        if (dir === undefined || (dir !== '' && !this.e.romFiles().some((f) => f.startsWith(`${dir}/`)))) {
          this.write(io.err, lit(`cd: can't cd to ${a[0] ?? ''}\n`), 'stderr', c);
          this.setStatus(this.opts.shell === 'dash' ? 2 : 1);
          return true;
        }
        this.cwd = dir;
        this.setStatus(0);
        return true;
      }
      case 'pwd':
        this.write(io.out, lit(`${this.cwd ? `${ROM_ROOT}/${this.cwd}` : ROM_ROOT}\n`), 'stdout', c);
        this.setStatus(0);
        return true;
      case 'dirname':
      case 'basename': {
        const a = argv.slice(1);
        if (a.length !== 1) return this.refuse(c, c.text, `${name} with ${a.length} arguments`);
        const p = this.e.literal(a[0]!, this.loc(c), `the argument of ${name}`);
        this.write(io.out, lit(`${name === 'dirname' ? dirname(p) : basename(p)}\n`), 'stdout', c);
        this.setStatus(0);
        return true;
      }
      case 'which':
      case 'command': {
        const a = args();
        const names = name === 'command' ? (a[0] === '-v' ? a.slice(1) : undefined) : a;
        if (!names) return this.refuse(c, c.text, '`command` other than `command -v NAME`');
        const found = names.filter((n) => n === 'fastboot');
        this.write(io.out, lit(found.map(() => '/usr/bin/fastboot\n').join('')), 'stdout', c);
        this.setStatus(found.length === names.length && names.length > 0 ? 0 : 1);
        return true;
      }
      case 'eval':
      case '.':
      case 'source':
      case 'exec':
      case 'trap':
        return this.refuse(c, c.text, `${name} runs code miflash cannot plan`);
      default:
        return false;
    }
  }

  private statusNumber(c: Command): number {
    return this.e.known(this.status) ? Number((this.status as { value: string }).value) : this.ok(c) ? 0 : 1;
  }

  private set(a: string[], c: Extract<Command, { k: 'simple' }>): void {
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      if (x === '--') {
        this.positional = a.slice(i + 1).map(lit);
        break;
      }
      if (x === '-o' || x === '+o') {
        const o = a[++i];
        if (o === 'errexit') this.errexit = x === '-o';
        else if (o === 'nounset') this.nounset = x === '-o';
        else if (o !== 'xtrace' && o !== 'verbose') this.refuse(c, c.text, `set -o ${o ?? ''} is not supported`);
        continue;
      }
      if (!/^[-+][a-z]+$/.test(x)) {
        this.positional = a.slice(i).map(lit);
        break;
      }
      for (const f of x.slice(1)) {
        if (f === 'e') this.errexit = x[0] === '-';
        else if (f === 'u') this.nounset = x[0] === '-';
        else if (f !== 'x' && f !== 'v') this.refuse(c, c.text, `set ${x[0]}${f} is not supported`);
      }
    }
    this.setStatus(0);
  }

  private echo(args: Term[], io: Io, c: Extract<Command, { k: 'simple' }>): void {
    let newline = true;
    let escapes = this.opts.shell === 'dash';
    let i = 0;
    // Options: dash knows only -n; bash -n, -e, -E (combined, as one word each).
    for (; i < args.length; i++) {
      const a = args[i]!;
      if (!isLit(a) || !/^-[neE]+$/.test(a.value)) break;
      if (this.opts.shell === 'dash' && a.value !== '-n') break;
      for (const f of a.value.slice(1)) {
        if (f === 'n') newline = false;
        else if (f === 'e') escapes = true;
        else escapes = false;
      }
    }
    const words = args.slice(i);
    const joined = words.flatMap((w, j) => (j === 0 ? [w] : [lit(' '), w]));
    let text = concat(...joined, ...(newline ? [lit('\n')] : []));
    if (escapes) {
      if (!isLit(text)) {
        // Backslash escapes in a device answer would change what echo prints: assume there are none (checked at run time).
        const hasBackslash = this.e.tool([lit('grep'), lit('-qF'), lit('\\')], text, this.loc(c)).status;
        if (this.e.succeeded(hasBackslash, this.loc(c))) return this.refuse(c, c.text, 'echo of a device answer containing a backslash');
      } else {
        const r = echoEscapes(text.value);
        text = lit(r.text);
      }
    }
    this.write(io.out, text, 'stdout', c);
    this.setStatus(0);
  }

  private read(a: string[], c: Extract<Command, { k: 'simple' }>, io: Io): void {
    let raw = false;
    const names: string[] = [];
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      if (names.length === 0 && x.startsWith('-') && x.length > 1) {
        for (let j = 1; j < x.length; j++) {
          const f = x[j]!;
          if (f === 'r') raw = true;
          else if (f === 'p') {
            if (j + 1 < x.length) j = x.length;
            else i++;
          } else if (this.opts.shell === 'bash' && (f === 's' || f === 'e')) continue;
          else if (this.opts.shell === 'bash' && (f === 'n' || f === 't' || f === 'N' || f === 'd')) {
            if (j + 1 < x.length) j = x.length;
            else i++;
          } else {
            // dash: "read: Illegal option -n"; the command fails with status 2.
            this.write(io.err, lit(`read: Illegal option -${f}\n`), 'stderr', c);
            this.setStatus(2);
            return;
          }
        }
        continue;
      }
      names.push(x);
    }
    if (names.length === 0) {
      if (this.opts.shell === 'dash') {
        this.write(io.err, lit('read: arg count\n'), 'stderr', c);
        this.setStatus(2);
        return;
      }
      names.push('REPLY');
    }
    let line: string | undefined;
    if (isLit(io.stdin) && io.stdin !== this.terminal.stdin) {
      const v = io.stdin.value;
      const nl = v.indexOf('\n');
      line = v === '' ? undefined : nl < 0 ? v : v.slice(0, nl);
    } else if (io.stdin === this.terminal.stdin) line = this.e.input();
    else return this.refuse(c, c.text, 'read from a device answer');
    if (line === undefined) {
      for (const n of names) this.assign(n, lit(''), c);
      this.setStatus(1);
      return;
    }
    if (!raw) line = line.replace(/\\(.)/g, '$1');
    const fields = names.length === 1 ? [line.replace(/^[ \t]+|[ \t]+$/g, '')] : splitForRead(line, names.length);
    names.forEach((n, i) => this.assign(n, lit(fields[i] ?? ''), c));
    this.setStatus(0);
  }

  private assign(name: string, value: Term, c: { pos: { line: number }; text: string }): void {
    if (name === 'IFS' || name === 'PATH') return this.refuse(c, c.text, `assigning ${name} changes how every later command runs`);
    this.writableVars().set(name, value);
  }

  // ---- redirections ----

  /** The streams after the command's redirections; undefined when one fails (the command does not run). */
  private redirect(c: Command, io: Io, redirs: Redir[]): Io | undefined {
    const r = { ...io };
    for (const x of redirs) {
      if (x.op === '<<' || x.op === '<<-') {
        if (x.fd !== 0) return this.refuse(c, c.text, 'a here-document on another descriptor than 0');
        r.stdin = this.word(x.heredoc!, c);
        continue;
      }
      if (x.op === '<<<') {
        r.stdin = concat(this.word(x.target, c), lit('\n'));
        continue;
      }
      const target = this.e.literal(this.word(x.target, c), this.loc(c), 'a redirection target');
      if (x.op === '>&' || x.op === '<&') {
        if (target === '-') return this.refuse(c, c.text, 'closing a descriptor');
        if (target === '1' || target === '2') {
          const to = target === '1' ? r.out : r.err;
          if (x.fd === 1) r.out = to;
          else if (x.fd === 2) r.err = to;
          else return this.refuse(c, c.text, `descriptor ${x.fd}`);
          continue;
        }
        if (target === '0' && x.fd === 0) continue;
        if (x.op === '>&' && x.fd === 1 && !/^[0-9]+$/.test(target)) {
          // bash `>&FILE` = `&>FILE`
          if (target !== '/dev/null') return this.refuse(c, c.text, `writing to ${target}`);
          r.out = r.err = new Sink('null');
          continue;
        }
        return this.refuse(c, c.text, `descriptor ${target}`);
      }
      if (x.op === '<') {
        if (x.fd !== 0) return this.refuse(c, c.text, `input on descriptor ${x.fd}`);
        if (target === '/dev/null') {
          r.stdin = lit('');
          continue;
        }
        const path = this.romPath(target);
        const text = path === undefined ? undefined : this.e.readFile(path);
        if (text === undefined) {
          this.write(io.err, lit(`${target}: No such file\n`), 'stderr', c);
          this.setStatus(this.opts.shell === 'dash' ? 2 : 1);
          return undefined;
        }
        r.stdin = lit(text);
        continue;
      }
      // > >> >| <> &> &>>
      if (target !== '/dev/null') return this.refuse(c, c.text, `writing to ${target} (scripts interpreted by miflash write nothing but /dev/null)`);
      const sink = new Sink('null');
      if (x.op === '&>' || x.op === '&>>') r.out = r.err = sink;
      else if (x.fd === 1) r.out = sink;
      else if (x.fd === 2) r.err = sink;
      else if (x.fd !== 0) return this.refuse(c, c.text, `descriptor ${x.fd}`);
    }
    return r;
  }

  // ---- paths ----

  /** A script path as a ROM-relative path ('' = the ROM root); undefined = outside the ROM. */
  private romPath(p: string): string | undefined {
    let parts: string[];
    if (p.startsWith('/')) {
      if (p !== ROM_ROOT && !p.startsWith(`${ROM_ROOT}/`)) return undefined;
      parts = p.slice(ROM_ROOT.length).split('/');
    } else parts = [...(this.cwd ? this.cwd.split('/') : []), ...p.split('/')];
    const out: string[] = [];
    for (const x of parts) {
      if (x === '' || x === '.') continue;
      if (x === '..') {
        if (out.length === 0) return undefined;
        out.pop();
      } else out.push(x);
    }
    return out.join('/');
  }

  /** Image arguments of fastboot calls, for the engine. */
  resolveFile(arg: string): { ok: true; file: string } | { ok: false; why: string } {
    const p = this.romPath(arg);
    if (p === undefined || p === '') return { ok: false, why: `${arg} is outside the ROM folder` };
    return { ok: true, file: p };
  }

  // ---- word expansion ----

  /** A word expanded without field splitting or globbing (assignments, case, redirections, here-documents). */
  private word(w: Word, c: Command): Term {
    return concat(...this.segments(w.parts, c, false).map((s) => s.term));
  }

  /** A word expanded into fields: expansions, field splitting, pathname expansion, empty-field removal. */
  private fields(w: Word, c: Command): Term[] {
    // Plain words (the vast majority) need no splitting and no globbing.
    if (w.parts.length === 1 && w.parts[0]!.k === 'lit' && (w.parts[0]!.quoted || !/[*?[]/.test(w.parts[0]!.v))) return [lit(w.parts[0]!.v)];
    const segs = this.segments(w.parts, c, false);
    const splittable = segs.filter((s) => s.split);
    if (splittable.every((s) => isLit(s.term))) {
      // All known: split the unquoted expansion results at IFS, as the shell does.
      const out: Array<{ text: string; quoted: boolean; glob: boolean }> = [];
      let cur: { text: string; quoted: boolean; glob: boolean } | undefined;
      const symbolic: Term[] = [];
      for (const s of segs) {
        if (!isLit(s.term)) {
          // A quoted symbolic piece joins the current field.
          symbolic.push(s.term);
          cur ??= { text: '', quoted: true, glob: false };
          cur.text += `\u0000${symbolic.length - 1}\u0000`;
          cur.quoted = true;
          continue;
        }
        const v = s.term.value;
        if (!s.split) {
          cur ??= { text: '', quoted: false, glob: false };
          cur.text += s.quoted ? v : v;
          if (s.quoted) cur.quoted = true;
          else if (/[*?[]/.test(v)) cur.glob = true;
          continue;
        }
        const pieces = v.split(/([ \t\n]+)/);
        for (const [i, piece] of pieces.entries()) {
          if (i % 2 === 1) {
            if (cur) out.push(cur);
            cur = undefined;
            continue;
          }
          if (piece === '') continue;
          cur ??= { text: '', quoted: false, glob: false };
          cur.text += piece;
          if (/[*?[]/.test(piece)) cur.glob = true;
        }
      }
      if (cur) out.push(cur);
      return out.flatMap((f) => {
        if (symbolic.length > 0 && f.text.includes('\u0000')) {
          const bits = f.text.split('\u0000');
          return [concat(...bits.map((b, i) => (i % 2 === 1 ? symbolic[Number(b)]! : lit(b))))];
        }
        if (f.glob && !f.quoted) return this.glob(f.text).map(lit);
        return [lit(f.text)];
      });
    }
    if (segs.length === 1) return this.e.split(segs[0]!.term, this.loc(c));
    return this.refuse(c, w.text, 'word splitting of a device answer inside a larger word');
  }

  private glob(pattern: string): string[] {
    const abs = pattern.startsWith('/');
    const re = globRegex(abs ? pattern : pattern, true);
    const matches = this.e
      .romFiles()
      .map((f) => (abs ? `${ROM_ROOT}/${f}` : this.cwd ? (f.startsWith(`${this.cwd}/`) ? f.slice(this.cwd.length + 1) : undefined) : f))
      .filter((f): f is string => f !== undefined && re.test(f))
      .sort();
    return matches.length > 0 ? matches : [pattern];
  }

  private pattern(w: Word, c: Command): RegExp {
    // Quoted parts match literally; unquoted parts are glob patterns.
    let src = '';
    for (const s of this.segments(w.parts, c, false)) {
      const v = this.e.literal(s.term, this.loc(c), 'a case pattern');
      src += s.quoted ? v.replace(/[\\*?[]/g, '\\$&') : v;
    }
    return globRegex(src, false);
  }

  /**
   * The pieces of a word after parameter expansion, command substitution and
   * arithmetic: each with whether it was quoted and whether it is subject to
   * field splitting (an unquoted expansion).
   */
  private segments(parts: WordPart[], c: Command, inQuotes: boolean): Array<{ term: Term; quoted: boolean; split: boolean }> {
    const out: Array<{ term: Term; quoted: boolean; split: boolean }> = [];
    for (const p of parts) {
      switch (p.k) {
        case 'lit':
          out.push({ term: lit(p.v), quoted: inQuotes || p.quoted, split: false });
          break;
        case 'dq': {
          const inner = this.segments(p.parts, c, true);
          if (inner.length === 0) out.push({ term: lit(''), quoted: true, split: false });
          // "$@" is one field per parameter; with none, no field at all.
          if (p.parts.length === 1 && p.parts[0]!.k === 'param' && p.parts[0]!.name === '@' && !p.parts[0]!.op) {
            if (this.positional.length > 1) return this.refuse(c, c.text, '"$@" with several arguments');
            if (this.positional.length === 0) break;
          }
          out.push(...inner);
          break;
        }
        case 'param':
          out.push({ term: this.param(p, c, inQuotes), quoted: inQuotes, split: !inQuotes });
          break;
        case 'cmdsub':
          out.push({ term: this.commandSubstitution(p, c), quoted: inQuotes, split: !inQuotes });
          break;
        case 'arith':
          out.push({ term: lit(String(this.arith(p.expr, c))), quoted: inQuotes, split: !inQuotes });
          break;
      }
    }
    return out;
  }

  private param(p: Extract<WordPart, { k: 'param' }>, c: Command, inQuotes: boolean): Term {
    const value = this.lookup(p.name);
    if (p.length) {
      if (value === undefined) return lit('0');
      return lit(String(this.e.literal(value, this.loc(c), `\${#${p.name}}`).length));
    }
    if (!p.op) {
      if (value === undefined) {
        if (this.nounset && !['@', '*'].includes(p.name)) {
          this.write(this.terminal.err, lit(`${p.name}: parameter not set\n`), 'stderr', c);
          throw new ShExit(2, this.loc(c), `nounset:${this.node(c)}`);
        }
        return lit('');
      }
      return value;
    }
    const colon = p.op.startsWith(':');
    const isUnsetOrNull = (): boolean => {
      if (value === undefined) return true;
      if (!colon) return false;
      if (isLit(value)) return value.value === '';
      // Does the device answer come back empty? A question the plan can carry.
      return !this.e.succeeded(this.e.tool([lit('test'), lit('-n'), value], lit(''), this.loc(c)).status, this.loc(c));
    };
    const arg = () => (p.arg ? concat(...this.segments(p.arg.parts, c, inQuotes).map((s) => s.term)) : lit(''));
    switch (p.op) {
      case '-':
      case ':-':
        return isUnsetOrNull() ? arg() : value!;
      case '=':
      case ':=':
        if (isUnsetOrNull()) {
          const v = arg();
          this.assign(p.name, v, c);
          return v;
        }
        return value!;
      case '?':
      case ':?':
        if (isUnsetOrNull()) {
          const msg = this.e.known(arg()) ? (arg() as { value: string }).value : '';
          this.write(this.terminal.err, lit(`${p.name}: ${msg || 'parameter not set'}\n`), 'stderr', c);
          throw new ShExit(2, this.loc(c), `unset:${this.node(c)}`);
        }
        return value!;
      case '+':
      case ':+':
        return isUnsetOrNull() ? lit('') : arg();
      default: {
        // # ## % %%: remove a prefix/suffix pattern.
        if (value === undefined) return lit('');
        const v = this.e.literal(value, this.loc(c), `\${${p.name}${p.op}...}`);
        const pat = this.e.literal(arg(), this.loc(c), 'a pattern');
        return lit(stripPattern(v, pat, p.op));
      }
    }
  }

  private lookup(name: string): Term | undefined {
    switch (name) {
      case '?':
        return this.status;
      case '#':
        return lit(String(this.positional.length));
      case '0':
        return lit(`${ROM_ROOT}/${this.opts.file.replace(/^.*\//, '')}`);
      case '@':
      case '*':
        return concat(...this.positional.flatMap((t, i) => (i === 0 ? [t] : [lit(' '), t])));
      case '$':
        return lit('4242');
      case '!':
        return undefined;
      case '-':
        return lit(`${this.errexit ? 'e' : ''}${this.nounset ? 'u' : ''}`);
      default:
        if (/^[0-9]+$/.test(name)) return this.positional[Number(name) - 1];
        return this.vars.get(name);
    }
  }

  private commandSubstitution(p: Extract<WordPart, { k: 'cmdsub' }>, c: Command): Term {
    const out = new Sink('buffer');
    const io: Io = { stdin: this.terminal.stdin, out, err: this.terminal.err };
    this.captures++;
    try {
      this.e.inFrame(`$${p.id}`, this.loc(c), () => this.subshell(() => this.list(p.body, io)));
    } finally {
      this.captures--;
    }
    const text = out.text();
    return isLit(text) ? lit(text.value.replace(/\n+$/, '')) : { kind: 'chomp', of: text };
  }

  private arith(w: Word, c: Command): number {
    const text = this.e.literal(this.word(w, c), this.loc(c), 'an arithmetic expression');
    try {
      return evalArith(text, (name) => {
        const v = this.lookup(name);
        if (v === undefined) return 0;
        const s = this.e.literal(v, this.loc(c), `$${name} in arithmetic`).trim();
        if (s === '') return 0;
        if (!/^-?[0-9]+$/.test(s)) throw new ArithError(`${s}: bad number`);
        return Number(s);
      });
    } catch (err) {
      if (!(err instanceof ArithError)) throw err;
      this.write(this.terminal.err, lit(`arithmetic expression: ${err.message}\n`), 'stderr', c);
      throw new ShExit(2, this.loc(c), `arith:${this.node(c)}`);
    }
  }
}

/** Does the word pass the script's own arguments on ($* / $@)? */
function hasAllArgs(w: Word): boolean {
  const scan = (parts: WordPart[]): boolean => parts.some((p) => (p.k === 'param' && (p.name === '*' || p.name === '@')) || (p.k === 'dq' && scan(p.parts)));
  return scan(w.parts);
}

function dirname(p: string): string {
  const s = p.replace(/\/+$/, '');
  if (s === '') return p.startsWith('/') ? '/' : '.';
  const i = s.lastIndexOf('/');
  if (i < 0) return '.';
  const d = s.slice(0, i).replace(/\/+$/, '');
  return d === '' ? '/' : d;
}

function basename(p: string): string {
  const s = p.replace(/\/+$/, '');
  if (s === '') return p.startsWith('/') ? '/' : '';
  return s.slice(s.lastIndexOf('/') + 1);
}

/** dash's echo escapes: \a \b \c (stop) \f \n \r \t \v \\ \0NNN. */
function echoEscapes(s: string): { text: string } {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '\\' || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const n = s[++i]!;
    const map: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };
    if (n === 'c') return { text: out };
    if (n === '0') {
      let oct = '';
      while (oct.length < 3 && /[0-7]/.test(s[i + 1] ?? '')) oct += s[++i];
      out += String.fromCharCode(parseInt(oct || '0', 8));
    } else if (map[n] !== undefined) out += map[n];
    else out += `\\${n}`;
  }
  return { text: out };
}

function splitForRead(line: string, n: number): string[] {
  const out: string[] = [];
  let rest = line.replace(/^[ \t]+/, '');
  while (out.length < n - 1 && rest !== '') {
    const m = /^([^ \t]*)[ \t]*/.exec(rest)!;
    out.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
  out.push(rest.replace(/[ \t]+$/, ''));
  return out;
}

/** A shell glob as a JavaScript regular expression (`/` not matched by wildcards when matching paths). */
function globRegex(glob: string, path: boolean): RegExp {
  let re = '';
  const any = path ? '[^/]' : '[\\s\\S]';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]!);
    else if (ch === '*') re += `${any}*`;
    else if (ch === '?') re += any;
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function stripPattern(v: string, pat: string, op: string): string {
  const re = globRegex(pat, false).source.slice(1, -1);
  if (op === '#' || op === '##') {
    const m = new RegExp(`^(${re.replace(/\*/g, op === '#' ? '*?' : '*')})`).exec(v);
    return m ? v.slice(m[1]!.length) : v;
  }
  for (let i = op === '%' ? v.length : 0; op === '%' ? i >= 0 : i <= v.length; op === '%' ? i-- : i++) {
    if (new RegExp(`^${re}$`).test(v.slice(i))) return v.slice(0, i);
  }
  return v;
}

class ArithError extends Error {}

/** Integer arithmetic of $((...)): + - * / % comparisons, && || !, parentheses, variables. */
function evalArith(src: string, variable: (name: string) => number): number {
  const toks = src.match(/\s*([0-9]+|[A-Za-z_][A-Za-z0-9_]*|\$[A-Za-z_][A-Za-z0-9_]*|<=|>=|==|!=|&&|\|\||[-+*/%()<>!])\s*/gy);
  if (!toks || toks.join('').length !== src.length) throw new ArithError(`syntax error in "${src}"`);
  const t = toks.map((x) => x.trim()).filter(Boolean);
  let i = 0;
  const peek = () => t[i];
  const next = () => t[i++];
  const bin = (ops: string[], sub: () => number, f: (a: number, op: string, b: number) => number) => (): number => {
    let a = sub();
    while (ops.includes(peek() ?? '')) a = f(a, next()!, sub());
    return a;
  };
  const primary = (): number => {
    const x = next();
    if (x === undefined) throw new ArithError('missing operand');
    if (x === '(') {
      const v = or();
      if (next() !== ')') throw new ArithError('missing ")"');
      return v;
    }
    if (x === '-') return -primary();
    if (x === '+') return primary();
    if (x === '!') return primary() === 0 ? 1 : 0;
    if (/^[0-9]+$/.test(x)) return Number(x);
    return variable(x.replace(/^\$/, ''));
  };
  const mul = bin(['*', '/', '%'], primary, (a, op, b) => {
    if (op !== '*' && b === 0) throw new ArithError('division by zero');
    return op === '*' ? a * b : op === '/' ? Math.trunc(a / b) : a % b;
  });
  const add = bin(['+', '-'], mul, (a, op, b) => (op === '+' ? a + b : a - b));
  const cmp = bin(['<', '>', '<=', '>='], add, (a, op, b) => Number(op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b));
  const eq = bin(['==', '!='], cmp, (a, op, b) => Number(op === '==' ? a === b : a !== b));
  const and = bin(['&&'], eq, (a, _op, b) => Number(a !== 0 && b !== 0));
  const or = bin(['||'], and, (a, _op, b) => Number(a !== 0 || b !== 0));
  const v = or();
  if (i < t.length) throw new ArithError(`syntax error near "${t[i]}"`);
  return v;
}

