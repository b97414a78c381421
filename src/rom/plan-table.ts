// A flash plan as a readable table (for `miflash plan` and confirmations).
import { queryArgv } from '../plan/predicate.js';
import { planQueries, predText } from '../plan/pred-text.js';
import type { FlashPlan, PlanStep } from '../plan/schema.js';

function target(s: PlanStep): string {
  switch (s.kind) {
    case 'flash':
    case 'erase':
    case 'format':
      return s.partition;
    case 'set-active':
      return s.slot;
    case 'reboot':
      return s.target ?? 'system';
    case 'oem':
      return s.args.join(' ');
    case 'flashing':
      return s.sub;
    case 'lock':
      return s.command;
    case 'sleep':
      return `${s.seconds}s`;
    case 'note':
      return s.text;
    case 'gate.product':
      return `${s.products.join(' | ')} (${s.match})`;
    case 'gate.anti-rollback':
      return `device ${s.variable} <= ${s.packageVersion} (${s.from})`;
    case 'gate.secure':
    case 'gate.unlocked':
      return s.pattern;
    case 'gate.hw-revision':
      return `${s.variable} >= ${s.min}`;
    case 'gate.security-patch-level':
      return `${s.variable} <= ${s.packageLevel}`;
    case 'gate.android-info':
      return s.requirements === null ? 'android-info.txt (read at run time)' : `${s.requirements.length} requirement(s)`;
    case 'gate.unknown':
      return `BLOCKS: ${s.reason}`;
    case 'wipe':
      return 'userdata, cache, metadata';
    case 'update':
      return `${s.wipe ? '-w ' : ''}${s.skipReboot ? '--skip-reboot ' : ''}update`;
    case 'query':
      return `${s.id}: fastboot ${queryArgv(s.query).join(' ')}`;
    case 'exit':
      return s.status === 0 ? 'script ends' : `REFUSES (exit ${s.status})${s.message ? `: ${s.message}` : ''}`;
    case 'boot':
    case 'wipe-super':
      return s.file;
    case 'fetch':
      return `${s.partition} -> ${s.output}`;
    case 'logical-partition':
      return `${s.action} ${s.partition}${s.size !== undefined ? ` ${s.size}` : ''}`;
    case 'snapshot-update':
      return s.action ?? '';
  }
}

function file(s: PlanStep): string {
  return 'file' in s && typeof s.file === 'string' ? s.file : '';
}

function notes(s: PlanStep, plan: FlashPlan): string {
  const n: string[] = [];
  if (s.when) n.push(`if ${predText(s.when, planQueries(plan.steps))}`);
  if (s.condition) n.push(s.condition.kind === 'crc-supported' ? 'if crc=1' : s.condition.kind === 'partition-exists' ? `if ${s.condition.partition} exists` : `${s.condition.kind} ${s.condition.file}`);
  if (s.vendorUnchecked) n.push('unchecked by vendor');
  if (s.foreign) n.push('FOREIGN');
  if (s.kind === 'flash' && s.flags) {
    if (s.flags.disableVerity) n.push('--disable-verity');
    if (s.flags.disableVerification) n.push('--disable-verification');
    if (s.flags.slot) n.push(`--slot=${s.flags.slot}`);
  }
  return n.join(', ');
}

export function formatPlanTable(plan: FlashPlan): string {
  const head = ['#', 'line', 'kind', 'target', 'file', 'on failure', 'notes'];
  const rows = plan.steps.map((s, i) => [String(i + 1), s.line === 0 ? '-' : String(s.line), s.kind, target(s), file(s), s.onFailure, notes(s, plan)]);
  const widths = head.map((h, c) => Math.min(48, Math.max(h.length, ...rows.map((r) => r[c]!.length))));
  const fmt = (r: string[]) =>
    r
      .map((v, c) => (v.length > widths[c]! ? v.slice(0, widths[c]! - 1) + '…' : v.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const src = plan.source;
  const lines = [
    `script: ${src.script}${src.twin ? ` (+ ${src.twin})` : ''}  dialect: ${src.dialect}  mode: ${src.mode}  family: ${src.family}`,
    ...(src.rom ? [`rom: ${src.rom}`] : []),
    ...(plan.product ? [`device: ${plan.product.device ?? '?'}  build: ${plan.product.build ?? '?'}`] : []),
    '',
    fmt(head),
    fmt(widths.map((w) => '-'.repeat(w))),
    ...rows.map(fmt),
  ];
  if (plan.warnings.length > 0) lines.push('', 'warnings:', ...plan.warnings.map((w) => `  - ${w}`));
  return lines.join('\n') + '\n';
}
