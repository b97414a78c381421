// `miflash plan ROM`: open a ROM (folder, .tgz, .zip), parse the script for the
// chosen mode and print the plan: a table, or the plan object with --json.
import { Option, type Command } from 'commander';

interface PlanOpts {
  mode: 'clean' | 'keep-data' | 'lock';
  script?: string;
  input?: string[];
  cache?: string;
  json?: boolean;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('show what flashing a ROM would do, step by step (no device needed)')
    .argument('<rom>', 'ROM folder, .tgz or .zip')
    .addOption(new Option('--mode <mode>', 'clean (flash_all), keep-data (flash_all_except_storage), lock (flash_all_lock)').choices(['clean', 'keep-data', 'lock']).default('clean'))
    .option('--script <file>', 'use this script from the ROM instead of the mode (e.g. flash_all.bat)')
    .option('--cache <dir>', 'extract archives under DIR instead of beside them')
    .option('--input <line>', "a line for the script's `read` (repeatable, in order); none = end of input", (v: string, prev: string[] = []) => [...prev, v])
    .action(async (rom: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as PlanOpts;
      const { openRom, planForRom } = await import('../../rom/index.js');
      const { formatPlanTable } = await import('../../rom/plan-table.js');
      const { FlashPlanSchema } = await import('../../plan/schema.js');
      const progress = !opts.json && process.stderr.isTTY ? extractProgress() : undefined;
      const r = await openRom(rom, { ...(opts.cache ? { cache: opts.cache } : {}), ...(progress ? { onProgress: progress.update } : {}) });
      progress?.done();
      const plan = FlashPlanSchema.parse(await planForRom(r, { mode: opts.mode, ...(opts.script ? { script: opts.script } : {}), ...(opts.input ? { inputs: opts.input } : {}) }));
      process.stdout.write(opts.json ? JSON.stringify(plan) + '\n' : formatPlanTable(plan));
    });
}

function extractProgress() {
  let shown = false;
  return {
    update(p: { phase: string; done: number; total: number }) {
      const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 0;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      process.stderr.write(`\r${p.phase === 'verify' ? 'verifying' : 'extracting'} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% `);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\n');
    },
  };
}
