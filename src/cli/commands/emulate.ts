// `miflash emulate`: an emulated fastboot device on TCP, for tests, demos and
// the benchmark. Heavy modules load inside the action.
import type { Command } from 'commander';
import type { EmulateCliOptions } from '../../emulator/fastboot/cli.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerEmulate(program: Command): void {
  program
    .command('emulate')
    .description('run an emulated fastboot device on TCP or UDP (partitions are files DIR/<name>.img; `reboot fastboot` switches it to fastbootd)')
    .requiredOption('--listen <address>', 'where to listen: tcp:HOST:PORT or udp:HOST:PORT, e.g. tcp:127.0.0.1:5554 (port 0 = any free port)', 'tcp:127.0.0.1:5554')
    .option('--store <dir>', 'directory holding the partition files')
    .option('--discard', 'store nothing (downloads are only hashed for the log); for benchmarks')
    .option('--no-hash', 'with --discard: do not hash downloads either (logged as `download SIZE -`), so the device costs ~nothing per byte; for benchmarks')
    .option('--product <name>', 'getvar product', 'miflash-emu')
    .option('--serial <serial>', 'getvar serialno')
    .option('--max-download-size <size>', 'largest download accepted (e.g. 512M, 0x20000000)', '512M')
    .option('--partition <name=size>', 'add or resize a partition (repeatable), e.g. boot_a=64M', collect, [])
    .option('--slots <list>', 'A/B slots, e.g. a,b (A/B partitions then exist as NAME_a, NAME_b)')
    .option('--dynamic-partitions', 'system, system_ext, vendor, product, odm, *_dlkm live inside super as logical partitions (LP metadata; an empty super gets a factory layout)')
    .option('--virtual-ab', 'virtual A/B device (header flag on the factory layout; update-super keeps neither slot)')
    .option('--no-fastbootd', 'a phone whose recovery cannot start fastbootd: reboot-fastboot comes back in the bootloader')
    .option('--var <key=value>', 'set or override a getvar (repeatable), e.g. anti=4', collect, [])
    .option('--log <file>', 'append one line per command received')
    .option('--fail-on <n|cmd>', 'answer FAIL to the Nth command (1-based) or to every command named CMD (e.g. flash:boot, flash)')
    .option('--fail-message <text>', 'message of the injected FAIL')
    .option('--drop-after <bytes>', 'close the connection after this many bytes of a download')
    .option('--stall-on <n|cmd>', 'stop answering at the Nth command or at CMD')
    .option('--info-before <text>', 'send INFO<text> before every OKAY/FAIL (repeatable)', collect, [])
    .option('--text-before <text>', 'send TEXT<text> before every OKAY/FAIL (repeatable)', collect, [])
    .action(async (opts: EmulateCliOptions, cmd: Command) => {
      const { runEmulate } = await import('../../emulator/fastboot/cli.js');
      await runEmulate(opts, cmd.optsWithGlobals());
    });
}
