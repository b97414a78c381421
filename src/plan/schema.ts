// The flash plan: what a vendor script means, as typed data. A plan is built by
// parsing flash_all*.sh / .bat (src/rom/script) and executed by the runner; it
// can name partitions, files inside the ROM and fastboot operations, and can
// never carry a shell command.
import { z } from '../zod.js';
import { PredSchema, QueryIdSchema, QuerySchema } from './predicate.js';
import { planRegistry } from './registry.js';

export { planRegistry };

/** A partition name as the script sends it (`xbl`, `abl_ab`, `sspm_1`, `vm-bootsys_ab`). */
const Partition = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+$/, 'partition names are letters, digits, "_", "-" and "."')
  .describe('partition name, sent verbatim (never expanded or stripped: `_ab` means both slots to the Xiaomi bootloader)')
  ;
planRegistry.add(Partition, { id: 'Partition' });

/** A file inside the ROM, relative to the ROM root, '/'-separated, never escaping it. */
const RomFile = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').some((c) => c === '..' || c === '' || c === '.'), {
    message: 'file must be relative to the ROM root, without "..", "." or empty components',
  })
  // On Windows `\` is a separator too: `images\..\..\x` or `\\server\share` would leave the ROM.
  .refine((p) => !p.includes('\\'), { message: 'file must use "/" separators, never "\\"' })
  .describe('file relative to the ROM root, e.g. images/xbl.elf')
  ;
planRegistry.add(RomFile, { id: 'RomFile' });

export const ConditionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('crc-supported') }).describe('run only when `getvar crc` answers 1 (S12/B12)'),
  z.object({ kind: z.literal('file-exists'), file: RomFile }).describe('host-side: run only when the file exists (B13 then)'),
  z.object({ kind: z.literal('file-missing'), file: RomFile }).describe('host-side: run only when the file is missing (B13 else)'),
  z
    .object({ kind: z.literal('partition-exists'), partition: Partition })
    .describe('run only when `getvar partition-type:NAME` answers'),
]);
planRegistry.add(ConditionSchema, { id: 'StepCondition' });
export type StepCondition = z.infer<typeof ConditionSchema>;

const StepBase = {
  /** 1-based source line in the script (0 = synthesised, e.g. from a side-car file). */
  line: z.number().int().nonnegative(),
  /** What the runner does when the step fails (device FAIL, gate not met). */
  onFailure: z.enum(['abort', 'ignore']),
  /** The script's failure message (shown verbatim, never interpreted). */
  message: z.string().optional(),
  condition: ConditionSchema.optional(),
  /** The vendor script does not check this step's result; onFailure carries miflash's policy. */
  vendorUnchecked: z.boolean().optional(),
  /** A line that is not vendor content (no `$*`/`%*` in a Xiaomi script): refused unless the user opts in. */
  foreign: z.boolean().optional(),
  /**
   * The step runs only when this predicate holds (absent = always). Predicates
   * read the answers of earlier `query` steps; see src/plan/predicate.ts.
   */
  when: PredSchema.optional(),
};

// ---- gates: read-only checks evaluated before the first device operation ----

export const GateProductSchema = z.object({
  kind: z.literal('gate.product'),
  ...StepBase,
  /** Product names the gate accepts (for display). */
  products: z.array(z.string()).min(1),
  /**
   * JavaScript regular expressions tested against the line `product: VALUE`
   * (as `getvar product` prints it); the gate passes when any matches.
   */
  patterns: z.array(z.string()).min(1),
  /** 'prefix' when the vendor regex has no trailing `$` (`^product: *lmi` accepts `lmiin`). */
  match: z.enum(['exact', 'prefix', 'substring']),
  /** The regex as written in the script and its dialect. */
  source: z.object({ text: z.string(), dialect: z.enum(['bre', 'ere', 'findstr', 'misc.txt']) }),
  /** How a folder-dependent product (MIUI 8 .bat, B7) was computed. */
  derivation: z.string().optional(),
});

export const GateAntiRollbackSchema = z.object({
  kind: z.literal('gate.anti-rollback'),
  ...StepBase,
  /** The package's anti-rollback version; the device's `getvar anti` (missing = 0) must not exceed it. */
  packageVersion: z.number().int().nonnegative(),
  variable: z.enum(['anti', 'rollback_ver']),
  /** Where packageVersion came from. */
  from: z.enum(['script', 'anti_version.txt', 'anti_version.txt-missing']),
});

export const GateSecureSchema = z.object({
  kind: z.literal('gate.secure'),
  ...StepBase,
  /** `getvar secure` must match (JS regex on `secure: VALUE`). */
  pattern: z.string(),
});

export const GateUnlockedSchema = z.object({
  kind: z.literal('gate.unlocked'),
  ...StepBase,
  /** JS regex that some line of `oem device-info` output must match. */
  pattern: z.string(),
});

export const GateHwRevisionSchema = z.object({
  kind: z.literal('gate.hw-revision'),
  ...StepBase,
  variable: z.string(),
  /** The device value must be >= min (numeric compare). */
  min: z.number(),
});

export const GateSecurityPatchLevelSchema = z.object({
  kind: z.literal('gate.security-patch-level'),
  ...StepBase,
  variable: z.string(),
  /** YYYY-MM-DD: the device's level must not be newer than the package's. */
  packageLevel: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
});

export const AndroidInfoRequirementSchema = z.object({
  /** 'require' = value must be one of values; 'reject' = must be none of them. */
  kind: z.enum(['require', 'reject']),
  /** Only when the device product is this (require-for-product:P). */
  forProduct: z.string().optional(),
  /** getvar name (board is already mapped to product); partition-exists is special. */
  variable: z.string(),
  /** Accepted values; a trailing `*` is a prefix match. */
  values: z.array(z.string()),
  line: z.number().int().positive(),
});

export const GateAndroidInfoSchema = z.object({
  kind: z.literal('gate.android-info'),
  ...StepBase,
  /** The zip the requirements come from (relative to the ROM root). */
  file: RomFile,
  /** null until the zip's android-info.txt has been read (the runner reads it before any write). */
  requirements: z.array(AndroidInfoRequirementSchema).nullable(),
});

export const GateUnknownSchema = z.object({
  kind: z.literal('gate.unknown'),
  ...StepBase,
  /** The source text the parser could not interpret as a known gate. Always blocking (when `when` holds). */
  text: z.string(),
  reason: z.string(),
});

// ---- device operations, in script order ----

export const FlashStepSchema = z.object({
  kind: z.literal('flash'),
  ...StepBase,
  partition: Partition,
  file: RomFile,
  flags: z
    .object({
      disableVerity: z.boolean().optional(),
      disableVerification: z.boolean().optional(),
      /** --slot=X: a, b, all or other (resolved from current-slot at run time). */
      slot: z.string().optional(),
    })
    .optional(),
});

export const EraseStepSchema = z.object({ kind: z.literal('erase'), ...StepBase, partition: Partition });
export const FormatStepSchema = z.object({
  kind: z.literal('format'),
  ...StepBase,
  partition: Partition,
  fsType: z.string().optional(),
});
export const SetActiveStepSchema = z.object({ kind: z.literal('set-active'), ...StepBase, slot: z.string().regex(/^[a-z]+$/) });
export const RebootStepSchema = z.object({
  kind: z.literal('reboot'),
  ...StepBase,
  /** Absent = normal boot (`reboot`). */
  target: z.enum(['bootloader', 'recovery', 'fastboot', 'edl']).optional(),
});
export const OemStepSchema = z.object({
  kind: z.literal('oem'),
  ...StepBase,
  /** Sent as `oem ARGS…`; never treated as lock/unlock. */
  args: z.array(z.string().regex(/^[^\s]+$/)).min(1),
});
export const FlashingStepSchema = z.object({
  kind: z.literal('flashing'),
  ...StepBase,
  sub: z.enum(['unlock', 'lock_critical', 'unlock_critical', 'get_unlock_ability']),
});
export const LockStepSchema = z.object({
  kind: z.literal('lock'),
  ...StepBase,
  /** Wire command: `oem lock` or `flashing lock`. Destructive: confirm separately; never after a failure or warning. */
  command: z.enum(['oem lock', 'flashing lock']),
});
export const WipeStepSchema = z.object({ kind: z.literal('wipe'), ...StepBase });
export const UpdateStepSchema = z.object({
  kind: z.literal('update'),
  ...StepBase,
  file: RomFile,
  wipe: z.boolean(),
  skipReboot: z.boolean(),
});
export const SleepStepSchema = z.object({ kind: z.literal('sleep'), ...StepBase, seconds: z.number().nonnegative() });
export const NoteStepSchema = z.object({
  kind: z.literal('note'),
  ...StepBase,
  /** Banner, echo, pause: an explicit no-op kept so nothing is silently dropped. */
  text: z.string(),
});

// ---- interpreted scripts: queries and exits ----

export const QueryStepSchema = z
  .object({
    kind: z.literal('query'),
    ...StepBase,
    /** Referenced by predicates (`output` / `status` terms). */
    id: QueryIdSchema,
    query: QuerySchema,
  })
  .describe('a read-only question the script asks the device; its printed output feeds later predicates');

export const ExitStepSchema = z
  .object({
    kind: z.literal('exit'),
    ...StepBase,
    /** The script's exit status here: non-zero = the script refuses (a gate); 0 = it ends successfully. */
    status: z.number().int().min(0).max(255),
  })
  .describe('the script stops here with `status` when `when` holds; `message` is what it printed');

// ---- device operations of newer scripts (fastbootd, dynamic partitions) ----

export const BootStepSchema = z.object({ kind: z.literal('boot'), ...StepBase, file: RomFile });
export const FetchStepSchema = z.object({ kind: z.literal('fetch'), ...StepBase, partition: Partition, output: z.string().min(1) });
export const LogicalPartitionStepSchema = z.object({
  kind: z.literal('logical-partition'),
  ...StepBase,
  action: z.enum(['create', 'delete', 'resize']),
  partition: Partition,
  /** Bytes, as the script wrote it (decimal or 0x hex); create and resize only. */
  size: z.string().regex(/^(0x[0-9a-fA-F]+|[0-9]+)$/).optional(),
});
export const WipeSuperStepSchema = z.object({ kind: z.literal('wipe-super'), ...StepBase, file: RomFile });
export const SnapshotUpdateStepSchema = z.object({ kind: z.literal('snapshot-update'), ...StepBase, action: z.enum(['cancel', 'merge']).optional() });

export const PlanStepSchema = z.discriminatedUnion('kind', [
  GateProductSchema,
  GateAntiRollbackSchema,
  GateSecureSchema,
  GateUnlockedSchema,
  GateHwRevisionSchema,
  GateSecurityPatchLevelSchema,
  GateAndroidInfoSchema,
  GateUnknownSchema,
  FlashStepSchema,
  EraseStepSchema,
  FormatStepSchema,
  SetActiveStepSchema,
  RebootStepSchema,
  OemStepSchema,
  FlashingStepSchema,
  LockStepSchema,
  WipeStepSchema,
  UpdateStepSchema,
  SleepStepSchema,
  NoteStepSchema,
  QueryStepSchema,
  ExitStepSchema,
  BootStepSchema,
  FetchStepSchema,
  LogicalPartitionStepSchema,
  WipeSuperStepSchema,
  SnapshotUpdateStepSchema,
]);
export type PlanStep = z.infer<typeof PlanStepSchema>;
export type PlanStepKind = PlanStep['kind'];
export type StepOf<K extends PlanStepKind> = Extract<PlanStep, { kind: K }>;

export const PlanModeSchema = z.enum(['clean', 'keep-data', 'lock', 'lock-crc', 'other']);
export type PlanMode = z.infer<typeof PlanModeSchema>;

export const FlashPlanSchema = z.object({
  version: z.literal(1),
  source: z.object({
    /** Script file name (relative to the ROM root when planned for a ROM). */
    script: z.string(),
    dialect: z.enum(['sh', 'bat']),
    /** .sh plans: the shell whose builtins the plan's tools imitate at run time (`[`, test): the shebang's, else Debian's sh. */
    shell: z.enum(['dash', 'bash']).optional(),
    mode: PlanModeSchema,
    /** 'xiaomi' (fastboot $* / %*), 'google' (factory flash-all). */
    family: z.enum(['xiaomi', 'google']),
    /** The twin script merged in (stricter onFailure wins). */
    twin: z.string().optional(),
    /** Absolute ROM root, when planned for a ROM. */
    rom: z.string().optional(),
  }),
  /** misc.txt device= / build_number=, for display. */
  product: z.object({ device: z.string().optional(), build: z.string().optional() }).optional(),
  /** Things the user should see before running (prefix product match, AVB disabled, foreign lines…). */
  warnings: z.array(z.string()),
  steps: z.array(PlanStepSchema),
});
export type FlashPlan = z.infer<typeof FlashPlanSchema>;

export const GATE_KINDS = [
  'gate.product',
  'gate.anti-rollback',
  'gate.secure',
  'gate.unlocked',
  'gate.hw-revision',
  'gate.security-patch-level',
  'gate.android-info',
  'gate.unknown',
] as const satisfies readonly PlanStepKind[];

/** Steps that only read from the device or decide: gates, queries, script exits (by kind, as events carry it). */
export function isReadOnlyKind(kind: string): boolean {
  return kind.startsWith('gate.') || kind === 'query' || kind === 'exit';
}

export function isGate(step: PlanStep): boolean {
  return step.kind.startsWith('gate.');
}

/** Steps that talk to the device and change it (everything except gates, queries, exits, sleep and notes). */
export function isDeviceOp(step: PlanStep): boolean {
  return !isGate(step) && step.kind !== 'sleep' && step.kind !== 'note' && step.kind !== 'query' && step.kind !== 'exit';
}
