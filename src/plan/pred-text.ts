// Predicates and terms as short shell-like text, for plan tables, dry-run
// output, refusals and events: `fastboot getvar product 2>&1 | grep "^product: *lmi"`
// reads better than the JSON it stands for.
import { queryArgv, type Pred, type Query, type Term } from './predicate.js';

export type QueryLookup = (id: string) => Query | undefined;

/** Looks query ids up among a plan's query steps. */
export function planQueries(steps: ReadonlyArray<{ kind: string; id?: string; query?: Query }>): QueryLookup {
  const byId = new Map<string, Query>();
  for (const s of steps) if (s.kind === 'query' && s.id !== undefined && s.query !== undefined) byId.set(s.id, s.query);
  return (id) => byId.get(id);
}

function quote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,!\[\]-]+$/.test(s) ? s : JSON.stringify(s);
}

function queryText(id: string, lookup: QueryLookup): string {
  const q = lookup(id);
  return q ? `fastboot ${queryArgv(q).join(' ')}` : `query ${id}`;
}

/** A term as the command or value that produces it. */
export function termText(t: Term, lookup: QueryLookup): string {
  switch (t.kind) {
    case 'lit':
      return quote(t.value);
    case 'output': {
      const redirect = t.stream === 'both' ? ' 2>&1' : t.stream === 'stderr' ? ' 2>&1 >/dev/null' : ' 2>/dev/null';
      return `${queryText(t.query, lookup)}${redirect}`;
    }
    case 'status':
      return `status of ${queryText(t.query, lookup)}`;
    case 'concat':
      return t.parts.map((p) => (p.kind === 'lit' ? p.value : `\${${termText(p, lookup)}}`)).join('');
    case 'tool': {
      const arg = (a: Term): string => {
        if (a.kind === 'lit') return quote(a.value);
        if (a.kind === 'chomp') return `"$(${termText(a.of, lookup)})"`;
        if (a.kind === 'trim') return `$(${termText(a.of, lookup)})`;
        if (a.kind === 'status' || (a.kind === 'tool' && a.result === 'status')) return '$?';
        return `"${termText(a, lookup)}"`;
      };
      const cmd = t.argv.map(arg).join(' ');
      const piped = t.stdin.kind === 'lit' && t.stdin.value === '' ? cmd : `${termText(t.stdin, lookup)} | ${cmd}`;
      return t.result === 'status' ? `status of ${piped}` : piped;
    }
    case 'chomp':
    case 'trim':
      return t.of.kind === 'lit' ? quote(t.of.value) : `$(${termText(t.of, lookup)})`;
  }
}

/** A predicate as a condition a person can check against the script. */
export function predText(p: Pred, lookup: QueryLookup): string {
  switch (p.kind) {
    case 'zero': {
      const t = p.term;
      if (t.kind === 'tool' && t.result === 'status') return termText({ ...t, result: 'stdout' }, lookup);
      if (t.kind === 'status') return `${queryText(t.query, lookup)} succeeds`;
      return `${termText(t, lookup)} is 0`;
    }
    case 'fields':
      return p.count === 0 ? `${termText(p.term, lookup)} is empty` : `${termText(p.term, lookup)} is one word`;
    case 'rom-file':
      return `${p.file} is in the ROM`;
    case 'not':
      return `not (${predText(p.of, lookup)})`;
    case 'and':
      return p.of.length === 0 ? 'always' : p.of.map((x) => (x.kind === 'or' ? `(${predText(x, lookup)})` : predText(x, lookup))).join(' and ');
    case 'or':
      return p.of.length === 0 ? 'never' : p.of.map((x) => (x.kind === 'and' && x.of.length > 1 ? `(${predText(x, lookup)})` : predText(x, lookup))).join(' or ');
  }
}
