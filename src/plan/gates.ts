// Read-only checks evaluated before the first write: product, anti-rollback,
// secure, unlocked, hardware revision, security patch level, android-info
// requirements. Device facts come from getvar only (plus `oem device-info`
// for the unlocked gate, which is read-only); answers are cached so each
// variable is asked once per run.
import { BadInputError, GateRefusedError, type MiflashError } from '../errors.js';
import { FastbootFailError, type FastbootClient } from '../fastboot/client.js';
import type { PlanStep, StepOf } from './schema.js';

/** getvar answers for one device, asked lazily and cached; FAIL = undefined. */
export class DeviceFacts {
  private readonly cache = new Map<string, string | undefined>();
  private readonly raw = new Map<string, { value: string } | { error: string }>();
  private deviceInfo: string[] | undefined;

  constructor(private readonly client: FastbootClient) {}

  /** The device's answer as sent (FAIL keeps its message), asked once. */
  async answer(name: string): Promise<{ value: string } | { error: string }> {
    let a = this.raw.get(name);
    if (a === undefined) {
      try {
        a = { value: await this.client.getvar(name) };
      } catch (err) {
        if (!(err instanceof FastbootFailError)) throw err;
        a = { error: err.deviceMessage };
      }
      this.raw.set(name, a);
      this.cache.set(name, 'value' in a ? a.value.trim() : undefined);
    }
    return a;
  }

  async get(name: string): Promise<string | undefined> {
    if (!this.cache.has(name)) await this.answer(name);
    return this.cache.get(name);
  }

  /** INFO lines of `oem device-info` (read-only; asked once). */
  async oemDeviceInfo(): Promise<string[]> {
    this.deviceInfo ??= (await this.client.oem(['device-info'])).info;
    return this.deviceInfo;
  }

  /** Everything asked so far (for messages and dry-run output). */
  snapshot(): Record<string, string | undefined> {
    return Object.fromEntries(this.cache);
  }
}

export type GateStep = Extract<PlanStep, { kind: `gate.${string}` }>;

export interface GateOutcome {
  ok: boolean;
  /** What was compared, for the step-end line ("product: raphaelin matches ^product: *raphaelin"). */
  detail: string;
  /** The refusal to throw when !ok and the gate is blocking. */
  error?: MiflashError;
}

const scriptRef = (s: PlanStep) => (s.line > 0 ? `script line ${s.line}` : 'miflash');
const vendorSays = (s: PlanStep) => (s.message ? `${s.message}: ` : '');

function compileAll(patterns: string[], step: PlanStep): RegExp[] {
  return patterns.map((p) => {
    try {
      return new RegExp(p);
    } catch (err) {
      throw new BadInputError(`${scriptRef(step)}: invalid pattern ${JSON.stringify(p)} in ${step.kind}: ${(err as Error).message}`, {
        code: 'plan.invalid-pattern',
      });
    }
  });
}

/** Leading decimal digits as the vendor `grep -oP "anti: \K[0-9]+"` reads them; anything else = 0. */
export function parseAnti(value: string | undefined): number {
  const m = /^\s*(\d+)/.exec(value ?? '');
  return m ? Number(m[1]) : 0;
}

export async function evaluateGate(step: GateStep, facts: DeviceFacts): Promise<GateOutcome> {
  switch (step.kind) {
    case 'gate.product':
      return productGate(step, facts);
    case 'gate.anti-rollback':
      return antiGate(step, facts);
    case 'gate.secure': {
      const v = await facts.get('secure');
      const line = `secure: ${v ?? ''}`;
      const ok = v !== undefined && compileAll([step.pattern], step)[0]!.test(line);
      return ok
        ? { ok, detail: `${line} matches ${step.pattern}` }
        : refuse('gate.secure', `${vendorSays(step)}device reports '${line}', the package requires ${step.pattern} (${scriptRef(step)})`, `${line} does not match ${step.pattern}`);
    }
    case 'gate.unlocked': {
      const info = await facts.oemDeviceInfo();
      const re = compileAll([step.pattern], step)[0]!;
      const ok = info.some((l) => re.test(l));
      return ok
        ? { ok, detail: `oem device-info matches ${step.pattern}` }
        : refuse(
            'gate.unlocked',
            `${vendorSays(step)}the bootloader is not unlocked: no line of 'oem device-info' (${info.join(' | ') || 'empty'}) matches ${step.pattern} (${scriptRef(step)})`,
            'bootloader locked',
            'unlock the bootloader with the vendor tool first',
          );
    }
    case 'gate.hw-revision': {
      const raw = await facts.get(step.variable);
      const n = raw === undefined ? NaN : Number.parseFloat(raw);
      const ok = Number.isFinite(n) && n >= step.min;
      return ok
        ? { ok, detail: `${step.variable}: ${raw} >= ${step.min}` }
        : refuse('gate.hw-revision', `${vendorSays(step)}device ${step.variable} is ${raw ?? 'not reported'}; the package needs at least ${step.min} (${scriptRef(step)})`, `${step.variable}: ${raw ?? '-'} < ${step.min}`);
    }
    case 'gate.security-patch-level': {
      const raw = await facts.get(step.variable);
      const ok = raw !== undefined && /^\d{4}-\d{2}-\d{2}/.test(raw) && raw.slice(0, 10) <= step.packageLevel;
      return ok
        ? { ok, detail: `${step.variable}: ${raw} <= ${step.packageLevel}` }
        : refuse(
            'gate.security-patch-level',
            `${vendorSays(step)}device security patch level ${raw ?? '(not reported)'} is newer than the package's ${step.packageLevel} (${scriptRef(step)}): downgrading would be refused or brick the device`,
            `${step.variable}: ${raw ?? '-'} > ${step.packageLevel}`,
          );
    }
    case 'gate.android-info':
      return androidInfoGate(step, facts);
    case 'gate.unknown':
      return {
        ok: false,
        detail: step.reason,
        error: new BadInputError(`${scriptRef(step)}: ${step.reason}: ${JSON.stringify(step.text)}; miflash will not guess what it checks`, {
          code: 'gate.unknown',
          hint: 'pick another script with --script, or edit the plan (miflash plan --json) and remove the check if you know it is safe',
        }),
      };
  }
}

function refuse(code: string, message: string, detail: string, hint?: string): GateOutcome {
  return {
    ok: false,
    detail,
    error: new GateRefusedError(message, { code, hint: hint ?? 'nothing has been written to the device' }),
  };
}

async function productGate(step: StepOf<'gate.product'>, facts: DeviceFacts): Promise<GateOutcome> {
  const v = await facts.get('product');
  const line = `product: ${v ?? ''}`;
  const res = compileAll(step.patterns, step);
  const hit = v === undefined ? -1 : res.findIndex((r) => r.test(line));
  if (hit >= 0) return { ok: true, detail: `${line} matches ${step.patterns[hit]}` };
  return refuse(
    'gate.product',
    `${vendorSays(step)}this ROM is for ${step.products.join(' / ')} but the device reports product '${v ?? '(none)'}' (${scriptRef(step)}: ${step.source.text})`,
    `${line} matches none of ${step.patterns.join(', ')}`,
    'check that you downloaded the ROM for this exact model; nothing has been written to the device',
  );
}

async function antiGate(step: StepOf<'gate.anti-rollback'>, facts: DeviceFacts): Promise<GateOutcome> {
  const raw = await facts.get(step.variable);
  const device = parseAnti(raw);
  if (device <= step.packageVersion) {
    return { ok: true, detail: `device ${step.variable} ${device} <= package ${step.packageVersion}` };
  }
  return refuse(
    'gate.anti-rollback',
    `${vendorSays(step)}device anti-rollback version ${device} (getvar ${step.variable}) is higher than this package's ${step.packageVersion} (${step.from}); flashing it could brick the device`,
    `device ${step.variable} ${device} > package ${step.packageVersion}`,
    'use a ROM at least as new as the one on the device; nothing has been written to the device',
  );
}

function valueMatches(value: string, accepted: string[]): boolean {
  return accepted.some((a) => (a.endsWith('*') ? value.startsWith(a.slice(0, -1)) : value === a));
}

async function androidInfoGate(step: StepOf<'gate.android-info'>, facts: DeviceFacts): Promise<GateOutcome> {
  if (step.requirements === null) {
    return {
      ok: false,
      detail: `${step.file}: android-info.txt not read`,
      error: new BadInputError(`${step.file}: android-info.txt could not be read, so the package's device requirements cannot be checked`, {
        code: 'rom.android-info-missing',
      }),
    };
  }
  const product = await facts.get('product');
  for (const r of step.requirements) {
    if (r.forProduct !== undefined && r.forProduct !== product) continue;
    let value: string | undefined;
    let ok: boolean;
    if (r.variable === 'partition-exists') {
      // Any accepted partition present satisfies it (AOSP asks has-slot:P).
      const found: string[] = [];
      for (const p of r.values) if ((await facts.get(`has-slot:${p}`)) !== undefined) found.push(p);
      value = found.join('|') || '(none)';
      ok = r.kind === 'require' ? found.length > 0 : found.length === 0;
    } else {
      value = await facts.get(r.variable);
      const hit = value !== undefined && valueMatches(value, r.values);
      ok = r.kind === 'require' ? hit : !hit;
    }
    if (!ok) {
      return refuse(
        'gate.android-info',
        `${step.file}/android-info.txt line ${r.line}: ${r.kind} ${r.variable}=${r.values.join('|')} but the device reports ${r.variable}: ${value ?? '(none)'}`,
        `${r.variable}: ${value ?? '-'}`,
      );
    }
  }
  return { ok: true, detail: `${step.requirements.length} android-info requirement(s) met` };
}

/** One line describing what a gate checks (labels, dry-run output). */
export function describeGate(step: GateStep): string {
  switch (step.kind) {
    case 'gate.product':
      return `check product is ${step.products.join(' / ')}`;
    case 'gate.anti-rollback':
      return `check anti-rollback: device ${step.variable} <= ${step.packageVersion}`;
    case 'gate.secure':
      return `check secure matches ${step.pattern}`;
    case 'gate.unlocked':
      return 'check the bootloader is unlocked';
    case 'gate.hw-revision':
      return `check ${step.variable} >= ${step.min}`;
    case 'gate.security-patch-level':
      return `check ${step.variable} <= ${step.packageLevel}`;
    case 'gate.android-info':
      return `check ${step.file}/android-info.txt requirements`;
    case 'gate.unknown':
      return `unknown check: ${step.text}`;
  }
}
