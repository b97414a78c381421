// AOSP commands for dynamic partitions and snapshot updates (fastbootd):
// create-/delete-/resize-logical-partition, snapshot-update, gsi. The wire
// behaviour is in src/fastboot/logical.ts.
import type { Command } from 'commander';
import { forEachDevice } from './device-context.js';

export function registerLogical(program: Command): void {
  program
    .command('create-logical-partition')
    .description('create logical partition NAME of SIZE bytes in super (fastbootd)')
    .argument('<name>')
    .argument('<size>')
    .action(async (name: string, size: string, _o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => (await import('../../fastboot/logical.js')).createLogicalPartition(d.client, name, size, d.emit)),
    );

  program
    .command('delete-logical-partition')
    .description('delete logical partition NAME (fastbootd)')
    .argument('<name>')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => (await import('../../fastboot/logical.js')).deleteLogicalPartition(d.client, name, d.emit)),
    );

  program
    .command('resize-logical-partition')
    .description('resize logical partition NAME to SIZE bytes (fastbootd; each slot with --slot all)')
    .argument('<name>')
    .argument('<size>')
    .option('--slot <slot>', "a, b, 'all' or 'other' (default: current slot)")
    .action(async (name: string, size: string, opts: { slot?: string }, cmd: Command) =>
      forEachDevice(cmd, async (d) => {
        const { resizeLogicalPartition } = await import('../../fastboot/logical.js');
        const done = await resizeLogicalPartition(d.client, name, size, { ...(opts.slot ? { slot: opts.slot } : {}), onEvent: d.emit });
        if (done.length === 0) d.emit({ type: 'warning', message: `${name} is not a logical partition on this device; nothing was resized` });
      }),
    );

  program
    .command('wipe-super')
    .description('reset super to an empty partition table from super_empty.img (default $ANDROID_PRODUCT_OUT/super_empty.img)')
    .argument('[super_empty]', 'super_empty.img')
    .option('--slot <slot>', "a, b or other (default: current slot)")
    .action(async (file: string | undefined, opts: { slot?: string }, cmd: Command) => {
      const { BadInputError } = await import('../../errors.js');
      let image = file;
      if (image === undefined) {
        const out = process.env.ANDROID_PRODUCT_OUT;
        if (!out) throw new BadInputError('wipe-super: no image given and ANDROID_PRODUCT_OUT is not set', { hint: 'usage: miflash wipe-super super_empty.img' });
        image = (await import('node:path')).join(out, 'super_empty.img');
      }
      const { readSuperEmpty, wipeSuper } = await import('../../fastboot/wipe-super.js');
      await readSuperEmpty(image); // a bad image is refused before connecting
      const globals = cmd.optsWithGlobals<import('./device-context.js').GlobalOptions>();
      const sparseLimit = globals.sparseLimit === undefined ? undefined : (await import('../size.js')).parseSize(globals.sparseLimit, '-S');
      await forEachDevice(cmd, async (d) => {
        await wipeSuper(d.client, image!, { ...(opts.slot ? { slot: opts.slot } : {}), ...(sparseLimit !== undefined ? { sparseLimit } : {}), onEvent: d.emit });
      });
    });

  program
    .command('snapshot-update')
    .description('cancel or merge a snapshot (Virtual A/B) update: snapshot-update [cancel|merge]')
    .argument('[action]', 'cancel or merge')
    .action(async (action: string | undefined, _o: unknown, cmd: Command) => {
      const { SNAPSHOT_ARGS, snapshotUpdate } = await import('../../fastboot/logical.js');
      if (action !== undefined && !(SNAPSHOT_ARGS as readonly string[]).includes(action)) {
        const { BadInputError } = await import('../../errors.js');
        throw new BadInputError(`snapshot-update: expected cancel or merge, not '${action}'`);
      }
      await forEachDevice(cmd, async (d) => snapshotUpdate(d.client, action, d.emit));
    });

  program
    .command('gsi')
    .description('wipe, disable or show the status of a GSI installation (fastbootd)')
    .argument('<args...>', 'wipe | disable | status')
    .action(async (args: string[], _o: unknown, cmd: Command) =>
      forEachDevice(cmd, async (d) => (await import('../../fastboot/logical.js')).gsiCommand(d.client, args, d.emit)),
    );
}
