import type { PlanStep } from '../../plan/schema.js';

export interface ParseOptions {
  /** Name used in error messages and in plan.source.script. */
  file: string;
  dialect: 'sh' | 'bat';
  /** images/anti_version.txt value when the ROM has one (undefined = file missing → 0, as the vendor does). */
  antiVersion?: number;
  /** Last component of the ROM folder, for the MIUI 8 .bat product rule (B7). Default: the script's folder name. */
  folderName?: string;
}

export interface ParsedScript {
  steps: PlanStep[];
  warnings: string[];
  family: 'xiaomi' | 'google';
}
