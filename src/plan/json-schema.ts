// The plan format as JSON Schema, generated from the zod schema. The checked-in
// copy lives in plans/flash-plan.schema.json; test/plan/json-schema.test.ts
// fails when it is stale (regenerate with UPDATE_PLAN_SCHEMA=1 npx vitest run test/plan).
import { z } from '../zod.js';
import { FlashPlanSchema, planRegistry } from './schema.js';

export const PLAN_SCHEMA_ID = 'https://miflash.invalid/plans/flash-plan.schema.json';

export function planJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(FlashPlanSchema, { target: 'draft-2020-12', io: 'output', metadata: planRegistry }) as Record<string, unknown>;
  return {
    ...schema,
    $id: PLAN_SCHEMA_ID,
    title: 'miflash flash plan',
    description: 'A vendor flash script as typed steps: gates (read-only device checks) and device operations. A plan cannot contain shell commands.',
  };
}

/** The schema as the checked-in file's text (stable key order, 2-space indent, final newline). */
export function planJsonSchemaText(): string {
  return JSON.stringify(planJsonSchema(), null, 2) + '\n';
}
