// Labels for what a plan checks, derived from its steps: "checks product",
// "checks anti", ... A legacy gate names its check by kind; a script exit
// (an interpreted gate) checks whatever its predicate reads. Features that
// need to know (the misc.txt product fallback, twin merging) use these labels
// instead of special gate kinds.
import type { ToolContext } from '../rom/script/tools/types.js';
import { evalPred, type ToolBox } from './evaluate.js';
import { queriesOf, queryArgv } from './predicate.js';
import { renderQuery } from './query-output.js';
import type { PlanStep } from './schema.js';

/** What a step checks: getvar names (`product`, `anti`, ...) or other query commands (`oem device-info`). Empty for non-checks. */
export function checksOf(step: PlanStep, steps: readonly PlanStep[]): string[] {
  switch (step.kind) {
    case 'gate.product':
      return ['product'];
    case 'gate.anti-rollback':
    case 'gate.hw-revision':
    case 'gate.security-patch-level':
      return [step.variable];
    case 'gate.secure':
      return ['secure'];
    case 'gate.unlocked':
      return ['oem device-info'];
    case 'exit': {
      if (step.status === 0 || !step.when) return [];
      const out: string[] = [];
      for (const id of queriesOf(step.when)) {
        const q = steps.find((s) => s.kind === 'query' && s.id === id);
        if (q?.kind !== 'query') continue;
        out.push(q.query.kind === 'getvar' ? q.query.name : queryArgv(q.query).join(' '));
      }
      return [...new Set(out)];
    }
    default:
      return [];
  }
}

/**
 * The error code of a script exit that refuses: the legacy gate code when the
 * exit reads one kind of answer only (scripts and tools that key on
 * `gate.product` keep working), else `gate.script`.
 */
export function exitGateCode(step: PlanStep, steps: readonly PlanStep[]): string {
  const checks = checksOf(step, steps);
  if (checks.length === 0) return 'gate.script';
  const only = (names: string[]) => checks.every((c) => names.includes(c));
  if (only(['product'])) return 'gate.product';
  if (only(['anti', 'rollback_ver'])) return 'gate.anti-rollback';
  if (only(['secure'])) return 'gate.secure';
  if (only(['oem device-info'])) return 'gate.unlocked';
  return 'gate.script';
}

/** Whether a blocking check of the plan reads the device's product. */
export function checksProduct(steps: readonly PlanStep[]): boolean {
  return steps.some((s) => s.onFailure === 'abort' && checksOf(s, steps).includes('product'));
}

/**
 * Product checks written as prefix or substring matches (`grep "^product: *lmi"`
 * also accepts lmiin): found by asking each product check about the names
 * it accepts with something appended or prepended, evaluated exactly as at
 * run time. Returns one warning per such check.
 */
export function productMatchWarnings(steps: readonly PlanStep[], shell: 'dash' | 'bash' | undefined, tools: ToolBox): string[] {
  const out: string[] = [];
  for (const g of steps) {
    if (g.kind !== 'exit' || g.status === 0 || !g.when) continue;
    const ids = [...queriesOf(g.when)];
    const qs = ids.map((id) => steps.find((s) => s.kind === 'query' && s.id === id));
    if (qs.length === 0 || !qs.every((q) => q?.kind === 'query' && q.query.kind === 'getvar' && q.query.name === 'product')) continue;
    const refuses = (product: string): boolean => {
      const printed = renderQuery({ kind: 'getvar', name: 'product' }, { kind: 'getvar', value: product });
      const ctx: ToolContext & { shell?: 'dash' | 'bash' } = { timeZone: 'UTC', ...(shell ? { shell } : {}) };
      try {
        return evalPred(g.when!, { printed: () => printed, tools, toolContext: ctx });
      } catch {
        return true;
      }
    };
    const words = new Set(JSON.stringify(g.when).match(/[A-Za-z][A-Za-z0-9_-]+/g) ?? []);
    const accepted = [...words].filter((w) => w !== 'product' && !refuses(w));
    for (const p of accepted) {
      const kind = !refuses(`x${p}`) ? 'substring' : !refuses(`${p}x`) ? 'prefix' : undefined;
      if (kind) out.push(`line ${g.line}: the product check is a ${kind} match: it accepts '${kind === 'prefix' ? `${p}x` : `x${p}`}' as well as '${p}' (evaluated as written)`);
    }
  }
  return out;
}
