// miflash entry point. Start-up stays light: only commander and the command
// definitions load here; each action imports what it needs (USB stack, UI,
// ROM reader) when it runs, so `miflash --version` never touches them.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerCommands } from './commands/index.js';
import { reportError } from './report.js';
import { mark } from './trace.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('miflash');
  program
    .description('Flash Android phones (Xiaomi / Redmi / POCO first, any fastboot device after) from a vendor ROM package')
    .version(packageVersion(), '-V, --version')
    .option('-s, --serial <device>', 'device: SERIAL, usb:PORTPATH, tcp:HOST[:PORT] or udp:HOST[:PORT] (repeatable)', collect, [])
    .option('--all', 'every connected device')
    .option('--json', 'machine-readable output: one JSON object per line')
    .option('-S, --sparse-limit <size>', 'split images larger than SIZE (e.g. 256M, 1G)')
    .option('--timeout <ms>', 'reply timeout per command in milliseconds', '30000')
    .showHelpAfterError('(run miflash --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export async function main(argv: string[]): Promise<number> {
  mark('main');
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help / --version exit through here with code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    const json = argv.includes('--json');
    return reportError(err, { json });
  }
}

void main(process.argv).then((code) => {
  process.exitCode = code;
});
