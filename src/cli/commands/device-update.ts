// AOSP `update ZIP`, `format[:FS_TYPE[:SIZE]] PARTITION` and `-w` on their own.
// `update` becomes a two-step plan (android-info.txt gate + update) run by the
// same runner as `miflash flash ROM`: images are checked before the first
// write, user data is only wiped after a confirmation (or --yes), and the
// device is followed into fastbootd for dynamic partitions.
import type { Command } from 'commander';
import { forEachDevice, type GlobalOptions } from './device-context.js';

interface UpdateOptions {
  wipe?: boolean;
  skipReboot?: boolean;
  skipSecondary?: boolean;
  slot?: string;
  setActive?: string | boolean;
  force?: boolean;
  disableSuperOptimization?: boolean;
  disableFastbootInfo?: boolean;
  excludeDynamicPartitions?: boolean;
  fsOptions?: string;
  yes?: boolean;
  dryRun?: boolean;
  rebootTimeout?: string;
}

/** The AOSP client options `update` and `flashall` share. */
function updateOptions(c: Command): Command {
  return c
    .option('-w, --wipe', 'also wipe userdata, cache and metadata (fresh filesystems built on the host)')
    .option('--skip-reboot', 'do not reboot when done')
    .option('--skip-secondary', 'do not flash *_other images to the other slot')
    .option('--slot <slot>', "flash slot a, b, 'all' or 'other' (default: the current slot)")
    .option('--set-active [slot]', 'make SLOT (default: the slot flashed) active before rebooting')
    .option('--force', 'go on when android-info.txt requirements are not met, and flash a dynamic partition from the bootloader if the zip says so')
    .option('--disable-super-optimization', 'accepted for AOSP compatibility: miflash always updates super through fastbootd')
    .option('--disable-fastboot-info', "use AOSP's image table even when fastboot-info.txt is there")
    .option('--exclude-dynamic-partitions', 'flash only the partitions outside super (those super_empty.img does not list), all from the bootloader: no update-super, no fastbootd')
    .option('--fs-options <list>', 'with -w: casefold,projid,compress for the filesystems built (as AOSP --fs-options)')
    .option('--yes', 'do not ask before wiping user data')
    .option('--dry-run', 'read getvars, check the requirements and every image; write nothing')
    .option('--reboot-timeout <seconds>', 'wait this long for the device after a reboot into fastbootd (default 60)');
}

async function runAll(target: string, prebuilt: Awaited<ReturnType<typeof updatePlan>>, opts: UpdateOptions, globals: GlobalOptions): Promise<void> {
  if (opts.excludeDynamicPartitions && opts.slot === 'all') {
    // v35 cannot name one partition per task with --slot all and aborts; say so before anything is sent.
    const { BadInputError } = await import('../../errors.js');
    throw new BadInputError('--exclude-dynamic-partitions cannot be combined with --slot all (which partition of each pair is dynamic depends on one slot)', {
      hint: 'use --slot a or --slot b; nothing has been written to the device',
    });
  }
  const fsOptions = await parseFsOptions(opts.fsOptions);
  const { flashRom } = await import('../flash-rom.js');
  process.exitCode = await flashRom(
    target,
    {
      prebuilt,
      ...(opts.yes ? { yes: true } : {}),
      ...(opts.dryRun ? { dryRun: true } : {}),
      ...(opts.rebootTimeout !== undefined ? { rebootTimeout: opts.rebootTimeout } : {}),
      update: {
        ...(opts.slot !== undefined ? { slot: opts.slot } : {}),
        ...(opts.skipSecondary ? { skipSecondary: true } : {}),
        ...(opts.force ? { force: true } : {}),
        ...(opts.setActive !== undefined ? { setActive: opts.setActive === true ? '' : String(opts.setActive) } : {}),
        ...(opts.disableFastbootInfo ? { disableFastbootInfo: true } : {}),
        ...(opts.excludeDynamicPartitions ? { excludeDynamicPartitions: true } : {}),
        ...(fsOptions ? { fsOptions } : {}),
      },
    },
    globals,
  );
}

/** The plan `fastboot [-w] [--skip-reboot] update ZIP` amounts to. */
export async function updatePlan(zip: string, o: { wipe: boolean; skipReboot: boolean; force: boolean }): Promise<{ plan: import('../../plan/schema.js').FlashPlan; rom: import('../../rom/rom.js').Rom }> {
  const { basename, dirname, resolve } = await import('node:path');
  const { stat } = await import('node:fs/promises');
  const { BadInputError } = await import('../../errors.js');
  const { FlashPlanSchema } = await import('../../plan/schema.js');
  const full = resolve(zip);
  const st = await stat(full).catch(() => undefined);
  if (!st?.isFile()) throw new BadInputError(`cannot open '${zip}': no such file`, { code: 'input.image', hint: 'usage: miflash update [-w] ZIP (default update.zip)' });
  const root = dirname(full);
  const file = basename(full);
  const plan = FlashPlanSchema.parse({
    version: 1,
    source: { script: `update ${file}`, dialect: 'sh', mode: o.wipe ? 'clean' : 'other', family: 'google', rom: root },
    warnings: o.force ? ['--force: android-info.txt requirements that are not met only warn'] : [],
    steps: [
      // --force: AOSP proceeds past unmet requirements ("requirements not met! but proceeding due to --force").
      { kind: 'gate.android-info', line: 0, onFailure: o.force ? 'ignore' : 'abort', file, requirements: null },
      { kind: 'update', line: 0, onFailure: 'abort', file, wipe: o.wipe, skipReboot: o.skipReboot },
    ],
  });
  return { plan, rom: { root, imagesDir: root, scripts: [], source: { kind: 'folder', input: root } } };
}

/**
 * The plan `fastboot [-w] [--skip-reboot] flashall` amounts to: the images of
 * $ANDROID_PRODUCT_OUT used in place, android-info.txt from that folder
 * (required, as AOSP: "could not read android-info.txt").
 */
export async function flashallPlan(productOut: string, o: { wipe: boolean; skipReboot: boolean; force: boolean }): Promise<{ plan: import('../../plan/schema.js').FlashPlan; rom: import('../../rom/rom.js').Rom }> {
  const { basename, dirname, join, resolve } = await import('node:path');
  const { readFile } = await import('node:fs/promises');
  const { BadInputError } = await import('../../errors.js');
  const { FlashPlanSchema } = await import('../../plan/schema.js');
  const { parseAndroidInfo } = await import('../../rom/sidecar.js');
  const full = resolve(productOut);
  const text = await readFile(join(full, 'android-info.txt'), 'utf8').catch(() => undefined);
  if (text === undefined) throw new BadInputError(`could not read android-info.txt in ${full}`, { code: 'rom.android-info-missing', hint: 'point ANDROID_PRODUCT_OUT at a product build folder (out/target/product/NAME)' });
  const root = dirname(full);
  const file = basename(full);
  const plan = FlashPlanSchema.parse({
    version: 1,
    source: { script: `flashall ${file}`, dialect: 'sh', mode: o.wipe ? 'clean' : 'other', family: 'google', rom: root },
    warnings: o.force ? ['--force: android-info.txt requirements that are not met only warn'] : [],
    steps: [
      { kind: 'gate.android-info', line: 0, onFailure: o.force ? 'ignore' : 'abort', file, requirements: parseAndroidInfo(text).requirements },
      { kind: 'update', line: 0, onFailure: 'abort', file, wipe: o.wipe, skipReboot: o.skipReboot },
    ],
  });
  return { plan, rom: { root, imagesDir: root, scripts: [], source: { kind: 'folder', input: root } } };
}

export function registerUpdate(program: Command): void {
  updateOptions(
    program
      .command('update')
      .description('flash every partition from an update / factory image zip, as the AOSP client does (dynamic partitions through fastbootd)')
      .argument('[zip]', 'the update zip (default update.zip)', 'update.zip'),
  )
    .action(async (zip: string, opts: UpdateOptions, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions & { wipe?: boolean }>();
      const wipe = Boolean(opts.wipe || globals.wipe);
      // --set-active before the command is the program's option (AOSP takes options anywhere).
      const o = opts.setActive === undefined && globals.setActive !== undefined ? { ...opts, setActive: globals.setActive } : opts;
      await runAll(zip, await updatePlan(zip, { wipe, skipReboot: Boolean(opts.skipReboot), force: Boolean(opts.force) }), o, globals);
    });

  const flashall = program
    .command('flashall')
    .description('flash every partition from $ANDROID_PRODUCT_OUT (a build\'s product folder), as the AOSP client does');
  updateOptions(flashall).action(async (opts: UpdateOptions, cmd: Command) => {
    const globals = cmd.optsWithGlobals<GlobalOptions & { wipe?: boolean }>();
    const out = process.env.ANDROID_PRODUCT_OUT;
    if (!out) {
      const { BadInputError } = await import('../../errors.js');
      throw new BadInputError('flashall: ANDROID_PRODUCT_OUT is not set', { hint: 'set it to the product build folder, or use miflash update ZIP' });
    }
    // AOSP: with --slot all, secondary images are not flashed.
    const withActive = opts.setActive === undefined && globals.setActive !== undefined ? { ...opts, setActive: globals.setActive } : opts;
    const o = opts.slot === 'all' ? { ...withActive, skipSecondary: true } : withActive;
    const wipe = Boolean(opts.wipe || globals.wipe);
    await runAll(out, await flashallPlan(out, { wipe, skipReboot: Boolean(opts.skipReboot), force: Boolean(opts.force) }), o, globals);
  });

  program
    .command('wipe', { hidden: true })
    .description('wipe userdata, cache and metadata (what `miflash -w` runs)')
    .option('--yes', 'do not ask before wiping')
    .option('--fs-options <list>', 'casefold,projid,compress for the filesystems built (as AOSP -w --fs-options)')
    .option('--force', 'first cancel a snapshot (Virtual A/B) update in progress, as AOSP -w --force')
    .action(async (_o: unknown, cmd: Command) => wipeOnly(cmd));

  program
    .command('format')
    .description('format PARTITION with a filesystem built on the host (mke2fs / mkfs.f2fs), as AOSP format[:FS_TYPE[:SIZE]]')
    .argument('<partition>')
    .option('--fs-type <type>', 'ext4 or f2fs (default: the partition type the device reports); also format:TYPE')
    .option('--size <bytes>', 'filesystem size (default: the partition size); also format:TYPE:SIZE')
    .option('--slot <slot>', "a, b, 'all' or 'other' (default: current slot)")
    .option('--fs-options <list>', 'casefold,projid,compress (as AOSP --fs-options)')
    .action(async (partition: string, opts: { fsType?: string; size?: string; slot?: string; fsOptions?: string }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<GlobalOptions>();
      const sparseLimit = globals.sparseLimit === undefined ? undefined : (await import('../size.js')).parseSize(globals.sparseLimit, '-S');
      const fsOptions = await parseFsOptions(opts.fsOptions);
      await forEachDevice(cmd, async (d) => {
        const { formatCommand } = await import('../../plan/wipe.js');
        await formatCommand(d.client, partition, {
          onEvent: d.emit,
          ...(opts.fsType ? { fsType: opts.fsType } : {}),
          ...(opts.size ? { size: opts.size } : {}),
          ...(opts.slot ? { slot: opts.slot } : {}),
          ...(sparseLimit !== undefined ? { sparseLimit } : {}),
          ...(fsOptions ? { fsOptions } : {}),
        });
      });
    });
}

export async function parseFsOptions(text: string | undefined): Promise<import('../../fastboot/mkfs.js').FsOptions | undefined> {
  if (text === undefined) return undefined;
  const out: Record<string, boolean> = {};
  for (const o of text.split(',')) {
    if (!['casefold', 'projid', 'compress'].includes(o)) {
      const { BadInputError } = await import('../../errors.js');
      throw new BadInputError(`--fs-options: unsupported option '${o}' (casefold, projid, compress)`);
    }
    out[o] = true;
  }
  return out;
}

/**
 * `miflash -w` with no command: wipe userdata, cache and metadata (AOSP
 * `fastboot -w`), after a confirmation unless --yes.
 */
export async function wipeOnly(cmd: Command): Promise<void> {
  const globals = cmd.optsWithGlobals<GlobalOptions & { yes?: boolean; fsOptions?: string; force?: boolean }>();
  const fsOptions = await parseFsOptions(globals.fsOptions);
  const { AbortedError } = await import('../../errors.js');
  if (!globals.yes) {
    if (!process.stdin.isTTY || !process.stderr.isTTY) {
      throw new AbortedError('-w erases user data and needs a confirmation', { hint: 'pass --yes to confirm in advance' });
    }
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question('This erases userdata, cache and metadata (all user data). Continue? [y/N] ');
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) throw new AbortedError('not confirmed; nothing has been written to the device');
  }
  const sparseLimit = globals.sparseLimit === undefined ? undefined : (await import('../size.js')).parseSize(globals.sparseLimit, '-S');
  await forEachDevice(cmd, async (d) => {
    const { wipeNote, wipeUserData } = await import('../../plan/wipe.js');
    if (globals.force) {
      // v35 CancelSnapshotIfNeeded: userdata and metadata cannot be wiped under a snapshot update.
      const { cancelSnapshotIfNeeded } = await import('../../fastboot/logical.js');
      await cancelSnapshotIfNeeded(d.client, d.emit);
    }
    const note = wipeNote(await wipeUserData(d.client, d.emit, { ...(sparseLimit !== undefined ? { sparseLimit } : {}), ...(fsOptions ? { fsOptions } : {}) }), '-w');
    if (note) d.emit({ type: 'warning', message: note });
  });
}
