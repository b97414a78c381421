// Walks a plan against a model device without touching one: which steps would
// run, in order, and where the script would stop. Used by `miflash plan
// --device` style checks and by the tests that compare plans with the vendor
// script under a real shell. Device operations are assumed to succeed.
import { evalPred, type ToolBox } from './evaluate.js';
import { renderQuery, type Printed, type QueryAnswer } from './query-output.js';
import type { Query } from './predicate.js';
import type { PlanStep } from './schema.js';

/** A device as the plan sees it: getvar values (absent = FAIL) and `oem device-info` lines. */
export interface ModelDevice {
  vars: Record<string, string>;
  deviceInfo?: string[];
  serial?: string;
}

export function modelAnswer(d: ModelDevice, q: Query): QueryAnswer {
  switch (q.kind) {
    case 'getvar': {
      const v = d.vars[q.name];
      return v === undefined ? { kind: 'getvar', error: 'GetVar Variable Not found' } : { kind: 'getvar', value: v };
    }
    case 'oem-device-info':
      return { kind: 'oem', info: d.deviceInfo ?? [] };
    case 'devices':
      return { kind: 'devices', serials: [d.serial ?? 'MODEL0001'] };
    case 'version':
      return { kind: 'version' };
  }
}

export interface Simulation {
  /** Steps that run, in order (queries, operations, sleeps, notes). */
  ran: PlanStep[];
  /** The step the plan stops at (an exit or a refusal), if any. */
  stop?: PlanStep;
}

export function simulatePlan(steps: readonly PlanStep[], device: ModelDevice, tools: ToolBox, romFile?: (f: string) => boolean): Simulation {
  const printed = new Map<string, Printed>();
  const ctx = { printed: (id: string) => printed.get(id), tools, ...(romFile ? { romFile } : {}) };
  const ran: PlanStep[] = [];
  for (const s of steps) {
    if (s.when && !evalPred(s.when, ctx)) continue;
    if (s.kind === 'exit' && s.onFailure === 'ignore') continue; // a check the script ignores
    if (s.kind === 'exit' || s.kind === 'gate.unknown') return { ran, stop: s };
    if (s.kind === 'query') printed.set(s.id, renderQuery(s.query, modelAnswer(device, s.query)));
    ran.push(s);
  }
  return { ran };
}
