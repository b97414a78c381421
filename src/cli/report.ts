// Turns any thrown value into one clear message and an exit code.
import { ExitCode, MiflashError } from '../errors.js';

export function reportError(err: unknown, opts: { json: boolean }): number {
  const typed = err instanceof MiflashError ? err : undefined;
  const exitCode = typed?.exitCode ?? ExitCode.INTERNAL;
  const message = err instanceof Error ? err.message : String(err);
  if (opts.json) {
    const event = { event: 'error', code: typed?.code ?? 'internal', message, hint: typed?.hint, exitCode };
    process.stdout.write(JSON.stringify(event) + '\n');
  } else {
    process.stderr.write(`miflash: error: ${message}\n`);
    if (typed?.hint) process.stderr.write(`hint: ${typed.hint}\n`);
    if (!typed && err instanceof Error && process.env.MIFLASH_DEBUG) process.stderr.write(`${err.stack}\n`);
  }
  return exitCode;
}
