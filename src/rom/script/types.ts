import type { PlanStep } from '../../plan/schema.js';

export interface ParseOptions {
  /** Name used in error messages and in plan.source.script. */
  file: string;
  dialect: 'sh' | 'bat';
  /** Last component of the ROM folder: what a .bat's %cd% and %~dp0 end in (MIUI 8 scripts pick the product by it). Default "ROM". */
  folderName?: string;
  /**
   * Reads a small text file of the ROM (path relative to the ROM root, e.g. images/security_patch_level.txt);
   * undefined = missing. Used for package values a gate compares against (§6). Absent = every file is missing.
   */
  readRomText?: (file: string) => string | undefined;
  /** Every file of the ROM, ROM-relative (globs, `cd`); absent = none known. */
  listRomFiles?: () => readonly string[];
  /** Bounds on interpreting the script (tests tighten them; defaults in interp/engine.ts). */
  limits?: Partial<import('./interp/engine.js').Limits>;
  /** Lines the script's `read` gets (`--input`); none = end of input, as `sh script </dev/null`. */
  inputs?: readonly string[];
}

export interface ParsedScript {
  steps: PlanStep[];
  warnings: string[];
  family: 'xiaomi' | 'google';
  /** The shell whose semantics an interpreted .sh followed. */
  shell?: 'dash' | 'bash';
}
