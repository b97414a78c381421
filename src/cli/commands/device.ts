// Device commands with AOSP fastboot muscle memory: devices, getvar, flash,
// erase, reboot, set-active, oem, flashing. Only commander types load at
// start-up; the protocol client, transports and UI load inside the actions.
import type { Command } from 'commander';
import type { FastbootClient } from '../../fastboot/client.js';
import { checkReadable, forEachDevice, quietOnClosedStdout, withCtrlC, type DeviceContext, type GlobalOptions } from './device-context.js';

/** The `flashing` subcommands the AOSP client sends; it refuses any other on the host. */
const FLASHING_SUBCOMMANDS = ['lock', 'unlock', 'lock_critical', 'unlock_critical', 'get_unlock_ability'];

export function registerDevice(program: Command): void {
  program
    .command('devices')
    .description('list attached fastboot devices (USB)')
    .option('-l, --long', 'also show vendor/product ids and the product name')
    .action(async (opts: { long?: boolean }, cmd: Command) => listDevices(cmd.optsWithGlobals<GlobalOptions>(), Boolean(opts.long)));

  program
    .command('connect')
    .description('remember a network device (tcp:HOST[:PORT] or udp:HOST[:PORT]) after checking it answers; used when no -s is given and no USB device is attached (as AOSP connect)')
    .argument('<address>')
    .action(async (address: string, _o: unknown, cmd: Command) => {
      const { parseNetworkAddress, readConnected, writeConnected } = await import('../../fastboot/connected.js');
      const { openDevice } = await import('../../transport/open.js');
      const spec = parseNetworkAddress(address);
      const timeoutMs = Number(cmd.optsWithGlobals<GlobalOptions>().timeout) || 30_000;
      const t = await openDevice(spec, { timeoutMs });
      await t.close().catch(() => {});
      writeConnected([...readConnected(), address]);
      process.stderr.write(`connected to ${address}\n`);
    });

  program
    .command('disconnect')
    .description('forget a network device remembered by connect, or all of them')
    .argument('[address]')
    .action(async (address: string | undefined) => {
      const { clearConnected, parseNetworkAddress, readConnected, writeConnected } = await import('../../fastboot/connected.js');
      if (address === undefined) return clearConnected();
      parseNetworkAddress(address);
      writeConnected(readConnected().filter((d) => d !== address));
    });

  program
    .command('activate', { hidden: true })
    .description('what `miflash --set-active[=SLOT]` with no command runs: only the slot switch')
    .option('--slot <slot>', "the slot --set-active without a value makes active")
    .action(async (_o: unknown, cmd: Command) => forEachDevice(cmd, async () => {}));

  program
    .command('getvar')
    .description("print a bootloader variable ('all' for every one) as NAME: VALUE")
    .argument('<name>', "variable name, or 'all'")
    .action(async (name: string, _o: unknown, cmd: Command) =>
      forEachDevice(
        cmd,
        async (d) => {
          if (name === 'all') {
            if (d.globals.json) {
              for (const [k, v] of await d.client.getvarAll()) d.print(`${k}: ${v}`, { event: 'var', name: k, value: v });
              return;
            }
            // Exactly what the AOSP client prints, on stderr: "(bootloader) NAME:VALUE" per INFO line as the device sent it, then "all: ".
            const { message } = await d.client.command('getvar:all');
            process.stderr.write(`all: ${message}\n`);
          } else {
            const value = await d.client.getvar(name);
            d.print(`${name}: ${value}`, { event: 'var', name, value });
          }
        },
        // --json: the variables arrive as INFO lines and are printed as var events, not echoed.
        { quietInfo: name === 'all' && Boolean(cmd.optsWithGlobals<GlobalOptions>().json) },
      ),
    );

  program
    .command('flash')
    .description('flash a ROM (folder, .tgz/.zip or plan .json), or IMAGE to PARTITION (split/resparsed as the AOSP client does)')
    .argument('<target>', 'ROM folder / archive / plan .json, or a partition name (e.g. boot, boot_a, super) followed by IMAGE')
    .argument('[image]', 'image file')
    .option('--slot <slot>', "slot to flash: a, b, 'all' or 'other' (default: current slot)")
    .option('--disable-verity', 'IMAGE: set the disable-verity flag in a vbmeta image (partition name ending in vbmeta, vbmeta_a or vbmeta_b), or in the vbmeta of a boot image on a device without vbmeta partition, as AOSP does')
    .option('--disable-verification', 'IMAGE: set the disable-verification flag, likewise')
    .option('--mode <mode>', 'ROM: clean (flash_all), keep-data (flash_all_except_storage) or lock (flash_all_lock)', 'clean')
    .option('--script <file>', 'ROM: run this script of the ROM instead of the mode (e.g. flash_all.bat)')
    .option('--yes', 'ROM: do not ask before erasing user data or locking')
    .option('--dry-run', 'ROM: read getvars, check gates and images, print what would run; write nothing')
    .option('--rom <dir>', 'ROM folder for a plan file (flash PLAN.json --rom DIR)')
    .option('--cache <dir>', 'ROM: extract archives under DIR instead of beside them')
    .option('--input <line>', "ROM: a line for the script's `read` (repeatable, in order); none = end of input", (v: string, prev: string[] = []) => [...prev, v])
    .addHelpText(
      'after',
      `
Examples:
  miflash flash ./rom                   ROM folder, .tgz or .zip (asks first)
  miflash flash ./rom --mode keep-data  keep user data ("save user data")
  miflash flash ./rom --dry-run         check gates and images; write nothing
  miflash --json flash ./rom --yes      for CI: JSON events, no questions
  miflash --all flash ./rom --yes       every attached phone at once
  miflash flash ./rom --resume          after a failure: skip flashes done
  miflash flash boot boot.img           one image to one partition

Each ROM run writes a log per device (commands, replies, steps, timing) to
logs/SERIAL-TIME.log in the cache folder ($MIFLASH_CACHE_DIR, else
$XDG_CACHE_HOME/miflash or ~/.cache/miflash); its path ends the output.`,
    )
    .option('--reboot-timeout <seconds>', 'ROM: wait this long for the device after a reboot in the middle of the plan (default 60)')
    .option('--resume', "ROM: skip the flashes this device's journal shows done by an interrupted run of the same ROM (gates re-checked; erase/format/lock/reboot never skipped)")
    .option('--dtb <file>', 'IMAGE: with vendor_boot:RAMDISK, also replace the DTB of the vendor_boot image')
    .option('--force', 'IMAGE: flash a partition $ANDROID_PRODUCT_OUT/super_empty.img lists as dynamic from the bootloader anyway (AOSP --force)')
    .action(async (target: string, image: string | undefined, opts: { slot?: string; disableVerity?: boolean; disableVerification?: boolean; dtb?: string; force?: boolean }, cmd: Command) => {
      image ??= await productOutImage(target);
      await refuseMisplacedOptions(cmd, image === undefined ? ['slot', 'disableVerity', 'disableVerification', 'dtb', 'force'] : ['mode', 'script', 'dryRun', 'rom', 'cache', 'rebootTimeout', 'input', 'resume'], image === undefined);
      if (image === undefined) {
        // One argument: a ROM folder, archive or plan file (src/cli/flash-rom.ts).
        const { flashRom } = await import('../flash-rom.js');
        process.exitCode = await flashRom(target, opts as import('../flash-rom.js').FlashRomOptions, cmd.optsWithGlobals<GlobalOptions>());
        return;
      }
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const sparseLimit = globals.sparseLimit === undefined ? undefined : (await import('../size.js')).parseSize(globals.sparseLimit, '-S');
      await checkReadable(image);
      const { parseVendorRamdiskTarget } = await import('../../fastboot/vendor-boot.js');
      if (parseVendorRamdiskTarget(target)) {
        // v35 `flash vendor_boot:RAMDISK FILE [--dtb DTB]`: fetched, repacked on the host, flashed back (fastbootd).
        if (opts.dtb !== undefined) await checkReadable(opts.dtb);
        const ramdiskImage = image;
        await forEachDevice(cmd, async (d) => {
          const { flashVendorRamdisk } = await import('../../fastboot/vendor-boot.js');
          await withCtrlC((signal) =>
            flashVendorRamdisk(d.client, target, ramdiskImage, {
              ...(opts.slot ? { slot: opts.slot } : {}),
              ...(opts.dtb !== undefined ? { dtbPath: opts.dtb } : {}),
              ...(sparseLimit !== undefined ? { sparseLimit } : {}),
              onEvent: d.emit,
              signal,
            }),
          );
        });
        return;
      }
      if (opts.dtb !== undefined) {
        const { BadInputError } = await import('../../errors.js');
        throw new BadInputError('--dtb: only with flash vendor_boot:RAMDISK FILE (or boot / flash:raw)', { code: 'input.option' });
      }
      const dynamic = await productOutDynamicPartitions();
      const { shouldFlashInUserspace } = await import('../../plan/flashall.js');
      await forEachDevice(cmd, async (d) => {
        const { flashImage } = await import('../../fastboot/flash-image.js');
        await withCtrlC(async (signal) => {
          await flashImage(d.client, target, image, {
            sparseLimit,
            slot: opts.slot,
            onEvent: d.emit,
            signal,
            ...(dynamic ? { beforeEach: (name: string) => refuseDynamicInBootloader(d, dynamic, name, Boolean(opts.force)) } : {}),
            // `flash PARTITION FILE` follows v35 (footer copy, is_vbmeta_partition by suffix, vbmeta in boot);
            // a ROM script's flash steps follow v29 instead (src/plan/runner.ts VBMETA says why).
            // v35 copy_avb_footer leaves alone a partition super_empty.img lists (should_flash_in_userspace).
            copyAvbFooter: dynamic ? (name: string) => !shouldFlashInUserspace(dynamic, name) : true,
            ...(opts.disableVerity ? { disableVerity: true } : {}),
            ...(opts.disableVerification ? { disableVerification: true } : {}),
          });
        });
      });
    });

  program
    .command('erase')
    .description('erase PARTITION')
    .argument('<partition>')
    .option('--slot <slot>', "a, b, 'all' or 'other' (default: current slot)")
    .action(async (partition: string, opts: { slot?: string }, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { erasePartition } = await import('../../fastboot/erase.js');
        await erasePartition(d.client, partition, { slot: opts.slot, onEvent: d.emit });
      }),
    );

  program
    .command('reboot')
    .description('reboot the device, or into bootloader | fastboot | recovery | edl')
    .argument('[target]', 'bootloader, fastboot, recovery or edl')
    .option('--skip-reboot', 'with no target: do nothing (as AOSP `fastboot --skip-reboot reboot`, for scripts that pass it everywhere)')
    .action(async (target: string | undefined, opts: { skipReboot?: boolean }, cmd: Command) => {
      // v35: a plain `reboot` is a RebootTask only without --skip-reboot; a reboot into a target always happens.
      if (opts.skipReboot && target === undefined) {
        process.stderr.write('--skip-reboot: not rebooting\n');
        return;
      }
      await reboot(cmd, target);
    });

  program
    .command('reboot-bootloader')
    .description('reboot into the bootloader (same as reboot bootloader)')
    .action(async (_o: unknown, cmd: Command) => reboot(cmd, 'bootloader'));

  program
    .command('reboot-recovery')
    .description('reboot into recovery (same as reboot recovery)')
    .action(async (_o: unknown, cmd: Command) => reboot(cmd, 'recovery'));

  program
    .command('reboot-fastboot')
    .description('reboot into userspace fastboot (fastbootd) and follow the device there (same as reboot fastboot)')
    .action(async (_o: unknown, cmd: Command) => reboot(cmd, 'fastboot'));

  program
    .command('set-active')
    .alias('set_active')
    .description('make SLOT (a, b or other) the active slot')
    .argument('<slot>')
    .action(async (slotArg: string, _o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { resolveSlotOption } = await import('../../fastboot/slots.js');
        const { step } = await import('../../fastboot/events.js');
        if (slotArg === 'all') {
          const { BadInputError } = await import('../../errors.js');
          throw new BadInputError("set-active: 'all' is not a slot; use a, b or other");
        }
        const slot = await resolveSlotOption(d.client, slotArg);
        await step(d.emit, `Setting current slot to '${slot}'`, () => d.client.setActive(slot).then(() => {}));
      }),
    );

  program
    .command('oem')
    .description('send a vendor command: oem ARGS… (space-joined)')
    .argument('<args...>')
    .allowUnknownOption()
    .action(async (args: string[], _o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { step } = await import('../../fastboot/events.js');
        await step(d.emit, `oem ${args.join(' ')}`, () => d.client.oem(args).then(() => {}));
      }),
    );

  program
    .command('flashing')
    .description('lock | unlock | lock_critical | unlock_critical | get_unlock_ability')
    .argument('<sub...>')
    .action(async (sub: string[], _o: unknown, cmd: Command) => {
      // AOSP refuses anything else on the host ("fastboot: usage: unknown 'flashing' command X"): nothing reaches the device.
      if (sub.length !== 1 || !FLASHING_SUBCOMMANDS.includes(sub[0]!)) {
        const { BadInputError } = await import('../../errors.js');
        throw new BadInputError(`unknown 'flashing' command ${sub.join(' ')}`, { code: 'input.usage', hint: `expected one of: ${FLASHING_SUBCOMMANDS.join(', ')}` });
      }
      await forEachDevice(cmd, async (d) => {
        const { step } = await import('../../fastboot/events.js');
        await step(d.emit, `flashing ${sub[0]}`, () => d.client.flashing(sub[0]!).then(() => {}));
      });
    });
}

async function reboot(cmd: Command, target: string | undefined): Promise<void> {
  const { REBOOT_TARGETS } = await import('../../fastboot/client.js');
  if (target !== undefined && !(REBOOT_TARGETS as readonly string[]).includes(target)) {
    const { BadInputError } = await import('../../errors.js');
    throw new BadInputError(`unknown reboot target '${target}': expected one of ${REBOOT_TARGETS.join(', ')}`);
  }
  await forEachDevice(cmd, async (d) => {
    const { step } = await import('../../fastboot/events.js');
    if (target === 'edl') return rebootEdl(d, step);
    if (target === 'fastboot') {
      // AOSP v35 RebootTask: nothing to do when already in fastbootd; otherwise reboot and follow the device there.
      if (await d.link.isUserspace()) {
        d.emit({ type: 'warning', message: 'already in userspace fastboot (fastbootd); not rebooting' });
        return;
      }
      await d.link.rebootToUserspace();
      return;
    }
    const label = target === undefined ? 'Rebooting' : `Rebooting into ${target}`;
    await step(d.emit, label, () => d.client.reboot(target as Parameters<FastbootClient['reboot']>[0]).then(() => {}));
  });
}

/**
 * `reboot edl`: Xiaomi bootloaders take `oem edl`, older ones `reboot-edl`
 * (src/edl/reboot.ts tries both). Over USB, wait for the 05c6:9008 device so the
 * user knows the phone really is in EDL; a network device has no such signal.
 */
async function rebootEdl(d: DeviceContext, step: typeof import('../../fastboot/events.js').step): Promise<void> {
  const { rebootToEdl } = await import('../../edl/reboot.js');
  const waitForEdl =
    d.spec.kind === 'usb' || d.spec.kind === 'serial'
      ? async () => (await import('../../edl/usb.js')).waitForEdlDevice({ timeoutMs: 60_000 })
      : undefined;
  const result = await step(d.emit, 'Rebooting into EDL', () => rebootToEdl(d.client, { waitForEdl }));
  d.print(`rebooted into EDL with '${result.command}'`, { event: 'reboot-edl', command: result.command });
}

/**
 * AOSP `flash PARTITION` with no file takes the image from $ANDROID_PRODUCT_OUT
 * (v35 find_item: the nicknames of its image table). miflash reads one argument
 * as a ROM, so only a name that is not a path on disk and is such a nickname
 * is looked up there; undefined = a ROM.
 */
async function productOutImage(target: string): Promise<string | undefined> {
  const { existsSync } = await import('node:fs');
  if (existsSync(target)) return undefined;
  const { FLASHALL_IMAGES } = await import('../../plan/flashall.js');
  const entry = FLASHALL_IMAGES.find((i) => !i.secondary && i.partition === target);
  if (!entry) return undefined;
  const out = process.env.ANDROID_PRODUCT_OUT;
  if (!out) {
    const { BadInputError } = await import('../../errors.js');
    throw new BadInputError(`flash ${target}: no image given and ANDROID_PRODUCT_OUT is not set`, {
      code: 'input.image',
      hint: `give the image (miflash flash ${target} ${entry.image}) or set ANDROID_PRODUCT_OUT to a product build folder`,
    });
  }
  const { join } = await import('node:path');
  return join(out, entry.image);
}

/**
 * v35 should_flash_in_userspace without an update zip: the partitions of
 * $ANDROID_PRODUCT_OUT/super_empty.img, when there is one that reads (AOSP
 * ignores an unreadable or invalid one); undefined otherwise.
 */
async function productOutDynamicPartitions(): Promise<import('../../plan/flashall.js').DynamicPartition[] | undefined> {
  const out = process.env.ANDROID_PRODUCT_OUT;
  if (!out) return undefined;
  const [{ join }, { readLpImage }, { LP_PARTITION_ATTR_SLOT_SUFFIXED }] = await Promise.all([import('node:path'), import('../../lp/file.js'), import('../../lp/format.js')]);
  try {
    const { metadata } = await readLpImage(join(out, 'super_empty.img'));
    return metadata.partitions.map((p) => ({ name: p.name, slotSuffixed: (p.attributes & LP_PARTITION_ATTR_SLOT_SUFFIXED) !== 0 }));
  } catch {
    return undefined;
  }
}

/** v35 FlashTask: a dynamic partition is flashed only in fastbootd, unless --force. */
async function refuseDynamicInBootloader(d: DeviceContext, dynamic: import('../../plan/flashall.js').DynamicPartition[], name: string, force: boolean): Promise<void> {
  const { shouldFlashInUserspace } = await import('../../plan/flashall.js');
  if (!shouldFlashInUserspace(dynamic, name)) return;
  // AOSP tests is-userspace before --force (so asks it even with --force).
  if ((await d.link.isUserspace()) || force) return;
  const { BadInputError } = await import('../../errors.js');
  throw new BadInputError(`'${name}' is a dynamic partition ($ANDROID_PRODUCT_OUT/super_empty.img lists it) and should be flashed via fastbootd`, {
    code: 'input.dynamic-partition',
    hint: 'run miflash reboot fastboot and try again; to overwrite a fixed partition of that name on purpose, add --force',
  });
}

/**
 * `flash boot boot.img --dry-run` must not flash for real, and `flash ./rom --slot b`
 * must not quietly flash the slots the script chooses: an option of the other form is an error.
 */
async function refuseMisplacedOptions(cmd: Command, names: string[], rom: boolean): Promise<void> {
  const given = names.filter((n) => cmd.getOptionValueSource(n) === 'cli');
  if (given.length === 0) return;
  const { BadInputError } = await import('../../errors.js');
  const flags = given.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
  throw new BadInputError(
    rom
      ? `${flags}: only for flashing one image (flash PARTITION IMAGE); a ROM's script chooses its partitions and slots`
      : `${flags}: only for flashing a ROM (flash ROM); with PARTITION IMAGE nothing is checked or simulated, the image is written`,
    { code: 'input.option', hint: rom ? 'drop the option, or flash one image: miflash flash boot boot.img --slot b' : 'drop the option, or give a ROM folder, archive or plan file' },
  );
}

async function listDevices(globals: GlobalOptions, long: boolean): Promise<void> {
  quietOnClosedStdout();
  const { listUsbDevices, FASTBOOT_USB_MATCH } = await import('../../transport/usb.js');
  const { TransportError } = await import('../../errors.js');
  let devices: Awaited<ReturnType<typeof listUsbDevices>> = [];
  try {
    devices = await listUsbDevices(FASTBOOT_USB_MATCH);
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    process.stderr.write(`miflash: warning: cannot scan USB: ${err.message}\n`);
  }
  const { readConnected } = await import('../../fastboot/connected.js');
  const network = readConnected();
  if (devices.length === 0 && network.length === 0 && !globals.json && process.stderr.isTTY) {
    // stdout stays empty as with AOSP fastboot; a person at a terminal learns why.
    process.stderr.write('no fastboot devices found on USB: put the phone in fastboot mode (volume down + power) and connect it.\n');
    process.stderr.write('Network devices are listed once remembered with miflash connect tcp:HOST (or named with -s tcp:HOST / udp:HOST).\n');
  }
  for (const d of devices) {
    const id = `usb:${d.portPath}`;
    if (globals.json) {
      process.stdout.write(JSON.stringify({ event: 'device', serial: d.serial, id, vendorId: d.vendorId, productId: d.productId, product: d.product, problem: d.problem }) + '\n');
      continue;
    }
    const hex = (n: number) => n.toString(16).padStart(4, '0');
    const extra = long ? `\t${hex(d.vendorId)}:${hex(d.productId)}${d.product ? ` ${d.product}` : ''}` : '';
    const problem = d.problem ? `\t(${d.problem})` : '';
    process.stdout.write(`${d.serial ?? '????????????'}\tfastboot\t${id}${extra}${problem}\n`);
  }
  // AOSP lists the connected network devices after USB, each "fastboot" if it answers, else "offline".
  const { parseNetworkAddress } = await import('../../fastboot/connected.js');
  const { openDevice } = await import('../../transport/open.js');
  for (const address of network) {
    let status = 'offline';
    try {
      const t = await openDevice(parseNetworkAddress(address), { timeoutMs: 2000 });
      await t.close().catch(() => {});
      status = 'fastboot';
    } catch {
      // offline (or not an address): listed as offline
    }
    if (globals.json) process.stdout.write(JSON.stringify({ event: 'device', id: address, network: true, status }) + '\n');
    else process.stdout.write(`${address}\t${status}\n`);
  }
}

