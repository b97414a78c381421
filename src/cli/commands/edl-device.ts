// `miflash edl storage | gpt | read | erase | reset`: one device in EDL mode,
// addressed by partition label (from the LUN GPTs) or by LUN / start / count.
// read streams to a file in constant memory; erase is guarded (confirmation,
// --force for identity data and the GPT itself, --skip-write dry run).
import { Option, type Command } from 'commander';
import type { FirehoseClient, MemoryType } from '../../edl/firehose.js';
import type { LunGpt, LunInfo } from '../../edl/luns.js';
import type { Target, TargetSpec } from '../../edl/target.js';
import { confirmOrAbort, emitJson, humanBytes, renderer, sessionOptions, usage, withSession, type SessionOpts } from './edl-common.js';

interface RangeOpts extends SessionOpts {
  lun?: string;
  start?: string;
  sectors?: string;
}

interface ReadOpts extends RangeOpts {
  sparse?: boolean;
}

interface EraseOpts extends RangeOpts {
  yes?: boolean;
  force?: boolean;
  skipWrite?: boolean;
  dryRun?: boolean;
}

interface ResetOpts extends SessionOpts {
  delay?: string;
}

function rangeOptions(c: Command): Command {
  return c
    .option('--lun <n>', 'LUN (physical partition); with a label: only look there')
    .option('--start <sector>', 'first sector (a number or an expression such as NUM_DISK_SECTORS-5)')
    .option('--sectors <n>', 'number of sectors');
}

function integer(name: string, v: string): number | undefined {
  return /^(\d+|0x[0-9a-f]+)$/i.test(v) ? Number(v) : undefined;
}

/** LABEL, or --lun N --start S --sectors K (all three). */
async function targetSpec(label: string | undefined, opts: RangeOpts): Promise<TargetSpec> {
  const lun = opts.lun === undefined ? undefined : integer('lun', opts.lun);
  if (opts.lun !== undefined && lun === undefined) await usage(`--lun: expected a LUN number, found "${opts.lun}"`);
  const ranged = opts.start !== undefined || opts.sectors !== undefined;
  if (label !== undefined) {
    if (ranged) await usage('give either a partition LABEL or --lun/--start/--sectors, not both');
    return { kind: 'label', label, lun };
  }
  if (!ranged || lun === undefined || opts.start === undefined || opts.sectors === undefined) {
    await usage('name a partition (LABEL) or a range with all of --lun N --start S --sectors K');
  }
  const sectors = integer('sectors', opts.sectors!);
  if (sectors === undefined || sectors < 1) await usage(`--sectors: expected a count >= 1, found "${opts.sectors}"`);
  return { kind: 'range', lun: lun!, start: opts.start!, sectors: sectors! };
}

/** Sector size (probed), then every LUN's size. */
async function measure(fh: FirehoseClient, memory: MemoryType): Promise<LunInfo[]> {
  const { probeOrder } = await import('../../edl/flash.js');
  const { discoverLuns } = await import('../../edl/luns.js');
  const sectorSize = await fh.probeSectorSize(probeOrder(memory));
  return discoverLuns(fh, memory, sectorSize);
}

function targetJson(t: Target): Record<string, unknown> {
  return { lun: t.lun, label: t.label ?? null, start: t.start, sectors: t.sectors, sectorSize: t.sectorSize, bytes: t.sectors * t.sectorSize };
}

export function registerEdlDevice(edl: Command): void {
  sessionOptions(edl.command('storage').description('getstorageinfo of every LUN: blocks, block size, size, memory type (table or --json)')).action(
    async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as SessionOpts;
      await withSession(cmd, opts, async ({ session, memory }) => {
        const { readStorageInfo } = await import('../../edl/flash.js');
        const luns = (await readStorageInfo(session, memory)).map(({ logs, ...rest }, lun) => ({
          lun,
          ...rest,
          bytes: rest.totalBlocks !== undefined && rest.blockSize !== undefined ? rest.totalBlocks * rest.blockSize : null,
        }));
        if (opts.json) return emitJson('storage', { memory: session.configure.memoryName, luns });
        const rows = [['LUN', 'BLOCKS', 'BLOCK', 'SIZE', 'TYPE', 'PRODUCT']];
        for (const l of luns) {
          rows.push([String(l.lun), String(l.totalBlocks ?? '?'), String(l.blockSize ?? '?'), l.bytes === null ? '?' : humanBytes(l.bytes), l.memType ?? '', l.prodName ?? '']);
        }
        process.stdout.write(table(rows, [true, true, true, true, false, false]));
      });
    },
  );

  sessionOptions(edl.command('gpt').description('the GPT of every LUN: header and partitions, CRCs checked, backup compared (table or --json)'))
    .option('--lun <n>', 'only this LUN')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as RangeOpts;
      const only = opts.lun === undefined ? undefined : integer('lun', opts.lun);
      if (opts.lun !== undefined && only === undefined) await usage(`--lun: expected a LUN number, found "${opts.lun}"`);
      await withSession(cmd, opts, async ({ session, memory }) => {
        const { readLunGpt } = await import('../../edl/luns.js');
        const luns = await measure(session.firehose, memory);
        const scope = only === undefined ? luns : luns.filter((l) => l.lun === only);
        if (scope.length === 0) await usage(`--lun ${only}: the device has LUNs ${luns.map((l) => l.lun).join(', ')}`);
        const gpts: LunGpt[] = [];
        for (const l of scope) gpts.push(await readLunGpt(session.firehose, l));
        if (opts.json) return emitJson('gpt', { luns: gpts });
        process.stdout.write(gpts.map(formatGpt).join('\n'));
      });
    });

  rangeOptions(
    sessionOptions(
      edl
        .command('read')
        .description('read a partition (by GPT label) or a sector range to a file, streamed in constant memory; all-zero blocks stay holes')
        .usage('[options] LABEL OUT  |  [options] --lun N --start S --sectors K OUT')
        .argument('<args...>', 'LABEL OUT, or OUT with --lun/--start/--sectors'),
    ),
  )
    .option('--sparse', 'write an Android sparse image (as img2simg would) instead of a raw one')
    .action(async (args: string[], _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as ReadOpts;
      const ranged = opts.start !== undefined || opts.sectors !== undefined;
      if (args.length !== (ranged ? 1 : 2)) await usage(ranged ? 'with --lun/--start/--sectors give only OUT' : 'usage: miflash edl read LABEL OUT (or --lun N --start S --sectors K OUT)');
      const spec = await targetSpec(ranged ? undefined : args[0], opts);
      const out = args.at(-1)!;
      await withSession(cmd, opts, async ({ session, memory }) => {
        const { resolveTarget, describeTarget } = await import('../../edl/target.js');
        const { readToFile } = await import('../../edl/backup.js');
        const luns = await measure(session.firehose, memory);
        const { target } = await resolveTarget(session.firehose, luns, spec);
        const render = renderer(opts);
        const label = target.label ?? `LUN ${target.lun}`;
        if (!opts.json) process.stderr.write(`reading ${describeTarget(target)} to ${out}\n`);
        const r = await readToFile(session.firehose, target, out, {
          sparse: opts.sparse,
          onProgress: (sent, bytes) => render({ type: 'progress', label, sent, bytes }),
        });
        if (opts.json) return emitJson('read', { ...targetJson(target), ...r });
        const extra = r.format === 'sparse' ? `Android sparse image, ${r.chunks} chunks` : `raw, ${humanBytes(r.holes ?? 0)} of zero blocks left as holes`;
        process.stderr.write(`read ${humanBytes(r.bytes)} into ${out} (${humanBytes(r.outputSize)}, ${extra})\n`);
      });
    });

  rangeOptions(
    sessionOptions(
      edl
        .command('erase')
        .description('erase a partition (by GPT label) or a sector range (asks first; --force for identity data and the GPT itself)')
        .usage('[options] LABEL  |  [options] --lun N --start S --sectors K')
        .argument('[label]', 'partition name from the GPT (or use --lun/--start/--sectors)'),
    ),
  )
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--force', 'allow erasing identity / calibration partitions (persist, modemst*, fsg, devinfo, frp, secdata, …), the GPT sectors, or a range on a LUN without a valid GPT')
    .option('--skip-write', 'dry run: resolve and check the range on the device, erase nothing')
    .option('--dry-run', 'same as --skip-write')
    .action(async (label: string | undefined, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as EraseOpts;
      const dryRun = Boolean(opts.skipWrite || opts.dryRun);
      const spec = await targetSpec(label, opts);
      await withSession(cmd, opts, async ({ session, memory }) => {
        const { resolveTarget, describeTarget, eraseRefusals } = await import('../../edl/target.js');
        const { GateRefusedError } = await import('../../errors.js');
        const luns = await measure(session.firehose, memory);
        const { target } = await resolveTarget(session.firehose, luns, spec, { withGpt: true });
        const refusals = eraseRefusals(target);
        const what = describeTarget(target);
        if (refusals.length > 0 && !opts.force) {
          throw new GateRefusedError(`refusing to erase ${what}: ${refusals.join('; ')}`, {
            code: 'edl.erase-refused',
            hint: 'back it up first (`miflash edl read`); pass --force only if you are sure',
          });
        }
        if (dryRun) {
          if (opts.json) return emitJson('erase', { ...targetJson(target), dryRun: true, forced: refusals });
          process.stderr.write(`dry run: would erase ${what}${refusals.length ? ` (forced: ${refusals.join('; ')})` : ''}; nothing was erased\n`);
          return;
        }
        if (!opts.yes) await confirmOrAbort(`Erase ${what} (${humanBytes(target.sectors * target.sectorSize)})? This cannot be undone.`, 'EDL erase not confirmed (pass --yes to skip the question)');
        await session.firehose.erase({ lun: target.lun, sectorSize: target.sectorSize, startSector: target.start, sectors: target.sectors, label: target.label });
        if (opts.json) return emitJson('erase', { ...targetJson(target), dryRun: false, forced: refusals });
        process.stderr.write(`erased ${what}\n`);
      });
    });

  sessionOptions(edl.command('reset').description('power command: reset (reboot), off, or edl (back into EDL / Sahara)').argument('[mode]', 'reset | off | edl', 'reset'), { reset: false })
    .addOption(new Option('--delay <seconds>', 'DelayInSeconds: let the ACK get out before the device drops off the bus').default('1'))
    .action(async (mode: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as ResetOpts;
      const values: Record<string, 'reset' | 'off' | 'reset_to_edl'> = { reset: 'reset', off: 'off', edl: 'reset_to_edl' };
      const value = values[mode];
      if (!value) await usage(`reset mode "${mode}": expected reset, off or edl`);
      const delay = integer('delay', opts.delay ?? '1');
      if (delay === undefined) await usage(`--delay: expected seconds, found "${opts.delay}"`);
      await withSession(
        cmd,
        { ...opts, reset: false },
        async ({ session }) => {
          await session.firehose.power(value!, delay);
          if (opts.json) return emitJson('reset', { mode, value: value! });
          process.stderr.write(`device ${mode === 'off' ? 'powered off' : mode === 'edl' ? 'reset into EDL' : 'reset'}\n`);
        },
        { skipStorageInit: true },
      );
    });
}

function table(rows: string[][], right: boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function formatGpt(g: LunGpt): string {
  const size = g.sectors !== undefined ? `${g.sectors} sectors x ${g.sectorSize} bytes (${humanBytes(g.sectors * g.sectorSize)})` : `size unknown, ${g.sectorSize}-byte sectors`;
  const status =
    g.status === 'none'
      ? 'no GPT'
      : g.status === 'ok'
        ? `GPT ok (primary and backup valid, identical), ${g.partitions.length} partitions`
        : g.status === 'degraded'
          ? `GPT degraded: using the ${g.source} copy, ${g.partitions.length} partitions`
          : 'GPT corrupt: neither copy is valid';
  const lines = [`LUN ${g.lun}: ${size}, ${status}`];
  const h = g.source === 'backup' ? g.backup.header : g.primary.header;
  if (h && g.status !== 'corrupt') {
    lines.push(`  disk GUID ${h.diskGuid}, usable sectors ${h.firstUsableLba}..${h.lastUsableLba}, ${h.entryCount} entries of ${h.entrySize} bytes at LBA ${h.entriesLba}`);
  }
  for (const p of g.problems) lines.push(`  ! ${p}`);
  for (const n of g.notes) lines.push(`  note: ${n}`);
  if (g.partitions.length > 0) {
    const rows = [['#', 'NAME', 'FIRST', 'LAST', 'SECTORS', 'SIZE', 'TYPE', 'ATTRIBUTES']];
    for (const p of g.partitions) {
      const n = p.lastLba - p.firstLba + 1;
      rows.push([String(p.index + 1), p.name, String(p.firstLba), String(p.lastLba), String(n), humanBytes(n * g.sectorSize), p.typeGuid, p.attributes === '0x0000000000000000' ? '' : p.attributes]);
    }
    lines.push(
      table(rows, [true, false, true, true, true, true, false, false])
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
  return lines.join('\n') + '\n';
}
