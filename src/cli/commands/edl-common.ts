// What every `miflash edl …` device command shares: device selection, qdl
// timeouts capped by --timeout, opening a Firehose session (Sahara upload of
// the programmer when needed), the event renderer, the y/N question.
import { Option, type Command } from 'commander';
import type { EdlFlashEvent, EdlSession } from '../../edl/flash.js';
import type { FirehoseTimeouts, MemoryType } from '../../edl/firehose.js';
import type { Transport } from '../../transport/transport.js';

export interface GlobalOpts {
  serial?: string[];
  all?: boolean;
  json?: boolean;
  timeout?: string;
}

/** Options of commands that talk to a device in EDL mode without a ROM plan. */
export interface SessionOpts extends GlobalOpts {
  memory?: MemoryType;
  programmer?: string;
  rom?: string;
  reset?: boolean;
}

export const memoryOption = (): Option => new Option('--memory <type>', 'storage type (default: from the programmer name, else the sector size)').choices(['ufs', 'emmc']);

/** --memory, --programmer, --rom, --reset: how to reach the programmer and what to do after. */
export function sessionOptions(c: Command, opts: { reset?: boolean } = {}): Command {
  c.addOption(memoryOption())
    .option('--programmer <file>', 'Firehose programmer or multi-image list (needed unless the programmer already runs)')
    .option('--rom <dir>', "take the programmer from this ROM's images/");
  return opts.reset === false ? c : c.option('--reset', 'power-reset the device afterwards (default: leave the programmer running)');
}

export async function oneDevice(opts: GlobalOpts): Promise<string | undefined> {
  if (opts.all) await usage('--all is not supported for EDL: flash one device at a time (-s SERIAL, usb:PORT or tcp:HOST:PORT)');
  if ((opts.serial?.length ?? 0) > 1) await usage('EDL flashes one device at a time: pass a single -s');
  return opts.serial?.[0];
}

export async function usage(message: string, hint?: string): Promise<never> {
  const { BadInputError } = await import('../../errors.js');
  throw new BadInputError(message, { hint });
}

/** qdl's per-step timeouts, each capped by an explicit --timeout. */
export async function timeouts(cmd: Command, opts: GlobalOpts): Promise<Partial<FirehoseTimeouts> | undefined> {
  const source = cmd.getOptionValueSourceWithGlobals('timeout');
  if (source !== 'cli' && source !== 'env') return undefined;
  const ms = Number(opts.timeout);
  if (!Number.isFinite(ms) || ms <= 0) await usage(`--timeout: expected milliseconds, found "${opts.timeout}"`);
  const { cappedTimeouts } = await import('../../edl/firehose.js');
  return cappedTimeouts(ms);
}

export interface OpenedSession {
  session: EdlSession;
  memory: MemoryType;
  transport: Transport;
}

/**
 * Connect, upload the programmer if the device is still in Sahara, configure.
 * `use` runs with the session; --reset powers the device off the bus afterwards
 * (unless `use` already did). An auth-locked programmer ends it at configure (exit 6).
 */
export async function withSession<T>(cmd: Command, opts: SessionOpts, use: (s: OpenedSession) => Promise<T>, extra: { skipStorageInit?: boolean; chipInfo?: boolean } = {}): Promise<T> {
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
  const { openEdlSession } = await import('../../edl/flash.js');
  const transport = await openEdlTransport(spec, { timeoutMs: 30_000 });
  try {
    const session = await openEdlSession(transport, images, memory, {
      timeouts: await timeouts(cmd, opts),
      programmer: set?.main,
      onEvent: renderer(opts),
      ...extra,
    });
    const result = await use({ session, memory, transport });
    if (opts.reset) await session.firehose.power('reset', 1);
    return result;
  } finally {
    await transport.close().catch(() => undefined);
  }
}

export function note(opts: GlobalOpts, level: string, message: string): void {
  if (opts.json) process.stdout.write(JSON.stringify({ event: level, message }) + '\n');
  else process.stderr.write(`${level}: ${message}\n`);
}

/** One JSON event line. */
export function emitJson(event: string, body: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ event, ...body }) + '\n');
}

/** Ask a y/N question on the terminal; anything but yes (or no terminal answer) aborts with exit 130. */
export async function confirmOrAbort(question: string, refusal: string): Promise<void> {
  const { AbortedError } = await import('../../errors.js');
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string | undefined>((resolve) => {
    rl.question(`${question} [y/N] `, resolve);
    rl.once('close', () => resolve(undefined));
  });
  rl.close();
  if (!answer || !/^y(es)?$/i.test(answer.trim())) throw new AbortedError(refusal);
}

export function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

export function renderer(opts: GlobalOpts): (e: EdlFlashEvent) => void {
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
      case 'storage':
        w(`storage: ${e.luns.map((l) => `LUN ${l.lun} ${l.sectors ?? '?'} sectors`).join(', ')}`);
        return;
      case 'dry-run':
        w(`dry run: ${e.programs} images in ${e.commands} program commands (${e.bytes} bytes) and ${e.patches} patches would be written; nothing was written`);
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
