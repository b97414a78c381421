// Explores every path of a script: runs the front end again and again with
// the engine answering each unknown one way or the other (depth first, each
// path once), and once more per checked device operation with that operation
// failing, to learn the script's failure policy for it.
import { Engine, PathEnd, ScriptInterpretError, type EngineOptions, type Loc, type PathEvent, type RunRecord } from './engine.js';

/** A front end: interprets the whole script against the engine. Must be deterministic and must not catch PathEnd. */
export type Program = (engine: Engine) => void;

export type FailurePolicy =
  /** The script stops (exit or refusal) before touching the device again; its output is the message. */
  | { kind: 'abort'; message?: string; status?: number }
  /** The script carries on exactly as after a success. */
  | { kind: 'ignore' }
  /** The script does something else after the failure: miflash cannot follow it. */
  | { kind: 'diverge'; loc: Loc; detail: string };

export interface Exploration {
  paths: RunRecord[];
  /** Failure policy of each device operation whose status the script looks at (by op key). */
  policies: Map<string, FailurePolicy>;
}

function runOnce(program: Program, opts: EngineOptions, forced: ReadonlyMap<string, boolean>, branching: boolean, failing: string | undefined, shared: Engine['shared']): RunRecord {
  const engine = new Engine(opts, forced, branching, failing, shared);
  try {
    program(engine);
  } catch (err) {
    if (err instanceof PathEnd) return engine.finish(err.terminal);
    throw err;
  }
  return engine.finish({ type: 'end' });
}

export function explore(program: Program, opts: EngineOptions): Exploration {
  const probe = new Engine(opts, new Map(), false);
  const maxPaths = probe.limits.maxPaths;
  const maxRuns = probe.limits.maxRuns;
  let runs = 0;
  const tooMany = (run: RunRecord): never => {
    const loc = firstLoc(run) ?? { file: opts.file, line: 0, text: '' };
    throw new ScriptInterpretError(loc, loc.text, `the script needs more than ${maxRuns} runs to explore its device checks and failure branches`, 'script.limit');
  };
  const shared: Engine['shared'] = { probes: new Map() };
  const paths: RunRecord[] = [];
  const policies = new Map<string, FailurePolicy>();
  const pending: Array<Map<string, boolean>> = [new Map()];
  while (pending.length > 0) {
    const forced = pending.pop()!;
    const run = runOnce(program, opts, forced, true, undefined, shared);
    if (++runs > maxRuns) tooMany(run);
    paths.push(run);
    if (paths.length > maxPaths) {
      const loc = firstLoc(run) ?? { file: opts.file, line: 0, text: '' };
      throw new ScriptInterpretError(loc, loc.text, `the script has more than ${maxPaths} paths through its device checks`, 'script.limit');
    }
    // Siblings: for each free decision, the same earlier decisions and this one flipped.
    const decisions = run.events.filter((e): e is Extract<PathEvent, { type: 'decide' }> => e.type === 'decide');
    const siblings: Array<Map<string, boolean>> = [];
    const prefix = new Map<string, boolean>();
    for (const d of decisions) {
      if (d.free) {
        const s = new Map(prefix);
        s.set(d.atom, !d.outcome);
        siblings.push(s);
      }
      prefix.set(d.atom, d.outcome);
    }
    // Depth first, earliest decision explored last: paths come out in script order.
    pending.push(...siblings);
    for (const op of run.consulted) {
      if (policies.has(op)) continue;
      // A front end's probe already saw the script stop after this operation failed.
      const probed = shared.probes.get(op);
      if (probed?.kind === 'abort') {
        policies.set(op, probed);
        continue;
      }
      const f = new Map(prefix);
      f.set(`op:${op}`, false);
      if (++runs > maxRuns) tooMany(run);
      policies.set(op, classify(run, runOnce(program, opts, f, false, op, shared), op));
    }
  }
  return { paths, policies };
}

function firstLoc(run: RunRecord): Loc | undefined {
  for (const e of run.events) if ('loc' in e) return e.loc;
  return undefined;
}

/** What the device sees after op `key`, and how the run ends. */
function after(run: RunRecord, key: string): { seen: string[]; prints: string[]; end: string } {
  const at = run.events.findIndex((e) => e.type === 'op' && e.key === key);
  const seen: string[] = [];
  const prints: string[] = [];
  for (const e of run.events.slice(at + 1)) {
    if (e.type === 'op' || e.type === 'query' || e.type === 'sleep') seen.push(`${e.type} ${e.key}`);
    else if (e.type === 'print' && seen.length === 0 && e.text.kind === 'lit') prints.push(e.text.value);
  }
  const t = run.terminal;
  const end = t.type === 'exit' ? `exit ${t.status}` : t.type === 'refuse' ? `refuse ${t.key}` : 'end';
  return { seen, prints, end };
}

function classify(ok: RunRecord, failed: RunRecord, key: string): FailurePolicy {
  const a = after(ok, key);
  const b = after(failed, key);
  const t = failed.terminal;
  if (b.seen.length === 0 && (t.type === 'exit' || t.type === 'refuse')) {
    const message = b.prints.join('').trim();
    return { kind: 'abort', ...(message ? { message } : {}), ...(t.type === 'exit' ? { status: t.status } : {}) };
  }
  // The failure run stops at the first thing the device sees next: the same as after a success = carry on.
  if (b.seen.length > 0 ? a.seen[0] === b.seen[0] : a.seen.length === 0 && a.end === b.end) return { kind: 'ignore' };
  const op = ok.events.find((e) => e.type === 'op' && e.key === key) as Extract<PathEvent, { type: 'op' }>;
  const next = failed.events.slice(failed.events.findIndex((e) => e.type === 'op' && e.key === key) + 1).find((e) => e.type === 'op' || e.type === 'query');
  const detail = next && 'loc' in next ? `line ${next.loc.line}: ${next.loc.text.trim()}` : b.end;
  return { kind: 'diverge', loc: op.loc, detail };
}
