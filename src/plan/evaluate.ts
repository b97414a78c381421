// Evaluates a plan's terms and predicates from what the queries printed, with
// the interpreter's pure text tools. The runner uses it with the device's real
// answers; the interpreter uses it at plan time on literals; tests use it with
// model devices. One implementation, so plan time and run time cannot drift.
import { BadInputError } from '../errors.js';
import type { Tool, ToolContext } from '../rom/script/tools/types.js';
import type { Pred, Term } from './predicate.js';
import { printedText, type Printed } from './query-output.js';

/** The text tools by name (grep, awk, [, ...). */
export interface ToolBox {
  has(name: string): boolean;
  run: Tool;
}

export interface EvalContext {
  /** What a query printed; undefined = not asked (a plan error). */
  printed(id: string): Printed | undefined;
  tools: ToolBox;
  toolContext?: ToolContext;
  /** Host-side: does the ROM have this file? */
  romFile?(file: string): boolean;
}

/** Largest value a term may take (tool outputs included): scripts handle a few lines of fastboot output. */
export const MAX_TERM_BYTES = 1 << 20;

export class EvaluationError extends BadInputError {
  constructor(message: string) {
    super(message, { code: 'plan.evaluation' });
  }
}

const IFS = /[ \t\n]+/;

/** Fields of an unquoted expansion under the default IFS. */
export function splitFields(s: string): string[] {
  return s.split(IFS).filter((f) => f !== '');
}

export function trimIfs(s: string): string {
  return s.replace(/^[ \t\n]+|[ \t\n]+$/g, '');
}

function bounded(s: string, what: string): string {
  if (s.length > MAX_TERM_BYTES) throw new EvaluationError(`${what} produced more than ${MAX_TERM_BYTES} bytes`);
  return s;
}

export function evalTerm(t: Term, ctx: EvalContext): string {
  switch (t.kind) {
    case 'lit':
      return t.value;
    case 'output':
    case 'status': {
      const p = ctx.printed(t.query);
      if (!p) throw new EvaluationError(`query ${t.query} has not been asked`);
      return t.kind === 'status' ? String(p.status) : printedText(p, t.stream);
    }
    case 'concat':
      return bounded(t.parts.map((p) => evalTerm(p, ctx)).join(''), 'a concatenation');
    case 'tool': {
      const argv = t.argv.map((a) => evalTerm(a, ctx));
      const name = argv[0]!;
      if (!ctx.tools.has(name)) throw new EvaluationError(`${name} is not one of miflash's text tools`);
      const r = ctx.tools.run(argv, evalTerm(t.stdin, ctx), ctx.toolContext ?? { timeZone: 'UTC' });
      return t.result === 'status' ? String(r.status) : bounded(t.result === 'stdout' ? r.stdout : r.stderr, name);
    }
    case 'chomp':
      return evalTerm(t.of, ctx).replace(/\n+$/, '');
    case 'trim':
      return trimIfs(evalTerm(t.of, ctx));
  }
}

export function evalPred(p: Pred, ctx: EvalContext): boolean {
  switch (p.kind) {
    case 'zero':
      return evalTerm(p.term, ctx) === '0';
    case 'fields':
      return splitFields(evalTerm(p.term, ctx)).length === p.count;
    case 'rom-file':
      if (!ctx.romFile) throw new EvaluationError(`no ROM to check ${p.file} against`);
      return ctx.romFile(p.file);
    case 'not':
      return !evalPred(p.of, ctx);
    case 'and':
      return p.of.every((x) => evalPred(x, ctx));
    case 'or':
      return p.of.some((x) => evalPred(x, ctx));
  }
}
