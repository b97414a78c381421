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
      const cmdText = cmdToolText(t, arg, lookup);
      if (cmdText !== undefined) return cmdText;
      const cmd = t.argv.map(arg).join(' ');
      const piped = t.stdin.kind === 'lit' && t.stdin.value === '' ? cmd : `${termText(t.stdin, lookup)} | ${cmd}`;
      return t.result === 'status' ? `status of ${piped}` : piped;
    }
    case 'chomp':
    case 'trim':
      return t.of.kind === 'lit' ? quote(t.of.value) : `$(${termText(t.of, lookup)})`;
  }
}

/**
 * cmd.exe's own semantics (the .bat front end's internal tools cmd/if, cmd/for-f, cmd/plain) in the words of
 * a batch file: `if A GTR B`, `for /f "tokens=2" token 1 of line 1 of (...)`.
 */
function cmdToolText(t: Extract<Term, { kind: 'tool' }>, arg: (a: Term) => string, lookup: QueryLookup): string | undefined {
  const name = t.argv[0]?.kind === 'lit' ? t.argv[0].value : '';
  const lit = (i: number) => (t.argv[i]?.kind === 'lit' ? (t.argv[i] as { value: string }).value : undefined);
  const value = (a: Term | undefined) => (a === undefined ? '' : a.kind === 'lit' ? a.value : `(${termText(a, lookup)})`);
  const source = () => `(${termText(t.stdin, lookup)})`;
  switch (name) {
    case 'cmd/if':
      if (t.argv.length < 4) return undefined;
      return `if ${lit(4) === 'i' ? '/i ' : ''}${value(t.argv[2])} ${lit(1) ?? '?'} ${value(t.argv[3])}`;
    case 'cmd/for-f': {
      const n = lit(2);
      const k = lit(3);
      const what = k === undefined ? `line ${n ?? '?'}` : `token ${k} of line ${n ?? '?'}`;
      return `for /f "${lit(1) ?? ''}": ${what} of ${source()}${k === undefined ? ' exists' : ''}`;
    }
    case 'cmd/plain':
      return `${source()} is one word without cmd special characters`;
    default:
      void arg;
      return undefined;
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
