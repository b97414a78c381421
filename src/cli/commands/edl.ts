// `miflash edl …`: Qualcomm EDL (Sahara + Firehose) flashing from a ROM's
// rawprogram*.xml / patch*.xml, plus the device commands of edl-device.ts.
// Heavy modules load inside the actions.
import { Option, type Command } from 'commander';
import type { EdlPlan } from '../../edl/rom-plan.js';
import type { MemoryType } from '../../edl/firehose.js';
import { confirmOrAbort, memoryOption, note, oneDevice, renderer, sessionOptions, timeouts, withSession, type GlobalOpts, type SessionOpts } from './edl-common.js';
import { registerEdlDevice } from './edl-device.js';

interface PlanOpts extends GlobalOpts {
  memory?: MemoryType;
  programmer?: string;
  cache?: string;
  strict?: boolean;
}

interface FlashOpts extends PlanOpts {
  yes?: boolean;
  reset?: boolean;
  skipWrite?: boolean;
  dryRun?: boolean;
}

export function registerEdl(program: Command): void {
  const edl = program.command('edl').description('Qualcomm EDL (9008) flashing: Sahara + Firehose, rawprogram/patch XML');

  edl
    .command('plan')
    .description('show the programs and patches an EDL flash of ROM would run (no device needed)')
    .argument('<rom...>', 'ROM folder (with images/), .tgz/.zip, or rawprogram*.xml / patch*.xml files')
    .addOption(memoryOption())
    .option('--programmer <file>', 'Firehose programmer or multi-image list (qsahara_device_programmer.xml)')
    .option('--cache <dir>', 'extract archives under DIR')
    .option('--strict', 'unknown XML attributes are errors, not warnings')
    .action(async (rom: string[], _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as PlanOpts;
      const plan = await loadPlan(rom, opts, false);
      process.stdout.write(opts.json ? JSON.stringify(planJson(plan)) + '\n' : formatPlan(plan));
    });

  edl
    .command('flash')
    .description('flash ROM over EDL (asks for confirmation unless --yes)')
    .argument('<rom...>', 'ROM folder (with images/), .tgz/.zip, or rawprogram*.xml / patch*.xml files')
    .addOption(memoryOption())
    .option('--programmer <file>', 'Firehose programmer or multi-image list (qsahara_device_programmer.xml)')
    .option('--cache <dir>', 'extract archives under DIR')
    .option('--strict', 'unknown XML attributes are errors, not warnings')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--no-reset', 'leave the device in the programmer (no power reset at the end)')
    .option('--skip-write', 'dry run: upload the programmer, configure, check every range against the LUN sizes; write nothing, no reset')
    .option('--dry-run', 'same as --skip-write')
    .action(async (rom: string[], _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as FlashOpts;
      const dryRun = Boolean(opts.skipWrite || opts.dryRun);
      const spec = await oneDevice(opts);
      const plan = await loadPlan(rom, opts, true);
      const { EdlInputError } = await import('../../edl/errors.js');
      if (!plan.programmer) {
        throw new EdlInputError(`no Firehose programmer in ${plan.imagesDir}`, {
          code: 'edl.programmer-missing',
          hint: 'pass --programmer FILE (prog_*firehose*.elf/.mbn) or a multi-image list',
        });
      }
      const { loadSaharaImages, programmerWarnings } = await import('../../edl/programmer.js');
      const images = await loadSaharaImages(plan.programmer);
      for (const w of [...plan.warnings, ...programmerWarnings(images)]) note(opts, 'warning', w);
      if (!opts.yes && !dryRun) await confirm(plan);
      const { openEdlTransport } = await import('../../edl/usb.js');
      const { flashEdl } = await import('../../edl/flash.js');
      const t = await openEdlTransport(spec, { timeoutMs: 30_000 });
      try {
        const report = await flashEdl(t, plan, images, { timeouts: await timeouts(cmd, opts), reset: opts.reset, skipWrite: dryRun, onEvent: renderer(opts) });
        if (opts.json) process.stdout.write(JSON.stringify({ event: 'done', ...report }) + '\n');
        else if (report.dryRun) process.stderr.write('EDL dry run done: the plan fits the device; nothing was written (the programmer keeps running)\n');
        else process.stderr.write(`EDL flash done: ${report.commands} program commands, ${report.patches} patches${report.reset ? ', device reset' : ''}\n`);
      } finally {
        await t.close().catch(() => undefined);
      }
    });

  sessionOptions(
    edl.command('info').description('chip identity and storage of a device in EDL mode (uploads the programmer if needed)'),
  ).action(async (_o: unknown, cmd: Command) => {
    const opts = cmd.optsWithGlobals() as SessionOpts;
    await withSession(
      cmd,
      opts,
      async ({ session, memory }) => {
        const { readStorageInfo } = await import('../../edl/flash.js');
        const luns = await readStorageInfo(session, memory);
        const chip = session.firehose.chip;
        const out = { chip, configure: session.configure, sahara: session.sahara.mode, luns: luns.map(({ logs, ...rest }, lun) => ({ lun, ...rest })) };
        if (opts.json) process.stdout.write(JSON.stringify({ event: 'info', ...out }) + '\n');
        else {
          const c = session.configure;
          const { describeChip } = await import('../../edl/errors.js');
          if (describeChip(chip)) process.stdout.write(`${describeChip(chip)}\n`);
          process.stdout.write(`target ${c.targetName ?? '?'}  memory ${c.memoryName}  payload ${c.maxPayloadToTarget} bytes\n`);
          for (const l of out.luns) {
            const size = l.totalBlocks !== undefined && l.blockSize !== undefined ? `${l.totalBlocks} x ${l.blockSize} bytes` : 'size unknown';
            process.stdout.write(`LUN ${l.lun}: ${size}${l.memType ? `  ${l.memType}` : ''}${l.prodName ? `  ${l.prodName}` : ''}\n`);
          }
        }
      },
      { chipInfo: true },
    );
  });

  registerEdlDevice(edl);

  edl
    .command('emulate')
    .description('run an emulated EDL device on TCP (one sparse file per LUN: DIR/lun<N>.img); clients use -s tcp:HOST:PORT')
    .requiredOption('--listen <address>', 'where to listen, e.g. tcp:127.0.0.1:9008 (port 0 = any free port)')
    .requiredOption('--store <dir>', 'directory holding lun<N>.img')
    .option('--auth-required', 'behave like a Xiaomi auth-locked programmer (only nop and sig accepted)')
    .addOption(new Option('--memory <type>', 'storage type').choices(['ufs', 'emmc']).default('ufs'))
    .option('--luns <n>', 'number of LUNs (default 6 for UFS, 1 for eMMC)')
    .option('--lun-sectors <n>', 'NUM_DISK_SECTORS of every LUN, or N0,N1,… per LUN (default: a 256 GB UFS phone, LUN 0 = 67108864 x 4096 bytes; eMMC 64 GiB); files stay sparse')
    .option('--gpt', 'write a GPT (a Xiaomi-like layout) on every LUN that has none')
    .option('--max-payload <bytes>', 'MaxPayloadSizeToTargetInBytes the device accepts', '1048576')
    .option('--nak-on <tag>', 'answer NAK to every command with this Firehose tag')
    .option('--stall-on <tag>', 'stop answering at the first command with this Firehose tag')
    .option('--short-read', 'send half the data of a <read>, then stall')
    .option('--bad-sector <n>', 'a <read> covering this sector sends its data, then a NAK (a storage read error)')
    .option('--read64', 'request the programmer with READ_DATA64')
    .option('--chain <ids>', 'Sahara image ids to request in order, e.g. 59,36,13 (default 13)')
    .option('--firehose-running', 'start with the programmer already running (no Sahara)')
    .option('--log <file>', 'append one line per event / command received')
    .action(async (_o: unknown, cmd: Command) => {
      const { runEdlEmulate } = await import('../../emulator/edl/cli.js');
      await runEdlEmulate(cmd.opts());
    });
}

async function loadPlan(inputs: string[], opts: PlanOpts, requireFiles: boolean): Promise<EdlPlan> {
  const { buildEdlPlan } = await import('../../edl/rom-plan.js');
  let paths = inputs;
  if (inputs.length === 1 && /\.(tgz|tar\.gz|tar|zip)$/i.test(inputs[0]!)) {
    const { openRom } = await import('../../rom/index.js');
    paths = [(await openRom(inputs[0]!, opts.cache ? { cache: opts.cache } : {})).root];
  }
  return buildEdlPlan(paths, { memory: opts.memory, programmer: opts.programmer, requireFiles, strict: opts.strict });
}

function planJson(plan: EdlPlan): Record<string, unknown> {
  return {
    imagesDir: plan.imagesDir,
    rawprogramFiles: plan.rawprogramFiles,
    patchFiles: plan.patchFiles,
    memory: plan.memory,
    memorySource: plan.memorySource,
    sectorSize: plan.sectorSize ?? null,
    programmer: plan.programmer ? { kind: plan.programmer.kind, main: plan.programmer.main, listFile: plan.programmer.listFile, images: plan.programmer.images } : null,
    programs: plan.programs.map((p) => ({
      lun: p.lun,
      startSector: p.startSector,
      sectorSize: p.sectorSize,
      sectors: p.sectors,
      file: p.file,
      label: p.label,
      sparse: p.sparse,
      missing: p.missing,
      source: p.source,
      ...(p.prepared ? { commands: p.prepared.commands.length, bytes: p.prepared.bytes } : {}),
    })),
    erases: plan.operations.flatMap((o) => (o.kind === 'erase' ? [{ lun: o.erase.lun, startSector: o.erase.startSector, sectors: o.erase.numPartitionSectors, label: o.erase.label }] : [])),
    patches: plan.patches.map((p) => ({
      lun: p.lun,
      sectorSize: p.sectorSize,
      startSector: p.startSector,
      byteOffset: p.byteOffset,
      sizeInBytes: p.sizeInBytes,
      value: p.value,
      what: p.what,
    })),
    skipped: plan.skipped.map((e) => ({ lun: e.lun, startSector: e.startSector, label: e.label })),
    hostPatches: plan.hostPatches,
    bootableLun: plan.bootableLun ?? null,
    reset: true,
    warnings: plan.warnings,
  };
}

function formatPlan(plan: EdlPlan): string {
  const lines: string[] = [];
  const prog = plan.programmer ? `${plan.programmer.main}${plan.programmer.kind === 'multi' ? ` (+${plan.programmer.images.length - 1} chained images)` : ''}` : '(none found)';
  lines.push(`EDL plan for ${plan.imagesDir}`);
  lines.push(`programmer: ${prog}`);
  lines.push(`memory: ${plan.memory} (${plan.memorySource}), sector size ${plan.sectorSize ?? '?'}`);
  lines.push('');
  lines.push(`${'#'.padStart(3)}  ${'LUN'.padEnd(3)}  ${'START'.padEnd(22)} ${'SECTORS'.padStart(9)}  ${'SPARSE'.padEnd(6)}  ${'LABEL'.padEnd(16)} FILE`);
  plan.programs.forEach((p, i) => {
    lines.push(
      `${String(i + 1).padStart(3)}  ${String(p.lun).padEnd(3)}  ${p.startSector.padEnd(22)} ${String(p.sectors).padStart(9)}  ${(p.sparse ? 'yes' : 'no').padEnd(6)}  ${p.label.padEnd(16)} ${p.file}${p.missing ? '  (MISSING)' : ''}`,
    );
  });
  lines.push('');
  lines.push(`${plan.skipped.length} entries without a file are left alone`);
  lines.push(`patches: ${plan.patches.length} DISK patches${plan.hostPatches ? ` (${plan.hostPatches} host-file patches not sent)` : ''}`);
  if (plan.bootableLun !== undefined) lines.push(`then: setbootablestoragedrive ${plan.bootableLun}`);
  lines.push('then: power reset');
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

async function confirm(plan: EdlPlan): Promise<void> {
  process.stderr.write(formatPlan(plan));
  await confirmOrAbort(`Flash ${plan.programs.length} images over EDL? This overwrites the device storage.`, 'EDL flash not confirmed (pass --yes to skip the question)');
}
