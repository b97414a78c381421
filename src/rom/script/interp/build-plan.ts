// Explored paths -> plan steps. Every query, device operation, sleep, note,
// exit and refusal is a node identified by where it happens in the script
// (front-end node id plus call/loop frames); nodes are merged across paths and
// put in an order every path agrees with. Each step carries the predicate
// under which it runs: the disjunction of the decisions that led to it on each
// path, simplified, taking as "don't care" the paths that stopped at an
// earlier exit or refusal (the run has ended there, whatever the step says).
import { queriesOf, type Pred, type Term } from '../../../plan/predicate.js';
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
  | { kind: 'refuse'; key: string; construct: string; why: string; loc: Loc };

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
function walk(run: RunRecord, nodes: Map<string, Node>, atoms: Map<string, Pred>): { occ: Occurrence[]; full: Conj } {
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

// ---- predicate simplification over decision conjunctions ----

/** Every literal of `b` but `atom` is in `a`: then (a) or (b) == (a without atom) or (b). */
const restWithin = (b: Conj, a: Conj, atom: string): boolean => {
  for (const [k, v] of b) if (k !== atom && a.get(k) !== v) return false;
  return true;
};
const covers = (general: Conj, specific: Conj): boolean => [...general].every(([k, v]) => specific.get(k) === v);
const conjKey = (c: Conj): string => JSON.stringify([...c].sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * A small cover of the ON set, using the don't-care set to merge terms:
 * repeatedly apply consensus (X and a) or (Y and not a), Y within X, gives X,
 * then keep the most general terms that cover the ON terms.
 */
function simplify(on: Conj[], dc: Conj[]): Conj[] {
  if (on.length === 0) return [];
  const all = new Map<string, Conj>();
  for (const c of [...on, ...dc]) all.set(conjKey(c), c);
  let changed = true;
  let rounds = 0;
  while (changed && rounds++ < 64) {
    changed = false;
    const list = [...all.values()];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        for (const [x, y] of [
          [a, b],
          [b, a],
        ] as const) {
          for (const [atom, v] of x) {
            if (y.get(atom) === !v && restWithin(y, x, atom)) {
              const m = new Map(x);
              m.delete(atom);
              const k = conjKey(m);
              if (!all.has(k)) {
                all.set(k, m);
                changed = true;
              }
            }
          }
        }
      }
    }
    if (all.size > 4096) break;
  }
  // Greedy cover of the ON terms by the most general implicants.
  const terms = [...all.values()].sort((a, b) => a.size - b.size);
  const chosen: Conj[] = [];
  for (const o of on) {
    if (chosen.some((c) => covers(c, o))) continue;
    chosen.push(terms.find((t) => covers(t, o))!);
  }
  return chosen;
}

function toPred(cover: Conj[], atoms: Map<string, Pred>): Pred | undefined {
  if (cover.some((c) => c.size === 0)) return undefined; // always
  const lits = (c: Conj): Pred[] => [...c].map(([k, v]) => (v ? atoms.get(k)! : { kind: 'not', of: atoms.get(k)! }));
  const ands = cover.map((c) => {
    const l = lits(c);
    return l.length === 1 ? l[0]! : ({ kind: 'and', of: l } as Pred);
  });
  return ands.length === 1 ? ands[0]! : { kind: 'or', of: ands };
}

// ---- query ids ----

function renameQueries<T extends Term | Pred>(x: T, ids: Map<string, string>): T {
  const f = (id: string) => ids.get(id) ?? id;
  const m = (y: Term | Pred): Term | Pred => {
    switch (y.kind) {
      case 'output':
      case 'status':
        return { ...y, query: f(y.query) };
      case 'concat':
        return { kind: 'concat', parts: y.parts.map((p) => m(p) as Term) };
      case 'tool':
        return { ...y, argv: y.argv.map((a) => m(a) as Term), stdin: m(y.stdin) as Term };
      case 'chomp':
      case 'trim':
        return { ...y, of: m(y.of) as Term };
      case 'not':
        return { kind: 'not', of: m(y.of) as Pred };
      case 'zero':
      case 'fields':
        return { ...y, term: m(y.term) as Term };
      case 'and':
      case 'or':
        return { kind: y.kind, of: y.of.map((p) => m(p) as Pred) };
      default:
        return y;
    }
  };
  return m(x) as T;
}

/** Turns an exploration into plan steps. */
export function buildPlan(x: Exploration, file: string): BuiltScript {
  const nodes = new Map<string, Node>();
  const atoms = new Map<string, Pred>();
  const walked = x.paths.map((r) => walk(r, nodes, atoms));
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
    const on: Conj[] = [];
    const dc: Conj[] = [];
    walked.forEach((w, i) => {
      const o = w.occ.find((y) => y.node === key);
      if (o) {
        on.push(o.conj);
        return;
      }
      const end = w.occ[w.occ.length - 1];
      const endNode = end ? nodes.get(end.node) : undefined;
      if (endNode && (endNode.kind === 'exit' || endNode.kind === 'refuse') && position.get(endNode.key)! < at && !last.has(endNode.key)) dc.push(w.full);
      void i;
    });
    const when = toPred(simplify(on, dc), atoms);
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
