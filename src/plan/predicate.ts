// Values and conditions a flash plan carries from an interpreted script.
//
// A script's values are *terms*: literal strings, or expressions over what a
// read-only device query printed (rendered exactly as the AOSP client prints
// it), passed through the same pure text tools the script pipes into (grep,
// awk, cut, test, ...). Conditions are *predicates* over terms: "this command's
// exit status is 0", "this value splits into one word", boolean combinations.
// At plan time the terms are symbolic; at run time the runner renders each
// query's output from the device's real answers and evaluates the very same
// terms with the very same tools (src/plan/evaluate.ts), so the two cannot
// disagree. Nothing here can name a program to run: a tool is one of the
// interpreter's built-in pure functions, looked up by name.
import { z } from '../zod.js';
import { planRegistry } from './registry.js';

// ---- queries: read-only questions the script asks through fastboot ----

/** A read-only fastboot invocation whose printed output the script inspects. */
export type Query =
  | { kind: 'getvar'; name: string }
  | { kind: 'oem-device-info' }
  | { kind: 'devices' }
  | { kind: 'version' };

export const QuerySchema: z.ZodType<Query> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('getvar'), name: z.string().regex(/^[^\s]+$/, 'a getvar name is one word') }).describe('`fastboot getvar NAME`'),
  z.object({ kind: z.literal('oem-device-info') }).describe('`fastboot oem device-info` (read-only on the bootloaders that have it)'),
  z.object({ kind: z.literal('devices') }).describe('`fastboot devices`: the selected device, as the host lists it'),
  z.object({ kind: z.literal('version') }).describe('`fastboot --version`: the client version miflash stands in for'),
]);
planRegistry.add(QuerySchema, { id: 'Query' });

/** A query as fastboot arguments (for labels and messages). */
export function queryArgv(q: Query): string[] {
  switch (q.kind) {
    case 'getvar':
      return ['getvar', q.name];
    case 'oem-device-info':
      return ['oem', 'device-info'];
    case 'devices':
      return ['devices'];
    case 'version':
      return ['--version'];
  }
}

// ---- terms ----

/** Query step ids in a plan: `q1`, `q2`, ... */
export const QueryIdSchema = z.string().regex(/^q[0-9]+$/, 'query ids are q1, q2, ...');

export type Term =
  /** A string the script computed without asking the device. */
  | { kind: 'lit'; value: string }
  /** What a query printed: on stdout, on stderr, or both in the order the client wrote them (`2>&1`). */
  | { kind: 'output'; query: string; stream: 'stdout' | 'stderr' | 'both' }
  /** A query's exit status, in decimal. */
  | { kind: 'status'; query: string }
  | { kind: 'concat'; parts: Term[] }
  /**
   * A pure text tool applied to an argument vector and a standard input;
   * `result` picks what the script uses: what it printed on stdout or stderr, or its exit status (decimal).
   */
  | { kind: 'tool'; argv: Term[]; stdin: Term; result: 'stdout' | 'stderr' | 'status' }
  /** Command substitution: the value with every trailing newline removed. */
  | { kind: 'chomp'; of: Term }
  /** The one field of an unquoted expansion: leading and trailing blanks and newlines removed (see the `fields` predicate). */
  | { kind: 'trim'; of: Term };

export const TermSchema: z.ZodType<Term> = z.lazy(() =>
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('lit'), value: z.string() }),
    z.object({ kind: z.literal('output'), query: QueryIdSchema, stream: z.enum(['stdout', 'stderr', 'both']) }),
    z.object({ kind: z.literal('status'), query: QueryIdSchema }),
    z.object({ kind: z.literal('concat'), parts: z.array(TermSchema).min(2) }),
    z.object({
      kind: z.literal('tool'),
      argv: z.array(TermSchema).min(1).describe('argv[0] is the tool name as written (grep, findstr, [, ...): always a literal'),
      stdin: TermSchema,
      result: z.enum(['stdout', 'stderr', 'status']),
    }),
    z.object({ kind: z.literal('chomp'), of: TermSchema }),
    z.object({ kind: z.literal('trim'), of: TermSchema }),
  ]),
);
planRegistry.add(TermSchema, { id: 'Term' });

// ---- predicates ----

export type Pred =
  /** The term (an exit status) is 0: the command succeeded. */
  | { kind: 'zero'; term: Term }
  /** The term splits into exactly `count` fields at blanks and newlines (unquoted expansion; assumptions the plan relies on). */
  | { kind: 'fields'; term: Term; count: 0 | 1 }
  /** A host-side fact: the file exists in the ROM (resolved when the plan is made for a ROM, or by the runner). */
  | { kind: 'rom-file'; file: string }
  | { kind: 'not'; of: Pred }
  /** All hold (empty: true). */
  | { kind: 'and'; of: Pred[] }
  /** Any holds (empty: false). */
  | { kind: 'or'; of: Pred[] };

export const PredSchema: z.ZodType<Pred> = z.lazy(() =>
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('zero'), term: TermSchema }),
    z.object({ kind: z.literal('fields'), term: TermSchema, count: z.union([z.literal(0), z.literal(1)]) }),
    z.object({ kind: z.literal('rom-file'), file: z.string().min(1) }),
    z.object({ kind: z.literal('not'), of: PredSchema }),
    z.object({ kind: z.literal('and'), of: z.array(PredSchema) }),
    z.object({ kind: z.literal('or'), of: z.array(PredSchema) }),
  ]),
);
planRegistry.add(PredSchema, { id: 'Predicate' });

// ---- construction helpers (front ends and the plan builder use these) ----

export const lit = (value: string): Term => ({ kind: 'lit', value });
export const TRUE: Pred = { kind: 'and', of: [] };
export const FALSE: Pred = { kind: 'or', of: [] };

export function isLit(t: Term): t is { kind: 'lit'; value: string } {
  return t.kind === 'lit';
}

/** Concatenation with adjacent literals merged and empty literals dropped; a single part is returned as is. */
export function concat(...parts: Term[]): Term {
  // Plain loops, no flatMap: interpreters call this for every word and line they build.
  const out: Term[] = [];
  for (const x of parts) {
    if (x.kind === 'concat') for (const p of x.parts) pushPart(out, p);
    else pushPart(out, x);
  }
  if (out.length === 0) return lit('');
  return out.length === 1 ? out[0]! : { kind: 'concat', parts: out };
}

/** Appends one part, dropping empty literals and joining adjacent ones. */
function pushPart(out: Term[], p: Term): void {
  if (p.kind !== 'lit') {
    out.push(p);
    return;
  }
  if (p.value === '') return;
  const last = out[out.length - 1];
  if (last?.kind === 'lit') out[out.length - 1] = lit(last.value + p.value);
  else out.push(p);
}

export function not(p: Pred): Pred {
  if (p.kind === 'not') return p.of;
  if (p.kind === 'and' && p.of.length === 0) return FALSE;
  if (p.kind === 'or' && p.of.length === 0) return TRUE;
  return { kind: 'not', of: p };
}

export function and(...ps: Pred[]): Pred {
  const of = ps.flatMap((p) => (p.kind === 'and' ? p.of : [p]));
  if (of.some((p) => p.kind === 'or' && p.of.length === 0)) return FALSE;
  return of.length === 1 ? of[0]! : { kind: 'and', of };
}

export function or(...ps: Pred[]): Pred {
  const of = ps.flatMap((p) => (p.kind === 'or' ? p.of : [p]));
  if (of.some((p) => p.kind === 'and' && p.of.length === 0)) return TRUE;
  return of.length === 1 ? of[0]! : { kind: 'or', of };
}

export function isTrue(p: Pred): boolean {
  return p.kind === 'and' && p.of.length === 0;
}

/** A stable text key for a term or predicate (structural equality). */
export function keyOf(x: Term | Pred): string {
  return JSON.stringify(x);
}

/** Query ids a term or predicate reads. */
export function queriesOf(x: Term | Pred, out: Set<string> = new Set()): Set<string> {
  switch (x.kind) {
    case 'output':
    case 'status':
      out.add(x.query);
      break;
    case 'concat':
      for (const p of x.parts) queriesOf(p, out);
      break;
    case 'tool':
      for (const a of x.argv) queriesOf(a, out);
      queriesOf(x.stdin, out);
      break;
    case 'chomp':
    case 'trim':
    case 'not':
      queriesOf(x.of, out);
      break;
    case 'zero':
    case 'fields':
      queriesOf(x.term, out);
      break;
    case 'and':
    case 'or':
      for (const p of x.of) queriesOf(p, out);
      break;
    case 'lit':
    case 'rom-file':
      break;
  }
  return out;
}

/** Renames query ids (the plan builder numbers queries in plan order). */
export function mapQueries<T extends Term | Pred>(x: T, f: (id: string) => string): T {
  const m = (y: Term | Pred): Term | Pred => {
    switch (y.kind) {
      case 'output':
        return { ...y, query: f(y.query) };
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
