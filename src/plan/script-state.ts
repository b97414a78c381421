// The run-time side of an interpreted script: asks the plan's queries of the
// device, renders each answer exactly as the AOSP client prints it, and
// evaluates the plan's predicates on that text with the same text tools the
// interpreter used at plan time.
import { toolBox } from '../rom/script/tools/index.js';
import type { ToolContext } from '../rom/script/tools/types.js';
import { evalPred, type ToolBox } from './evaluate.js';
import type { FastbootClient } from '../fastboot/client.js';
import type { DeviceFacts } from './gates.js';
import { FastbootFailError } from '../fastboot/errors.js';
import { planQueries, predText } from './pred-text.js';
import { queriesOf, type Pred, type Query } from './predicate.js';
import { renderQuery, type Printed, type QueryAnswer } from './query-output.js';
import type { FlashPlan } from './schema.js';

export class ScriptState {
  private readonly printed = new Map<string, Printed>();
  private readonly tools: ToolBox;
  private readonly toolContext: ToolContext;
  readonly describe: (p: Pred) => string;

  constructor(
    plan: FlashPlan,
    private readonly romFile: (file: string) => boolean,
    tools: ToolBox = toolBox,
  ) {
    this.tools = tools;
    const ctx: ToolContext & { shell?: 'dash' | 'bash' } = { timeZone: 'UTC', ...(plan.source.shell ? { shell: plan.source.shell } : {}) };
    this.toolContext = ctx;
    const lookup = planQueries(plan.steps);
    this.describe = (p) => predText(p, lookup);
  }

  /** Whether every query the predicate reads has been asked. */
  readable(p: Pred): boolean {
    return [...queriesOf(p)].every((id) => this.printed.has(id));
  }

  holds(p: Pred): boolean {
    return evalPred(p, { printed: (id) => this.printed.get(id), tools: this.tools, toolContext: this.toolContext, romFile: this.romFile });
  }

  /** Asks a query of the device and keeps what the AOSP client would have printed. */
  async ask(id: string, q: Query, client: FastbootClient, serial: () => Promise<string>, facts?: DeviceFacts): Promise<Printed> {
    // Before the first write the device answers as it did for the gates: share their cache.
    const a = q.kind === 'getvar' && facts ? { kind: 'getvar' as const, ...(await facts.answer(q.name)) } : await answer(q, client, serial);
    const printed = renderQuery(q, a);
    this.printed.set(id, printed);
    return printed;
  }

  /** The device's answers a predicate reads, for messages: "product: cepheus, anti: 3". */
  answers(p: Pred): string {
    return [...queriesOf(p)].map((id) => this.summary(id)).join(', ');
  }

  /** What a query printed, for messages (first line, trimmed). */
  summary(id: string): string {
    const p = this.printed.get(id);
    if (!p) return '(not asked)';
    const text = p.chunks.map((c) => c.text).join('');
    return text.split('\n')[0]!.trim();
  }
}

async function answer(q: Query, client: FastbootClient, serial: () => Promise<string>): Promise<QueryAnswer> {
  switch (q.kind) {
    case 'getvar':
      try {
        return { kind: 'getvar', value: await client.getvar(q.name) };
      } catch (err) {
        if (err instanceof FastbootFailError) return { kind: 'getvar', error: err.deviceMessage };
        throw err;
      }
    case 'oem-device-info':
      try {
        return { kind: 'oem', info: (await client.oem(['device-info'])).info };
      } catch (err) {
        if (err instanceof FastbootFailError) return { kind: 'oem', info: err.info, error: err.deviceMessage };
        throw err;
      }
    case 'devices':
      return { kind: 'devices', serials: [await serial()] };
    case 'version':
      return { kind: 'version' };
  }
}
