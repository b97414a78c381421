// AOSP commands that move data through the device's RAM or read partitions
// back: boot, continue, stage, get_staged, fetch, and the boot image built on
// the host and flashed (flash:raw), signature (src/fastboot/ram.ts, fetch.ts
// hold the wire behaviour). Heavy modules load inside the actions.
import type { Command } from 'commander';
import { forEachDevice, withCtrlC, type GlobalOptions } from './device-context.js';

interface BootOptions {
  cmdline?: string;
  base?: string;
  kernelOffset?: string;
  ramdiskOffset?: string;
  tagsOffset?: string;
  dtbOffset?: string;
  secondOffset?: string;
  pageSize?: string;
  headerVersion?: string;
  osVersion?: string;
  osPatchLevel?: string;
  dtb?: string;
}

/** AOSP parses addresses with strtoul(…, 16) and the rest with strtoul(…, 0); miflash refuses what does not parse. */
function hexArg(v: string, flag: string): number {
  if (!/^(0x)?[0-9a-fA-F]+$/.test(v)) throw new Error(`${flag} '${v}': expected a hex address`);
  return Number.parseInt(v.replace(/^0x/i, ''), 16);
}
function intArg(v: string, flag: string): number {
  const n = /^0x[0-9a-f]+$/i.test(v) ? Number.parseInt(v.slice(2), 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new Error(`${flag} '${v}': expected a number`);
  return n;
}

export async function bootLayout(o: BootOptions): Promise<import('../../fastboot/bootimg.js').BootImageLayout> {
  const { DEFAULT_BOOT_LAYOUT, withOsPatchLevel, withOsVersion } = await import('../../fastboot/bootimg.js');
  const { BadInputError } = await import('../../errors.js');
  try {
    let osVersion = 0;
    if (o.osVersion !== undefined) osVersion = withOsVersion(osVersion, o.osVersion);
    if (o.osPatchLevel !== undefined) osVersion = withOsPatchLevel(osVersion, o.osPatchLevel);
    const d = DEFAULT_BOOT_LAYOUT;
    return {
      base: o.base !== undefined ? hexArg(o.base, '--base') : d.base,
      kernelOffset: o.kernelOffset !== undefined ? hexArg(o.kernelOffset, '--kernel-offset') : d.kernelOffset,
      ramdiskOffset: o.ramdiskOffset !== undefined ? hexArg(o.ramdiskOffset, '--ramdisk-offset') : d.ramdiskOffset,
      secondOffset: o.secondOffset !== undefined ? hexArg(o.secondOffset, '--second-offset') : d.secondOffset,
      tagsOffset: o.tagsOffset !== undefined ? hexArg(o.tagsOffset, '--tags-offset') : d.tagsOffset,
      dtbOffset: o.dtbOffset !== undefined ? hexArg(o.dtbOffset, '--dtb-offset') : d.dtbOffset,
      pageSize: o.pageSize !== undefined ? intArg(o.pageSize, '--page-size') : d.pageSize,
      headerVersion: o.headerVersion !== undefined ? intArg(o.headerVersion, '--header-version') : d.headerVersion,
      osVersion,
      ...(o.cmdline !== undefined ? { cmdline: o.cmdline } : {}),
      ...(o.dtb !== undefined ? { dtb: o.dtb } : {}),
    };
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw new BadInputError((err as Error).message);
  }
}

/** The boot image options `boot` and `flash:raw` share (AOSP's "boot image" group). */
function bootImageOptions(c: Command): Command {
  return c
    .option('--cmdline <text>', 'override the kernel command line')
    .option('--base <addr>', 'kernel base address (hex, default 0x10000000)')
    .option('--kernel-offset <addr>', 'kernel offset (hex, default 0x00008000)')
    .option('--ramdisk-offset <addr>', 'ramdisk offset (hex, default 0x01000000)')
    .option('--second-offset <addr>', 'second-stage offset (hex, default 0x00f00000)')
    .option('--tags-offset <addr>', 'tags offset (hex, default 0x00000100)')
    .option('--dtb-offset <addr>', 'dtb offset (hex, default 0x01100000)')
    .option('--page-size <bytes>', 'flash page size (default 2048)')
    .option('--header-version <n>', 'boot image header version 0-4 (default 0)')
    .option('--os-version <x.y.z>', 'OS version in the header (default 0.0.0)')
    .option('--os-patch-level <YYYY-MM-DD>', 'OS security patch level in the header')
    .option('--dtb <file>', 'DTB for header version 2');
}

export function registerRam(program: Command): void {
  bootImageOptions(
    program
      .command('boot')
      .description('download a boot image (or a raw kernel, wrapped in a boot image as AOSP does) and boot it from RAM')
      .argument('<kernel>', 'boot.img, or a raw kernel')
      .argument('[ramdisk]', 'ramdisk (raw kernel only)')
      .argument('[second]', 'second-stage bootloader (raw kernel only)'),
  ).action(async (kernel: string, ramdisk: string | undefined, second: string | undefined, opts: BootOptions, cmd: Command) => {
      const { loadBootableImage } = await import('../../fastboot/bootimg.js');
      const image = await loadBootableImage(kernel, ramdisk, second, await bootLayout(opts));
      if (image.created) process.stderr.write(`creating boot image - ${image.data.length} bytes\n`);
      await forEachDevice(cmd, async (d) => {
        const { bootImage } = await import('../../fastboot/ram.js');
        await withCtrlC((signal) => bootImage(d.client, image.data, { onEvent: d.emit, signal }));
      });
    });

  bootImageOptions(
    program
      .command('flash:raw')
      .description('build a boot image from KERNEL [RAMDISK [SECOND]] as `boot` does (a boot.img is taken as is) and flash it to PARTITION')
      .argument('<partition>', 'e.g. boot (the slot is added as for flash)')
      .argument('<kernel>', 'boot.img, or a raw kernel')
      .argument('[ramdisk]', 'ramdisk (raw kernel only)')
      .argument('[second]', 'second-stage bootloader (raw kernel only)')
      .option('--slot <slot>', "a, b, 'all' or 'other' (default: current slot)"),
  ).action(async (partition: string, kernel: string, ramdisk: string | undefined, second: string | undefined, opts: BootOptions & { slot?: string }, cmd: Command) => {
    const { loadBootableImage } = await import('../../fastboot/bootimg.js');
    const image = await loadBootableImage(kernel, ramdisk, second, await bootLayout(opts));
    if (image.created) process.stderr.write(`creating boot image - ${image.data.length} bytes\n`);
    await forEachDevice(cmd, async (d) => {
      const { flashRaw } = await import('../../fastboot/ram.js');
      await withCtrlC((signal) => flashRaw(d.client, partition, image.data, { ...(opts.slot ? { slot: opts.slot } : {}), onEvent: d.emit, signal }));
    });
  });

  program
    .command('signature')
    .description('send a 256-byte signature FILE for the next flash (download + signature)')
    .argument('<file>')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { stat } = await import('node:fs/promises');
      // Checked before connecting, so a wrong file never reaches the device (sendSignature checks again).
      const size = await stat(file).then(
        (st) => (st.isFile() ? st.size : -1),
        () => -1,
      );
      if (size !== 256) {
        const { BadInputError } = await import('../../errors.js');
        throw new BadInputError(size < 0 ? `could not load '${file}'` : `signature must be 256 bytes (got ${size}): ${file}`, { code: 'input.image' });
      }
      await forEachDevice(cmd, async (d) => {
        const { sendSignature } = await import('../../fastboot/ram.js');
        await sendSignature(d.client, file, d.emit);
      });
    });

  program
    .command('continue')
    .description('continue with autoboot (leave fastboot and boot normally)')
    .action(async (_o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { continueBoot } = await import('../../fastboot/ram.js');
        await continueBoot(d.client, d.emit);
      }),
    );

  program
    .command('stage')
    .description('send FILE to the device to stage it for the next command (never split)')
    .argument('<file>')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const sparseLimit = globals.sparseLimit === undefined ? undefined : (await import('../size.js')).parseSize(globals.sparseLimit, '-S');
      await forEachDevice(cmd, async (d) => {
        const { stageFile } = await import('../../fastboot/ram.js');
        await withCtrlC((signal) => stageFile(d.client, file, { ...(sparseLimit !== undefined ? { sparseLimit } : {}), onEvent: d.emit, signal }));
      });
    });

  program
    .command('get_staged')
    .alias('get-staged')
    .description('write the data the last command staged on the device to OUT')
    .argument('<out>')
    .action(async (out: string, _o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { getStaged } = await import('../../fastboot/ram.js');
        const bytes = await getStaged(d.client, out, d.emit);
        d.print(`${out}: ${bytes} bytes`, { event: 'staged', file: out, bytes });
      }),
    );

  program
    .command('fetch')
    .description('read PARTITION from the device into OUT (fastbootd)')
    .argument('<partition>')
    .argument('<out>')
    .option('--slot <slot>', "a, b, 'all' or 'other' (default: current slot)")
    .action(async (partition: string, out: string, opts: { slot?: string }, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { fetchPartition } = await import('../../fastboot/fetch.js');
        for (const r of await fetchPartition(d.client, partition, out, { ...(opts.slot ? { slot: opts.slot } : {}), onEvent: d.emit })) {
          d.print(`${r.partition}: ${r.bytes} bytes to ${out}`, { event: 'fetched', partition: r.partition, bytes: r.bytes, file: out });
        }
      }),
    );
}
