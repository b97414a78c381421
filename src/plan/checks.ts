// Labels for what a plan checks, derived from its steps: "checks product",
// "checks anti", ... A legacy gate names its check by kind; a script exit
// (an interpreted gate) checks whatever its predicate reads. Features that
// need to know (the misc.txt product fallback, twin merging) use these labels
// instead of special gate kinds.
import { queriesOf, queryArgv } from './predicate.js';
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

/** Whether a blocking check of the plan reads the device's product. */
export function checksProduct(steps: readonly PlanStep[]): boolean {
  return steps.some((s) => s.onFailure === 'abort' && checksOf(s, steps).includes('product'));
}
