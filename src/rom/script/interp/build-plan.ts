// Explored paths -> plan steps. Every query, device operation, sleep, note,
// exit and refusal is a node identified by where it happens in the script
// (front-end node id plus call/loop frames); nodes are merged across paths and
// put in an order every path agrees with. Each step carries the predicate
// under which it runs: the disjunction of the decisions that led to it on each
// path, simplified, taking as "don't care" the paths that stopped at an
// earlier exit or refusal (the run has ended there, whatever the step says).
import { and, mapQueries, not, or, queriesOf, type Pred, type Term } from '../../../plan/predicate.js';
import { FlashPlanSchema, type PlanStep } from '../../../plan/schema.js';
import { uncheckedPolicy } from '../common.js';
import { ScriptInterpretError, type Loc, type PathEvent, type RunRecord, type Terminal } from './engine.js';
import type { Exploration } from './explore.js';

export interface BuiltScript {
  steps: PlanStep[];
  warnings: string[];
  /** 'xiaomi' when any fastboot call passes the script's own arguments (`$*` / `%*`). */
  family: 'xiaomi' | 'google';
}

type Conj = Map<string, boolean>;

type Node =
  | { kind: 'query'; key: string; ev: Extract<PathEvent, { type: 'query' }> }
  | { kind: 'op'; key: string; ev: Extract<PathEvent, { type: 'op' }> }
  | { kind: 'sleep'; key: string; ev: Extract<PathEvent, { type: 'sleep' }> }
  | { kind: 'note'; key: string; text: string; loc: Loc }
  | { kind: 'exit'; key: string; status: number; message?: string; loc: Loc }
  | { kind: 'refuse'; key: string; construct: string; why: string; loc: Loc }
  | { kind: 'ignored'; key: string; status: Term; loc: Loc };

interface Occurrence {
  node: string;
  /** Decisions made before it on this path. */
  conj: Conj;
}

/** Prints since the last decision or device event before the end of a path: the message of an exit. */
function exitMessage(events: PathEvent[]): { text?: string; keys: Set<string> } {
  const keys = new Set<string>();
  const parts: string[] = [];
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.type !== 'print') break;
    if (e.text.kind !== 'lit') continue;
    parts.unshift(e.text.value);
    keys.add(e.key);
  }
  const text = parts.join('').trim();
  return { ...(text ? { text } : {}), keys };
}

/** One path as nodes with the decisions before each. */
function walk(run: RunRecord, nodes: Map<string, Node>, atoms: Map<string, Pred>, lookedAt: ReadonlySet<string>): { occ: Occurrence[]; full: Conj } {
  const conj: Conj = new Map();
  const occ: Occurrence[] = [];
  const message = run.terminal.type === 'exit' && run.terminal.status !== 0 ? exitMessage(run.events) : { keys: new Set<string>() };
  const add = (n: Node) => {
    if (!nodes.has(n.key)) nodes.set(n.key, n);
    occ.push({ node: n.key, conj: new Map(conj) });
  };
  for (const e of run.events) {
    switch (e.type) {
      case 'decide':
        if (e.op !== undefined) break; // device operations succeed on main paths
        conj.set(e.atom, e.outcome);
        if (e.pred) atoms.set(e.atom, e.pred);
        break;
      case 'query':
        add({ kind: 'query', key: `q ${e.key}`, ev: e });
        break;
      case 'op':
        add({ kind: 'op', key: `o ${e.key}`, ev: e });
        break;
      case 'sleep':
        add({ kind: 'sleep', key: `s ${e.key}`, ev: e });
        break;
      case 'check':
        // Looked at later on some path? Then it is a gate or a condition, not an ignored check. (On a path that
        // never looks, "ignored" could only be said under conditions read after the check: cmd's
        // `B && if %errorlevel% ...` reads A's status, expanded before B runs, only when B succeeds.)
        if (!lookedAt.has(e.key)) add({ kind: 'ignored', key: `i ${e.key}`, status: e.status, loc: e.loc });
        break;
      case 'print':
        if (e.text.kind === 'lit' && e.stream === 'stdout' && !message.keys.has(e.key)) {
          const text = e.text.value.replace(/\n$/, '');
          if (text.trim() !== '') add({ kind: 'note', key: `n ${e.key} ${text}`, text, loc: e.loc });
        }
        break;
    }
  }
  const t: Terminal = run.terminal;
  if (t.type === 'exit') add({ kind: 'exit', key: `x ${t.key} ${t.status} ${message.text ?? ''}`, status: t.status, ...(message.text ? { message: message.text } : {}), loc: t.loc });
  else if (t.type === 'refuse') add({ kind: 'refuse', key: `r ${t.key} ${t.why}`, construct: t.construct, why: t.why, loc: t.loc });
  return { occ, full: conj };
}

/**
 * An order of the nodes every path agrees with; refused when two paths
 * disagree. Ties are broken by script order: a node first seen on a later
 * path is placed right after its predecessor on that path.
 */
function order(paths: Occurrence[][], nodes: Map<string, Node>): string[] {
  const seq: string[] = [];
  const succ = new Map<string, Set<string>>();
  const indeg = new Map<string, number>();
  for (const p of paths) {
    let prev: string | undefined;
    for (const o of p) {
      if (!seq.includes(o.node)) {
        let at = prev === undefined ? 0 : seq.indexOf(prev) + 1;
        // Exits and refusals met earlier stay first: checks read best before the steps they guard.
        while (at < seq.length && isStop(nodes.get(seq[at]!)!)) at++;
        seq.splice(at, 0, o.node);
      }
      if (prev !== undefined) {
        const s = succ.get(prev) ?? new Set<string>();
        if (!s.has(o.node)) {
          s.add(o.node);
          indeg.set(o.node, (indeg.get(o.node) ?? 0) + 1);
        }
        succ.set(prev, s);
      }
      prev = o.node;
    }
  }
  const rank = new Map(seq.map((k, i) => [k, i]));
  const ready = seq.filter((k) => !indeg.get(k));
  const out: string[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => rank.get(a)! - rank.get(b)!);
    const k = ready.shift()!;
    out.push(k);
    for (const n of succ.get(k) ?? []) {
      const d = indeg.get(n)! - 1;
      indeg.set(n, d);
      if (d === 0) ready.push(n);
    }
  }
  if (out.length < seq.length) {
    const stuck = seq.find((k) => !out.includes(k))!;
    const loc = locOf(nodes.get(stuck)!);
    throw new ScriptInterpretError(loc, loc.text, 'the script sends its device commands in a different order depending on the device; a plan cannot follow that', 'script.order');
  }
  return out;
}

function isStop(n: Node): boolean {
  return n.kind === 'exit' || n.kind === 'refuse';
}

function locOf(n: Node): Loc {
  return 'ev' in n ? n.ev.loc : n.loc;
}

// ---- predicates from the decision tree ----

/**
 * The paths as a decision tree: replaying the same decisions asks the same
 * next question, so paths that share a prefix share the tree above it.
 */
interface Tree {
  atom?: string;
  yes?: Tree;
  no?: Tree;
  /** Paths ending here (index into the paths). */
  leaves: number[];
}

function decisionTree(paths: RunRecord[]): Tree {
  const root: Tree = { leaves: [] };
  paths.forEach((r, i) => {
    let t = root;
    for (const e of r.events) {
      if (e.type !== 'decide' || e.op !== undefined) continue;
      if (t.atom === undefined) t.atom = e.atom;
      else if (t.atom !== e.atom) throw new Error('internal: paths disagree on the next question');
      const side = e.outcome ? 'yes' : 'no';
      t = t[side] ??= { leaves: [] };
    }
    t.leaves.push(i);
  });
  return root;
}

type Leaf = 'on' | 'off' | 'dc';
type Result = Pred | 'dc';
const T: Pred = { kind: 'and', of: [] };
const F: Pred = { kind: 'or', of: [] };
const isT = (p: Result) => p !== 'dc' && p.kind === 'and' && p.of.length === 0;
const isF = (p: Result) => p !== 'dc' && p.kind === 'or' && p.of.length === 0;

/**
 * The condition under which a path is "on", over the tree: a subtree with
 * only on (or don't-care) leaves is true, only off is false; otherwise the
 * root's atom splits it. Don't-care subtrees take whatever the other side says.
 */
function treePred(t: Tree, leaf: (i: number) => Leaf, atoms: Map<string, Pred>): Result {
  const here = t.leaves.map(leaf);
  const yes = t.yes ? treePred(t.yes, leaf, atoms) : 'dc';
  const no = t.no ? treePred(t.no, leaf, atoms) : 'dc';
  const own: Result = here.includes('on') && here.includes('off') ? T : here.includes('on') ? T : here.includes('off') ? F : 'dc';
  if (t.atom === undefined) return own;
  let r: Result;
  const a = atoms.get(t.atom)!;
  if (yes === 'dc') r = no;
  else if (no === 'dc') r = yes;
  else if (JSON.stringify(yes) === JSON.stringify(no)) r = yes;
  else if (isT(yes) && isF(no)) r = a;
  else if (isF(yes) && isT(no)) r = not(a);
  else if (isT(yes)) r = or(a, no);
  else if (isT(no)) r = or(not(a), yes);
  else if (isF(yes)) r = and(not(a), no);
  else if (isF(no)) r = and(a, yes);
  else r = or(and(a, yes), and(not(a), no));
  // Leaves at an inner node (a path that stopped asking here) join their verdict.
  if (own === 'dc' || r === 'dc') return own === 'dc' ? r : own;
  return JSON.stringify(own) === JSON.stringify(r) ? r : isT(own) ? or(r, T) : r;
}

// ---- query ids ----

/** Plan order numbering of query ids (mapQueries walks every term and predicate). */
function renameQueries<T extends Term | Pred>(x: T, ids: Map<string, string>): T {
  return mapQueries(x, (id) => ids.get(id) ?? id);
}

/** Turns an exploration into plan steps. */
export function buildPlan(x: Exploration, file: string): BuiltScript {
  const nodes = new Map<string, Node>();
  const atoms = new Map<string, Pred>();
  const lookedAt = new Set<string>();
  for (const run of x.paths) {
    run.events.forEach((e, i) => {
      if (e.type !== 'check') return;
      const t = JSON.stringify(e.status);
      if (run.events.slice(i + 1).some((d) => d.type === 'decide' && d.pred !== undefined && JSON.stringify(d.pred).includes(t))) lookedAt.add(e.key);
    });
  }
  const walked = x.paths.map((r) => walk(r, nodes, atoms, lookedAt));
  const tree = decisionTree(x.paths);
  // A script none of whose paths gets past an unsupported construct is refused outright.
  if (x.paths.length > 0 && x.paths.every((r) => r.terminal.type === 'refuse')) {
    const t = x.paths[0]!.terminal as Extract<Terminal, { type: 'refuse' }>;
    throw new ScriptInterpretError(t.loc, t.construct, t.why);
  }
  const ordered = order(
    walked.map((w) => w.occ),
    nodes,
  );
  // An `exit 0` after which nothing else can happen is just the end of the script.
  const last = new Set<string>();
  for (let i = ordered.length - 1; i >= 0; i--) {
    const n = nodes.get(ordered[i]!)!;
    if (n.kind === 'exit' && n.status === 0) last.add(n.key);
    else break;
  }
  const position = new Map(ordered.map((k, i) => [k, i]));

  const warnings: string[] = [];
  const vendorCalls = [...nodes.values()].some((n) => (n.kind === 'op' || n.kind === 'query') && n.ev.vendor);
  const family = vendorCalls ? 'xiaomi' : 'google';
  const queryIds = new Map<string, string>();
  const steps: PlanStep[] = [];
  const foreignLines = new Set<number>();

  for (const key of ordered) {
    if (last.has(key)) continue;
    const n = nodes.get(key)!;
    const at = position.get(key)!;
    const leaf = (i: number): Leaf => {
      const w = walked[i]!;
      if (w.occ.some((y) => y.node === key)) return 'on';
      const end = w.occ[w.occ.length - 1];
      const endNode = end ? nodes.get(end.node) : undefined;
      // A path that already stopped at an earlier exit or refusal never gets here, whatever the condition says.
      if (endNode && (endNode.kind === 'exit' || endNode.kind === 'refuse') && position.get(endNode.key)! < at && !last.has(endNode.key)) return 'dc';
      return 'off';
    };
    const p = treePred(tree, leaf, atoms);
    const when = p === 'dc' || isT(p) ? undefined : p;
    const cond = when ? { when: renameQueries(when, queryIds) } : {};
    const line = locOf(n).line;
    switch (n.kind) {
      case 'query': {
        const id = `q${queryIds.size + 1}`;
        queryIds.set(`k:${n.ev.key}`, id);
        steps.push({ kind: 'query', line, onFailure: 'abort', id, query: n.ev.query, ...cond, ...(family === 'xiaomi' && !n.ev.vendor ? { foreign: true } : {}) });
        break;
      }
      case 'op': {
        const policy = x.policies.get(n.ev.key);
        if (policy?.kind === 'diverge') {
          throw new ScriptInterpretError(
            policy.loc,
            policy.loc.text,
            `when this command fails the script goes on differently (${policy.detail}); miflash follows scripts that stop or carry on unchanged after a failure`,
            'script.failure-branch',
          );
        }
        for (const w of n.ev.warnings) warnings.push(`line ${line}: ${w}`);
        const foreign = family === 'xiaomi' && !n.ev.vendor;
        if (foreign) foreignLines.add(line);
        for (const op of n.ev.ops) {
          const fail =
            policy?.kind === 'abort'
              ? { onFailure: 'abort' as const, ...(policy.message !== undefined ? { message: policy.message } : {}) }
              : uncheckedPolicy(op.kind);
          steps.push({ ...op, line, ...fail, ...cond, ...(foreign ? { foreign: true } : {}) } as PlanStep);
          // The update zip's android-info.txt requirements (read when the plan is made for a ROM).
          if (op.kind === 'update') steps.push({ kind: 'gate.android-info', line, onFailure: 'abort', file: op.file, requirements: null, ...cond });
        }
        break;
      }
      case 'sleep':
        steps.push({ kind: 'sleep', line, onFailure: 'ignore', seconds: n.ev.seconds, ...cond });
        break;
      case 'note':
        steps.push({ kind: 'note', line, onFailure: 'ignore', text: n.text, ...cond });
        break;
      case 'exit':
        steps.push({ kind: 'exit', line, onFailure: 'abort', status: n.status, ...(n.message ? { message: n.message } : {}), ...cond });
        break;
      case 'refuse':
        steps.push({ kind: 'gate.unknown', line, onFailure: 'abort', text: n.loc.text.trim() || n.construct, reason: n.why, ...cond });
        break;
      case 'ignored': {
        // The check fails when its status is not 0; the script goes on regardless.
        const fails: Pred = { kind: 'not', of: { kind: 'zero', term: renameQueries(n.status, queryIds) } };
        const w = cond.when ? { kind: 'and' as const, of: [cond.when, fails] } : fails;
        steps.push({ kind: 'exit', line, onFailure: 'ignore', status: 1, message: `the script checks \`${n.loc.text.trim()}\` but ignores the result`, when: w });
        warnings.push(`line ${line}: the script runs a check but ignores its result; miflash reports it without stopping`);
        break;
      }
    }
  }
  if (foreignLines.size > 0) {
    warnings.push(`lines ${[...foreignLines].join(', ')}: fastboot calls without $*/%* are not vendor content; miflash refuses them unless you opt in`);
  }
  // Every predicate must read only queries asked before it.
  for (const [i, s] of steps.entries()) {
    if (!s.when) continue;
    for (const q of queriesOf(s.when)) {
      const at = steps.findIndex((t) => t.kind === 'query' && t.id === q);
      if (at < 0 || at >= i) throw new Error(`internal: step ${i} reads ${q} before it is asked`);
    }
  }
  for (const s of steps) FlashPlanSchema.shape.steps.element.parse(s);
  return { steps, warnings: [...new Set(warnings)], family };
}
