// `miflash edl …`: Qualcomm EDL (Sahara + Firehose) flashing from a ROM's
// rawprogram*.xml / patch*.xml. Heavy modules load inside the actions.
import { Option, type Command } from 'commander';
import type { EdlPlan } from '../../edl/rom-plan.js';
import type { EdlFlashEvent } from '../../edl/flash.js';
import type { FirehoseTimeouts, MemoryType } from '../../edl/firehose.js';

interface GlobalOpts {
  serial?: string[];
  all?: boolean;
  json?: boolean;
  timeout?: string;
}

interface PlanOpts extends GlobalOpts {
  memory?: MemoryType;
  programmer?: string;
  cache?: string;
  strict?: boolean;
}

interface FlashOpts extends PlanOpts {
  yes?: boolean;
  reset?: boolean;
}

interface InfoOpts extends GlobalOpts {
  memory?: MemoryType;
  programmer?: string;
  rom?: string;
  reset?: boolean;
}

const memoryOption = (): Option => new Option('--memory <type>', 'storage type (default: from the programmer name, else the sector size)').choices(['ufs', 'emmc']);

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
    .action(async (rom: string[], _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as FlashOpts;
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
      if (!opts.yes) await confirm(plan);
      const { openEdlTransport } = await import('../../edl/usb.js');
      const { flashEdl } = await import('../../edl/flash.js');
      const t = await openEdlTransport(spec, { timeoutMs: 30_000 });
      try {
        const report = await flashEdl(t, plan, images, { timeouts: await timeouts(cmd, opts), reset: opts.reset, onEvent: renderer(opts) });
        if (opts.json) process.stdout.write(JSON.stringify({ event: 'done', ...report }) + '\n');
        else process.stderr.write(`EDL flash done: ${report.commands} program commands, ${report.patches} patches${report.reset ? ', device reset' : ''}\n`);
      } finally {
        await t.close().catch(() => undefined);
      }
    });

  edl
    .command('info')
    .description('storage information from a device in EDL mode (uploads the programmer if needed)')
    .addOption(memoryOption())
    .option('--programmer <file>', 'Firehose programmer or multi-image list')
    .option('--rom <dir>', 'take the programmer from this ROM\'s images/')
    .option('--reset', 'power-reset the device afterwards')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as InfoOpts;
      const spec = await oneDevice(opts);
      const { programmerFromPath, loadSaharaImages, memoryFromName } = await import('../../edl/programmer.js');
      let set = opts.programmer ? await programmerFromPath(opts.programmer) : undefined;
      if (!set && opts.rom) {
        const { buildEdlPlan } = await import('../../edl/rom-plan.js');
        set = (await buildEdlPlan([opts.rom], { memory: opts.memory })).programmer;
      }
      const images = set ? await loadSaharaImages(set) : new Map();
      const memory: MemoryType = opts.memory ?? (set ? memoryFromName(set.main) : undefined) ?? 'ufs';
      const { openEdlTransport } = await import('../../edl/usb.js');
      const { openEdlSession, readStorageInfo } = await import('../../edl/flash.js');
      const t = await openEdlTransport(spec, { timeoutMs: 30_000 });
      try {
        const session = await openEdlSession(t, images, memory, { timeouts: await timeouts(cmd, opts), programmer: set?.main, onEvent: renderer(opts), chipInfo: true });
        const luns = await readStorageInfo(session, memory);
        if (opts.reset) await session.firehose.power('reset', 1);
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
      } finally {
        await t.close().catch(() => undefined);
      }
    });

  edl
    .command('emulate')
    .description('run an emulated EDL device on TCP (one sparse file per LUN: DIR/lun<N>.img); clients use -s tcp:HOST:PORT')
    .requiredOption('--listen <address>', 'where to listen, e.g. tcp:127.0.0.1:9008 (port 0 = any free port)')
    .requiredOption('--store <dir>', 'directory holding lun<N>.img')
    .option('--auth-required', 'behave like a Xiaomi auth-locked programmer (only nop and sig accepted)')
    .addOption(new Option('--memory <type>', 'storage type').choices(['ufs', 'emmc']).default('ufs'))
    .option('--luns <n>', 'number of LUNs (default 6 for UFS, 1 for eMMC)')
    .option('--lun-sectors <n>', 'NUM_DISK_SECTORS of every LUN')
    .option('--max-payload <bytes>', 'MaxPayloadSizeToTargetInBytes the device accepts', '1048576')
    .option('--nak-on <tag>', 'answer NAK to every command with this Firehose tag')
    .option('--stall-on <tag>', 'stop answering at the first command with this Firehose tag')
    .option('--short-read', 'send half the data of a <read>, then stall')
    .option('--read64', 'request the programmer with READ_DATA64')
    .option('--chain <ids>', 'Sahara image ids to request in order, e.g. 59,36,13 (default 13)')
    .option('--firehose-running', 'start with the programmer already running (no Sahara)')
    .option('--log <file>', 'append one line per event / command received')
    .action(async (_o: unknown, cmd: Command) => {
      const { runEdlEmulate } = await import('../../emulator/edl/cli.js');
      await runEdlEmulate(cmd.opts());
    });
}

async function oneDevice(opts: GlobalOpts): Promise<string | undefined> {
  if (opts.all) await usage('--all is not supported for EDL: flash one device at a time (-s SERIAL, usb:PORT or tcp:HOST:PORT)');
  if ((opts.serial?.length ?? 0) > 1) await usage('EDL flashes one device at a time: pass a single -s');
  return opts.serial?.[0];
}

async function usage(message: string): Promise<never> {
  const { BadInputError } = await import('../../errors.js');
  throw new BadInputError(message);
}

/** qdl's per-step timeouts, each capped by an explicit --timeout. */
async function timeouts(cmd: Command, opts: GlobalOpts): Promise<Partial<FirehoseTimeouts> | undefined> {
  const source = cmd.getOptionValueSourceWithGlobals('timeout');
  if (source !== 'cli' && source !== 'env') return undefined;
  const ms = Number(opts.timeout);
  if (!Number.isFinite(ms) || ms <= 0) await usage(`--timeout: expected milliseconds, found "${opts.timeout}"`);
  const { cappedTimeouts } = await import('../../edl/firehose.js');
  return cappedTimeouts(ms);
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

function note(opts: GlobalOpts, level: string, message: string): void {
  if (opts.json) process.stdout.write(JSON.stringify({ event: level, message }) + '\n');
  else process.stderr.write(`${level}: ${message}\n`);
}

function renderer(opts: GlobalOpts): (e: EdlFlashEvent) => void {
  if (opts.json) {
    return (e) => {
      if (e.type === 'progress') return;
      const { type, ...rest } = e;
      const body = type === 'sahara' ? { sahara: e.event } : rest;
      process.stdout.write(JSON.stringify({ event: `edl.${type}`, ...body }) + '\n');
    };
  }
  const tty = Boolean(process.stderr.isTTY);
  let bar = false;
  return (e) => {
    const w = (s: string): boolean => {
      if (bar) process.stderr.write('\n');
      bar = false;
      return process.stderr.write(s + '\n');
    };
    switch (e.type) {
      case 'progress':
        if (!tty || e.bytes === 0) return;
        bar = true;
        process.stderr.write(`\r  ${e.label}: ${Math.floor((e.sent / e.bytes) * 100)}% (${e.sent} / ${e.bytes} bytes)`);
        return;
      case 'sahara':
        if (e.event.type === 'image') w(`Sahara: uploading ${e.event.name} (image ${e.event.imageId})`);
        if (e.event.type === 'complete') w('Sahara: programmer accepted');
        return;
      case 'firehose-running':
        w('Firehose programmer already running (no Sahara HELLO)');
        return;
      case 'configured':
        w(`Firehose: ${e.result.memoryName}, payload ${e.result.maxPayloadToTarget} bytes, sector size ${e.sectorSize}`);
        return;
      case 'log':
        w(`device: ${e.text}`);
        return;
      case 'program':
        w(`[${e.index}/${e.total}] program ${e.label} (LUN ${e.lun}, start ${e.startSector}, ${e.bytes} bytes)`);
        return;
      case 'erase':
        w(`erase ${e.label ?? ''} (LUN ${e.lun})`);
        return;
      case 'patch':
        if (e.index === e.total) w(`applied ${e.total} patches`);
        return;
      case 'bootable':
        w(e.ok ? `bootable storage drive: LUN ${e.lun}` : `warning: setbootablestoragedrive ${e.lun} failed: ${e.error}`);
        return;
      case 'reset':
        w('device reset');
        return;
      default:
        return;
    }
  };
}

async function confirm(plan: EdlPlan): Promise<void> {
  const { AbortedError } = await import('../../errors.js');
  const { createInterface } = await import('node:readline');
  process.stderr.write(formatPlan(plan));
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string | undefined>((resolve) => {
    rl.question(`Flash ${plan.programs.length} images over EDL? This overwrites the device storage. [y/N] `, resolve);
    rl.once('close', () => resolve(undefined));
  });
  rl.close();
  if (!answer || !/^y(es)?$/i.test(answer.trim())) throw new AbortedError('EDL flash not confirmed (pass --yes to skip the question)');
}
