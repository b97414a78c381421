// The evaluation engine shared by the .sh and .bat front ends. A front end
// walks its script's syntax tree and calls this API for everything that is
// not pure bookkeeping of its own language (variables, quoting, control flow):
// running a text tool, running fastboot, deciding a condition, printing,
// reading user input or a ROM file, sleeping, exiting, refusing.
//
// Values are terms (src/plan/predicate.ts). The only unknowns are the device's
// answers to read-only queries and whether a device operation succeeds. When
// a condition depends on an unknown, `decide` answers for the current path and
// the explorer (explore.ts) re-runs the front end from the start to take the
// other side too: a front end is a deterministic function of the engine's
// answers, and holds no state across runs. Device operations succeed on every
// path; where the script looks at an operation's status, the explorer runs
// the failure side once to learn what the script does then (stop = abort,
// carry on the same way = ignore, anything else is refused).
//
// Nothing here runs a program or touches a file outside the ROM: tools are
// pure functions, `fastboot` becomes plan steps, files are read through the
// ROM sandbox the caller provides.
import { BadInputError } from '../../../errors.js';
import { evalPred, MAX_TERM_BYTES, splitFields, trimIfs, type ToolBox } from '../../../plan/evaluate.js';
import { and, concat, isLit, keyOf, lit, not, queriesOf, type Pred, type Query, type Term } from '../../../plan/predicate.js';
import { FASTBOOT_VERSION_TEXT } from '../../../plan/query-output.js';
import { UnsupportedToolError } from '../tools/errors.js';
import type { ToolContext, ToolResult } from '../tools/types.js';
import { interpretFastbootArgv, type FileResolution, type OpSpec } from './fastboot-argv.js';

/** Where in the script something happens. */
export interface Loc {
  file: string;
  /** 1-based. */
  line: number;
  /** The source text of the command, for messages. */
  text: string;
}

/**
 * A construct miflash does not interpret (or a limit it hit), with file, line
 * and the construct. Thrown by front ends for whole-script problems (syntax);
 * on a single path, `Engine.refuse` records it instead (see explore.ts).
 */
export class ScriptInterpretError extends BadInputError {
  readonly file: string;
  readonly line: number;
  readonly construct: string;
  /** The source text of the command (its line). */
  readonly text: string;

  constructor(loc: Loc, construct: string, why: string, code = 'script.unsupported') {
    super(`${loc.file}:${loc.line}: ${why}: ${JSON.stringify(construct.trim())}`, {
      code,
      hint: 'miflash interprets flash scripts without running any program; pick another script with --script or report the line',
    });
    this.file = loc.file;
    this.line = loc.line;
    this.construct = construct;
    this.text = loc.text;
  }
}

/** Bounds that keep any script, however written, to a bounded amount of work. */
export interface Limits {
  /** Explored paths (each a full run of the front end). */
  maxPaths: number;
  /** Runs of the front end in all: paths plus the failure-side runs that learn each checked operation's policy. */
  maxRuns: number;
  /** Interpreter steps per run (commands, loop turns, function calls). */
  maxSteps: number;
  /** Function-call depth. */
  maxDepth: number;
  /** Size of any one value, literal or symbolic (JSON length). */
  maxTermBytes: number;
  /** Events (ops, queries, prints, decisions) per run. */
  maxEvents: number;
}

export const DEFAULT_LIMITS: Limits = { maxPaths: 512, maxRuns: 4096, maxSteps: 200_000, maxDepth: 64, maxTermBytes: MAX_TERM_BYTES, maxEvents: 20_000 };

export interface EngineOptions {
  file: string;
  tools: ToolBox;
  /** A file inside the ROM by its ROM-relative path; undefined = missing. The front end maps script paths to ROM paths. */
  readRomFile: (file: string) => string | undefined;
  /** An image argument of a fastboot call as a ROM-relative path (front-end path rules); a front end may also set it per run (setResolveFile). */
  resolveFile?: (arg: string) => FileResolution;
  /** Every file in the ROM (ROM-relative), for globs and directory tests; absent = none. */
  listRomFiles?: () => readonly string[];
  /** Which shell's builtins the text tools imitate (`[`, test, printf): dash (Debian sh) or bash. */
  shell?: 'dash' | 'bash';
  /** Lines given for the script's `read` / `set /p` (none = end of input, as `sh script </dev/null`). */
  inputs?: readonly string[];
  limits?: Partial<Limits>;
}

/** What a command leaves for the script: its output streams and exit status, possibly symbolic. */
export interface CommandResult {
  stdout: Term;
  stderr: Term;
  status: Term;
}

// ---- what one run records ----

export type PathEvent =
  | { type: 'query'; key: string; query: Query; loc: Loc; vendor: boolean }
  | { type: 'op'; key: string; ops: OpSpec[]; loc: Loc; vendor: boolean; warnings: string[] }
  | { type: 'sleep'; key: string; seconds: number; loc: Loc }
  | { type: 'print'; key: string; text: Term; stream: 'stdout' | 'stderr'; loc: Loc }
  /** A command whose status depends on the device became the script's `$?` (a check, if anything looks at it). */
  | { type: 'check'; key: string; status: Term; loc: Loc }
  /** A decision on an unknown: a predicate over query outputs, or a device operation's success (`op` set). */
  | { type: 'decide'; atom: string; pred?: Pred; op?: string; outcome: boolean; free: boolean };

export type Terminal =
  /** `exit N` (explicit) or an error exit (`set -e`); `end` = the script ran off its end. */
  | { type: 'exit'; key: string; status: number; loc: Loc }
  | { type: 'end' }
  | { type: 'refuse'; key: string; loc: Loc; construct: string; why: string };

export interface RunRecord {
  events: PathEvent[];
  terminal: Terminal;
  /** Device operations whose status the script looked at on this run. */
  consulted: string[];
}

/** What a probe learnt about an operation's failure side. */
export type ProbeResult = { kind: 'abort'; message?: string; status?: number } | { kind: 'unknown' };

/** A probe reached something it cannot decide locally (a new question); front ends let it pass like PathEnd. */
export class Inconclusive {}

/**
 * Thrown through the front end to end a run; front ends must let it pass
 * (never catch it). Not an Error: it ends every explored path, and a stack
 * trace per path would cost more than the path.
 */
export class PathEnd {
  constructor(readonly terminal: Terminal) {}
}

const OP_STATUS = '!op:';

/** The engine for one run of a front end over one path. */
export class Engine {
  readonly limits: Limits;
  private readonly events: PathEvent[] = [];
  private readonly frames: string[] = [];
  private readonly consulted = new Set<string>();
  private readonly decided = new Map<string, boolean>();
  private steps = 0;
  private inputAt = 0;
  /** Query keys by query, for reuse until the next device operation (the device answers the same). */
  private fresh = new Map<string, string>();
  private resolveFile: (arg: string) => FileResolution;

  constructor(
    private readonly opts: EngineOptions,
    /** Outcomes fixed for this run, by atom key. */
    private readonly forced: ReadonlyMap<string, boolean>,
    /** Whether unforced decisions may be flipped on another run (false on failure-analysis runs). */
    private readonly branching: boolean,
    /** Failure-analysis run: stop at the first thing the device sees after this operation failed. */
    private readonly failing?: string,
    /** Shared by the runs of one exploration: failure policies learnt by probes. */
    readonly shared: { probes: Map<string, ProbeResult> } = { probes: new Map() },
    /** A probe: no new questions may be asked (their answers would be guesses). */
    private readonly probing = false,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.resolveFile = opts.resolveFile ?? (() => ({ ok: false, why: 'no file resolver' }));
  }

  /** How this run maps fastboot image arguments to ROM paths (it may depend on the front end's current directory). */
  setResolveFile(fn: (arg: string) => FileResolution): void {
    this.resolveFile = fn;
  }

  get file(): string {
    return this.opts.file;
  }

  // ---- identity and bounds ----

  /** Counts one interpreter step; a script that loops or recurses without end hits the bound as a typed error. */
  tick(loc: Loc): void {
    if (++this.steps > this.limits.maxSteps) throw new ScriptInterpretError(loc, loc.text, `the script runs more than ${this.limits.maxSteps} commands (an endless loop?)`, 'script.limit');
  }

  /**
   * Runs `fn` inside a call or loop-iteration frame. Frames make the same
   * command in another call or iteration a different plan step.
   */
  inFrame<T>(frame: string, loc: Loc, fn: () => T): T {
    if (this.frames.length >= this.limits.maxDepth) throw new ScriptInterpretError(loc, loc.text, `calls nest deeper than ${this.limits.maxDepth}`, 'script.limit');
    this.frames.push(frame);
    try {
      return fn();
    } finally {
      this.frames.pop();
    }
  }

  /** The identity of a command in its context: the front end's node id plus the frames. */
  key(node: string): string {
    return this.frames.length === 0 ? node : `${node}@${this.frames.join('/')}`;
  }

  private record(e: PathEvent, loc: Loc): void {
    if (this.events.length >= this.limits.maxEvents) throw new ScriptInterpretError(loc, loc.text, `the script does more than ${this.limits.maxEvents} things on one path`, 'script.limit');
    this.events.push(e);
    // What the script does next after the failure is all a failure policy needs.
    if (this.failed && e.type !== 'print' && e.type !== 'check') throw new PathEnd({ type: 'end' });
  }

  private failed = false;

  private checkSize(t: Term, loc: Loc): Term {
    const n = t.kind === 'lit' ? t.value.length : keyOf(t).length;
    if (n > this.limits.maxTermBytes) throw new ScriptInterpretError(loc, loc.text, `a value grows beyond ${this.limits.maxTermBytes} bytes`, 'script.limit');
    return t;
  }

  // ---- unknowns ----

  /** The outcome of an atom on this path: forced, or `true` first (the other side is explored on another run). */
  private choose(atom: string, info: { pred?: Pred; op?: string }): boolean {
    // The same question twice on one path has one answer.
    const earlier = this.decided.get(atom);
    if (earlier !== undefined) return earlier;
    const forced = this.forced.get(atom);
    if (forced === undefined && this.probing && info.op === undefined) throw new Inconclusive();
    const outcome = forced ?? true;
    // An op's success is not branched on; the explorer runs its failure side separately.
    const free = forced === undefined && this.branching && info.op === undefined;
    this.events.push({ type: 'decide', atom, ...info, outcome, free });
    this.decided.set(atom, outcome);
    return outcome;
  }

  /** Replaces device-operation statuses by their outcome on this path (marking them consulted). */
  private settle(t: Term): Term {
    switch (t.kind) {
      case 'status':
        if (!t.query.startsWith(OP_STATUS)) return t;
        return lit(this.opSucceeded(t.query.slice(OP_STATUS.length)) ? '0' : '1');
      case 'concat':
        return concat(...t.parts.map((p) => this.settle(p)));
      case 'tool':
        return { ...t, argv: t.argv.map((a) => this.settle(a)), stdin: this.settle(t.stdin) };
      case 'chomp':
      case 'trim':
        return this.fold({ ...t, of: this.settle(t.of) });
      default:
        return t;
    }
  }

  private settlePred(p: Pred): Pred {
    switch (p.kind) {
      case 'zero':
      case 'fields':
        return { ...p, term: this.settle(p.term) };
      case 'not':
        return not(this.settlePred(p.of));
      case 'and':
      case 'or':
        return { kind: p.kind, of: p.of.map((x) => this.settlePred(x)) };
      default:
        return p;
    }
  }

  /** chomp/trim of a literal is a literal. */
  private fold(t: Term): Term {
    if ((t.kind === 'chomp' || t.kind === 'trim') && isLit(t.of)) {
      return lit(t.kind === 'chomp' ? t.of.value.replace(/\n+$/, '') : trimIfs(t.of.value));
    }
    return t;
  }

  private opSucceeded(opKey: string): boolean {
    this.consulted.add(opKey);
    const ok = this.choose(`op:${opKey}`, { op: opKey });
    if (!ok && opKey === this.failing) this.failed = true;
    return ok;
  }

  /**
   * The truth of a predicate on this path. Literal predicates are evaluated
   * now; one that reads a device answer is an atom decided per path
   * (`not`/`and`/`or` are decided part by part, short-circuiting like the shell).
   */
  decide(p: Pred, loc: Loc): boolean {
    const q = this.settlePred(p);
    switch (q.kind) {
      case 'not':
        return !this.decide(q.of, loc);
      case 'and':
        return q.of.every((x) => this.decide(x, loc));
      case 'or':
        return q.of.some((x) => this.decide(x, loc));
      default:
        break;
    }
    if (isConcrete(q)) return this.evalNow(() => evalPred(q, this.literalContext()), loc);
    const direct = statusTest(q);
    if (direct) return this.decide(direct, loc);
    return this.choose(keyOf(q), { pred: q });
  }

  /** Did a command with this status succeed (status 0)? */
  succeeded(status: Term, loc: Loc): boolean {
    return this.decide({ kind: 'zero', term: status }, loc);
  }

  /** A term the script needs as a plain string here (a partition name, a loop count, ...): refused on this path when it depends on the device. */
  literal(t: Term, loc: Loc, what: string): string {
    const s = this.settle(t);
    if (s.kind === 'lit') return s.value;
    return this.refuse(loc, loc.text, `${what} depends on the device's answer, which a plan cannot carry`);
  }

  /** Whether the term is known without the device (device-op statuses are settled first). */
  known(t: Term): t is { kind: 'lit'; value: string } {
    return isLit(this.settle(t));
  }

  /**
   * Field splitting of an unquoted expansion (default IFS). A device-dependent
   * value is assumed to be empty or one word — two plan paths, each recorded as
   * a predicate; a value with several words ends the path with a refusal, so a
   * device whose answer breaks the assumption is refused at run time.
   */
  split(t: Term, loc: Loc): Term[] {
    const s = this.settle(t);
    if (s.kind === 'lit') return splitFields(s.value).map(lit);
    // An exit status is always one decimal number: one field, itself.
    if (s.kind === 'status' || (s.kind === 'tool' && s.result === 'status')) return [s];
    if (this.decide({ kind: 'fields', term: s, count: 0 }, loc)) return [];
    if (this.decide({ kind: 'fields', term: s, count: 1 }, loc)) return [this.fold({ kind: 'trim', of: s })];
    return this.refuse(loc, loc.text, 'an unquoted expansion of a device answer with several words (word splitting a device answer)');
  }

  // ---- commands ----

  /**
   * A pure text tool (grep, awk, [, ...). With literal inputs it runs now; with
   * a device-dependent input or argument its results are terms the plan
   * evaluates at run time.
   */
  tool(argv: Term[], stdin: Term, loc: Loc): CommandResult {
    const args = argv.map((a) => this.checkSize(this.settle(a), loc));
    const input = this.checkSize(this.settle(stdin), loc);
    const name = args[0];
    if (!name || name.kind !== 'lit') return this.refuse(loc, loc.text, 'a command name that depends on the device');
    if (!this.opts.tools.has(name.value)) return this.refuse(loc, name.value, `${name.value} is not a command miflash interprets`);
    if (args.every(isLit) && isLit(input)) {
      const words = args.map((a) => (a as { value: string }).value);
      const r = this.evalNow(() => runMemo(this.opts, this.opts.tools, words, input.value, this.toolContext()), loc);
      return { stdout: this.checkSize(lit(r.stdout), loc), stderr: lit(r.stderr), status: lit(String(r.status)) };
    }
    const app = (result: 'stdout' | 'stderr' | 'status'): Term => ({ kind: 'tool', argv: args, stdin: input, result });
    return { stdout: app('stdout'), stderr: app('stderr'), status: app('status') };
  }

  /**
   * `fastboot ARGS`. Read-only invocations become queries (their output is a
   * term the script may inspect); the rest become device operations whose
   * status is decided per path. `vendor` = the call passes the script's own
   * arguments (`$*`, `%*`): Xiaomi scripts mark their own lines so.
   */
  fastboot(argv: Term[], opts: { vendor: boolean; node: string }, loc: Loc): CommandResult {
    const words = argv.map((a, i) => this.literal(a, loc, `fastboot argument ${i + 1}`));
    const meaning = interpretFastbootArgv(words, this.resolveFile);
    if (meaning.kind === 'refuse') return this.refuse(loc, loc.text, meaning.why);
    const key = this.key(opts.node);
    if (meaning.kind === 'query') {
      const q = meaning.query;
      // The client's own version is known without a device.
      if (q.kind === 'version') return { stdout: lit(FASTBOOT_VERSION_TEXT), stderr: lit(''), status: lit('0') };
      const qk = JSON.stringify(q);
      let id = this.fresh.get(qk);
      if (id === undefined) {
        id = `k:${key}`;
        this.fresh.set(qk, id);
        this.record({ type: 'query', key, query: q, loc, vendor: opts.vendor }, loc);
      }
      return { stdout: { kind: 'output', query: id, stream: 'stdout' }, stderr: { kind: 'output', query: id, stream: 'stderr' }, status: { kind: 'status', query: id } };
    }
    this.fresh = new Map(); // the device may answer differently after an operation
    this.record({ type: 'op', key, ops: meaning.ops, loc, vendor: opts.vendor, warnings: meaning.warnings }, loc);
    return { stdout: lit(''), stderr: lit(''), status: { kind: 'status', query: `${OP_STATUS}${key}` } };
  }

  /** `a 2>&1`: the query's streams merged in write order, when the command is a query; otherwise stdout then stderr. */
  merged(r: CommandResult): Term {
    if (r.stdout.kind === 'output' && r.stderr.kind === 'output' && r.stdout.query === r.stderr.query) return { kind: 'output', query: r.stdout.query, stream: 'both' };
    return concat(r.stdout, r.stderr);
  }

  /** Script output (echo, printf, a tool's stdout reaching the terminal). Literal output on the main path becomes plan notes and gate messages. */
  print(text: Term, stream: 'stdout' | 'stderr', loc: Loc, node: string): void {
    const t = this.checkSize(this.settle(text), loc);
    if (t.kind === 'lit' && t.value === '') return;
    this.record({ type: 'print', key: this.key(node), text: t, stream, loc }, loc);
  }

  /**
   * A command at statement level finished with this status. When it depends on
   * the device and nothing on the path ever looks at it, the plan reports a
   * check the script ignores (a warning; a lock never follows a warning).
   */
  noteStatus(status: Term, loc: Loc, node: string): void {
    // A device operation's status is not looked at by being $?; only what the script then does with it counts.
    if (status.kind === 'lit' || (status.kind === 'status' && status.query.startsWith(OP_STATUS))) return;
    const qs = queriesOf(status);
    if (qs.size === 0 || [...qs].some((q) => q.startsWith(OP_STATUS))) return;
    this.record({ type: 'check', key: this.key(node), status, loc }, loc);
  }

  /** The next input line for `read` (without its newline), or undefined at end of input. */
  input(): string | undefined {
    const inputs = this.opts.inputs ?? [];
    return this.inputAt < inputs.length ? inputs[this.inputAt++] : undefined;
  }

  /** A ROM file by ROM-relative path (undefined = missing). */
  readFile(file: string): string | undefined {
    return this.opts.readRomFile(file);
  }

  /** Every file of the ROM (ROM-relative paths). */
  romFiles(): readonly string[] {
    return this.opts.listRomFiles?.() ?? [];
  }

  /** The context the text tools run with (also recorded for run time through the plan's shell). */
  toolContext(): ToolContext {
    // Tools get paths as the script wrote them; the front end's rules map them into the ROM (or refuse them).
    const readFile = (p: string) => {
      const r = this.resolveFile(p);
      return r.ok ? this.opts.readRomFile(r.file) : undefined;
    };
    const ctx: ToolContext & { shell?: 'dash' | 'bash' } = { readFile, timeZone: 'UTC', ...(this.opts.shell ? { shell: this.opts.shell } : {}) };
    return ctx;
  }

  sleep(seconds: number, loc: Loc, node: string): void {
    this.record({ type: 'sleep', key: this.key(node), seconds, loc }, loc);
  }

  /** Ends this path: the script exits with `status` (explicitly, or by `set -e`). */
  exit(status: number, loc: Loc, node: string): never {
    throw new PathEnd({ type: 'exit', key: this.key(node), status, loc });
  }

  /**
   * Ends this path with a refusal: a construct miflash does not interpret, or
   * a device answer outside what the plan assumed. In the plan it becomes a
   * blocking step reached under this path's conditions.
   */
  refuse(loc: Loc, construct: string, why: string): never {
    throw new PathEnd({ type: 'refuse', key: this.key(`refuse:${loc.line}`), loc, construct, why });
  }

  /** Runs a tool-like computation now, turning the tools' unsupported-construct errors into refusals at this line. */
  private evalNow<T>(fn: () => T, loc: Loc): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof UnsupportedToolError) return this.refuse(loc, loc.text, err.message);
      throw err;
    }
  }

  private literalContext() {
    return {
      printed: () => undefined,
      tools: this.opts.tools,
      toolContext: this.toolContext(),
    };
  }

  // ---- probes: a front end's cheap look at an operation's failure side ----

  /** Event count, to find the operations a statement performed. */
  mark(): number {
    return this.events.length;
  }

  /** Operations recorded since `mark` whose failure side no probe has looked at yet. */
  unprobedOpsSince(mark: number): string[] {
    if (this.probing || this.failing !== undefined) return [];
    const out: string[] = [];
    for (const e of this.events.slice(mark)) if (e.type === 'op' && !this.shared.probes.has(e.key)) out.push(e.key);
    return out;
  }

  /**
   * An engine for re-running part of this path with operation `opKey`
   * failing: every question already answered on this path keeps its answer,
   * a new one makes the probe inconclusive, and the first thing the device
   * would see after the failure ends it.
   */
  probe(opKey: string): Engine {
    const forced = new Map(this.decided);
    forced.set(`op:${opKey}`, false);
    const child = new Engine(this.opts, forced, false, opKey, this.shared, true);
    child.frames.push(...this.frames);
    child.fresh = new Map(this.fresh);
    child.resolveFile = this.resolveFile;
    return child;
  }

  /** A probe's verdict from how it ended; the front end calls it with the probe's own signal. */
  concludeProbe(opKey: string, end: { exit?: number; refused?: boolean }): void {
    if (!this.probing || opKey !== this.failing) throw new Error('internal: not a probe');
    const parent = this.shared.probes;
    if (!this.failed) return void parent.set(opKey, { kind: 'unknown' });
    if (end.exit === undefined && !end.refused) return void parent.set(opKey, { kind: 'unknown' });
    const at = this.events.findIndex((e) => e.type === 'op' && e.key === opKey);
    const message = this.events
      .slice(at + 1)
      .flatMap((e) => (e.type === 'print' && e.text.kind === 'lit' ? [e.text.value] : []))
      .join('')
      .trim();
    parent.set(opKey, { kind: 'abort', ...(message ? { message } : {}), ...(end.exit !== undefined ? { status: end.exit } : {}) });
  }

  /** The record of this run (explore.ts). */
  finish(terminal: Terminal): RunRecord {
    return { events: this.events, terminal, consulted: [...this.consulted] };
  }
}

/**
 * Literal tool runs, remembered per exploration (per options object: the same
 * ROM): tools are pure, and every path and failure run repeats the same ones.
 */
const memos = new WeakMap<object, Map<string, ToolResult>>();
const MEMO_MAX = 4096;

function runMemo(owner: object, tools: ToolBox, argv: string[], stdin: string, ctx: ToolContext): ToolResult {
  if (stdin.length > 4096) return tools.run(argv, stdin, ctx);
  let memo = memos.get(owner);
  if (!memo) memos.set(owner, (memo = new Map()));
  const key = `${(ctx as { shell?: string }).shell ?? ''}\u0001${argv.join('\u0000')}\u0001${stdin}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const r = tools.run(argv, stdin, ctx);
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(key, r);
  return r;
}

/**
 * `[ $? -ne 0 ]` on a symbolic status S is exactly "S is not 0" (statuses are
 * decimal integers): decide that instead, so plans read as the command checked.
 */
function statusTest(p: Pred): Pred | undefined {
  if (p.kind !== 'zero' || p.term.kind !== 'tool' || p.term.result !== 'status') return undefined;
  const argv = p.term.argv;
  const name = argv[0]?.kind === 'lit' ? argv[0].value : '';
  const words = name === '[' && argv.at(-1)?.kind === 'lit' && (argv.at(-1) as { value: string }).value === ']' ? argv.slice(1, -1) : name === 'test' ? argv.slice(1) : undefined;
  if (!words || words.length !== 3) return undefined;
  const [a, op, b] = words as [Term, Term, Term];
  const isStatus = (t: Term) => t.kind === 'status' || (t.kind === 'tool' && t.result === 'status');
  const zeroLit = (t: Term) => t.kind === 'lit' && t.value === '0';
  if (op.kind !== 'lit') return undefined;
  const [s, z] = isStatus(a) && zeroLit(b) ? [a, b] : isStatus(b) && zeroLit(a) ? [b, a] : [undefined, undefined];
  if (!s || !z) return undefined;
  const eq = op.value === '-eq' || op.value === '=';
  const ne = op.value === '-ne' || op.value === '!=';
  if (!eq && !ne) return undefined;
  const zero: Pred = { kind: 'zero', term: s };
  return eq ? zero : { kind: 'not', of: zero };
}

/** A predicate with no query in it (device-op statuses already settled) can be evaluated now. */
function isConcrete(p: Pred): boolean {
  const term = (t: Term): boolean => {
    switch (t.kind) {
      case 'lit':
        return true;
      case 'output':
      case 'status':
        return false;
      case 'concat':
        return t.parts.every(term);
      case 'tool':
        return t.argv.every(term) && term(t.stdin);
      case 'chomp':
      case 'trim':
        return term(t.of);
    }
  };
  switch (p.kind) {
    case 'zero':
    case 'fields':
      return term(p.term);
    case 'rom-file':
      return false;
    case 'not':
      return isConcrete(p.of);
    case 'and':
    case 'or':
      return p.of.every(isConcrete);
  }
}

export { and, concat, lit, not };

/** Where a stream goes: the terminal, /dev/null, or a buffer (pipe, command substitution). */
export class Sink {
  readonly parts: Term[] = [];
  constructor(readonly kind: 'stdout' | 'stderr' | 'null' | 'buffer') {}
  text(): Term {
    return concat(...this.parts);
  }
}

export interface Io {
  stdin: Term;
  out: Sink;
  err: Sink;
}
