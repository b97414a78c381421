// plans/flash-plan.schema.json is generated from the zod schema and checked in;
// this fails when it is stale. Regenerate: UPDATE_PLAN_SCHEMA=1 npx vitest run test/plan/json-schema.test.ts
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planJsonSchema, planJsonSchemaText } from '../../src/plan/json-schema.js';
import { FlashPlanSchema } from '../../src/plan/schema.js';
import { parseScript } from '../../src/rom/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCHEMA = join(ROOT, 'plans', 'flash-plan.schema.json');
const EXAMPLES = join(ROOT, 'plans', 'examples');
const UPDATE = process.env.UPDATE_PLAN_SCHEMA === '1';

/** Example plans: corpus script → plans/examples/<name>.json. */
const examples: Array<[string, string]> = [
  ['xiaomi-raphaelin-v12-flash_all.sh', 'raphaelin-flash_all.json'],
  ['xiaomi-liuqin-hyperos2-flash_all.bat', 'liuqin-flash_all.bat.json'],
  ['xiaomi-cereus-mtk-flash_all_lock.sh', 'cereus-flash_all_lock.json'],
  ['google-maguro-galaxynexus-jdq39-flash-all.sh', 'maguro-flash-all.json'],
];

describe('plan JSON Schema', () => {
  it('plans/flash-plan.schema.json matches the zod schema', () => {
    if (UPDATE) writeFileSync(SCHEMA, planJsonSchemaText());
    expect(readFileSync(SCHEMA, 'utf8')).toBe(planJsonSchemaText());
  });

  it('describes steps as a closed union on kind (no room for a shell command)', () => {
    const s = planJsonSchema() as { properties: { steps: { items: { oneOf: Array<{ properties: { kind: { const: string } }; additionalProperties: boolean }> } } } };
    const kinds = s.properties.steps.items.oneOf.map((o) => o.properties.kind.const);
    expect(kinds).toContain('flash');
    expect(kinds).toContain('gate.anti-rollback');
    expect(kinds.some((k) => /shell|exec|command/.test(k))).toBe(false);
    expect(s.properties.steps.items.oneOf.every((o) => o.additionalProperties === false)).toBe(true);
    expect(FlashPlanSchema.safeParse({ version: 1, source: { script: 'x', dialect: 'sh', mode: 'clean', family: 'xiaomi' }, warnings: [], steps: [{ kind: 'shell', line: 1, onFailure: 'abort', command: 'rm -rf /' }] }).success).toBe(false);
    expect(FlashPlanSchema.safeParse({ version: 1, source: { script: 'x', dialect: 'sh', mode: 'clean', family: 'xiaomi' }, warnings: [], steps: [{ kind: 'flash', line: 1, onFailure: 'abort', partition: 'boot', file: '../boot.img' }] }).success).toBe(false);
  });

  it('example plans are current and valid', () => {
    for (const [script, out] of examples) {
      const plan = parseScript(readFileSync(join(ROOT, 'fixtures', 'corpus', script), 'utf8'), { file: script, dialect: script.endsWith('.sh') ? 'sh' : 'bat' });
      const text = JSON.stringify(plan, null, 2) + '\n';
      if (UPDATE) writeFileSync(join(EXAMPLES, out), text);
      expect(readFileSync(join(EXAMPLES, out), 'utf8'), out).toBe(text);
      expect(FlashPlanSchema.safeParse(JSON.parse(text)).success).toBe(true);
    }
    expect(readdirSync(EXAMPLES).sort()).toEqual(examples.map(([, o]) => o).sort());
  });
});
