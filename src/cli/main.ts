// miflash entry point. Start-up stays light: only commander and the command
// definitions load here; each action imports what it needs (USB stack, UI,
// ROM reader) when it runs, so `miflash --version` never touches them.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerCommands } from './commands/index.js';
import { reportError } from './report.js';
import { mark } from './trace.js';
import { BadInputError } from '../errors.js';

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
    .option('-v, --verbose', 'print every command sent to the device and every reply on stderr')
    .option('--unbuffered', 'accepted for AOSP compatibility: miflash writes each line as it is produced')
    .option('--set-active [slot]', '(--set-active[=SLOT]) after the command (before a reboot or -w): make SLOT active; no SLOT = the --slot given, else the current slot (as AOSP; alone: only that)')
    .option('-w, --wipe', 'with no command: wipe userdata, cache and metadata (as fastboot -w; --yes to skip the question); with update: wipe too')
    .showHelpAfterError('(run miflash --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * AOSP spellings commander cannot take as they are: `format[:FS_TYPE[:SIZE]]`
 * becomes `format --fs-type T --size S`, and `-w` with no command runs the
 * (hidden) `wipe` command, as `fastboot -w` does.
 */
export function expandAospWords(argv: string[], commands: readonly string[]): string[] {
  const at = argv.findIndex((a, i) => i >= 2 && /^format:/.test(a));
  if (at < 0) {
    const wipe = argv.slice(2).some((a) => a === '-w' || a === '--wipe');
    const command = argv.slice(2).find((a) => commands.includes(a));
    if (wipe && command === undefined) return [...argv.slice(0, 2), 'wipe', ...argv.slice(2)];
    // `fastboot --set-active[=SLOT]` with no command only sets the slot: the hidden `activate` command.
    if (command === undefined && argv.slice(2).some((a) => a === '--set-active' || a.startsWith('--set-active='))) return [...argv.slice(0, 2), 'activate', ...argv.slice(2)];
    // AOSP runs -w after any command; miflash wipes only with update / flashall, and says so rather than ignoring it.
    if (wipe && !['update', 'flashall', 'wipe', 'help'].includes(command!)) {
      throw new BadInputError(`-w works alone or with update / flashall, not with ${command}`, { hint: `run miflash -w on its own after miflash ${command}` });
    }
    return argv;
  }
  const [, type = '', size = ''] = argv[at]!.split(':');
  return [...argv.slice(0, at), 'format', ...(type ? ['--fs-type', type] : []), ...(size ? ['--size', size] : []), ...argv.slice(at + 1)];
}

/**
 * The AOSP client takes every option anywhere (`fastboot --disable-verity
 * --slot all flash vbmeta vbmeta.img`); commander wants a command's own
 * options after the command. Options written before the command that the
 * program does not know but the command does are moved to the end of the
 * line (with their value), where they cannot take an operand as an optional
 * value. Anything else stays where it is, so commander still reports it.
 */
export function hoistCommandOptions(argv: string[], program: Command): string[] {
  type Opt = import('commander').Option;
  const find = (opts: readonly Opt[], word: string): Opt | undefined => {
    const name = word.startsWith('--') && word.includes('=') ? word.slice(0, word.indexOf('=')) : word;
    return opts.find((o) => o.long === name || o.short === name);
  };
  // Only a required value is taken from the next word (an optional one needs --opt=VALUE, as getopt's optional_argument).
  const valueWords = (o: Opt, word: string): number => (o.required && !word.includes('=') ? 1 : 0);
  // The command: the first command name that is not the value of a program option (e.g. -s SERIAL).
  let at = 2;
  for (; at < argv.length; at++) {
    const w = argv[at]!;
    if (w === '--') return argv;
    const own = find(program.options, w);
    if (own) {
      at += valueWords(own, w);
      continue;
    }
    if (program.commands.some((c) => c.name() === w || c.aliases().includes(w))) break;
  }
  const command = program.commands.find((c) => c.name() === argv[at] || c.aliases().includes(argv[at] ?? ''));
  if (!command) return argv;
  const kept: string[] = [];
  const moved: string[] = [];
  for (let k = 2; k < at; k++) {
    const w = argv[k]!;
    const own = find(program.options, w);
    const theirs = own ? undefined : w.startsWith('-') ? find(command.options, w) : undefined;
    const opt = own ?? theirs;
    const n = opt ? Math.min(valueWords(opt, w), at - k - 1) : 0;
    (theirs ? moved : kept).push(...argv.slice(k, k + 1 + n));
    k += n;
  }
  return moved.length === 0 ? argv : [...argv.slice(0, 2), ...kept, ...argv.slice(at), ...moved];
}

export async function main(argv: string[]): Promise<number> {
  mark('main');
  const program = buildProgram();
  try {
    // getopt's optional_argument: `--set-active b` is the option without a value, then the word b (never the slot).
    const normalised = argv.map((a, i) => (i >= 2 && a === '--set-active' ? '--set-active=' : a));
    const expanded = expandAospWords(normalised, program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
    await program.parseAsync(hoistCommandOptions(expanded, program));
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
