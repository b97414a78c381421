// The body of `miflash emulate`: turn CLI strings into FastbootEmulatorOptions,
// start the device, print the one "listening on ..." line, run until a signal.
import path from 'node:path';
import { parseSize } from '../../cli/size.js';
import { BadInputError } from '../../errors.js';
import type { FastbootEmulatorOptions, FaultOptions } from './device.js';
import { startFastbootEmulator } from './index.js';

export interface EmulateCliOptions {
  listen: string;
  store?: string;
  discard?: boolean;
  /** false from --no-hash (commander's negatable option). */
  hash?: boolean;
  product?: string;
  serial?: string | string[];
  maxDownloadSize?: string;
  partition: string[];
  slots?: string;
  var: string[];
  log?: string;
  failOn?: string;
  failMessage?: string;
  dropAfter?: string;
  stallOn?: string;
  infoBefore: string[];
  textBefore: string[];
  dynamicPartitions?: boolean;
  virtualAb?: boolean;
  /** false from --no-fastbootd. */
  fastbootd?: boolean;
}

function keyValue(text: string, what: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new BadInputError(`bad ${what} "${text}": expected KEY=VALUE`);
  return [text.slice(0, i), text.slice(i + 1)];
}

const countOrName = (v: string | undefined): number | string | undefined =>
  v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v;

export function toEmulatorOptions(o: EmulateCliOptions): FastbootEmulatorOptions {
  if (!o.discard && !o.store) throw new BadInputError('emulate needs --store DIR (or --discard to store nothing)');
  if (o.discard && o.store) throw new BadInputError('--store and --discard exclude each other');
  if (o.hash === false && !o.discard) throw new BadInputError('--no-hash needs --discard: a storing device keeps the data, so skipping the hash saves nothing');
  const partitions: Record<string, number> = {};
  for (const p of o.partition) {
    const [name, size] = keyValue(p, '--partition');
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new BadInputError(`bad --partition name "${name}": letters, digits, _ . - only`);
    partitions[name] = parseSize(size, `--partition ${name} size`);
  }
  const vars: Record<string, string> = {};
  for (const v of o.var) {
    const [k, value] = keyValue(v, '--var');
    vars[k] = value;
  }
  const faults: FaultOptions = {
    failOn: countOrName(o.failOn),
    failMessage: o.failMessage,
    dropAfterBytes: o.dropAfter === undefined ? undefined : parseSize(o.dropAfter, '--drop-after'),
    stallOn: countOrName(o.stallOn),
    infoBefore: o.infoBefore.length ? o.infoBefore : undefined,
    textBefore: o.textBefore.length ? o.textBefore : undefined,
  };
  const serial = Array.isArray(o.serial) ? o.serial.at(-1) : o.serial;
  const maxDownloadSize = parseSize(o.maxDownloadSize ?? '512M', '--max-download-size');
  if (maxDownloadSize < 1 || maxDownloadSize > 0xffffffff) {
    throw new BadInputError(`bad --max-download-size ${maxDownloadSize}: expected 1 .. 4 GiB - 1`);
  }
  return {
    store: o.discard ? null : path.resolve(o.store!),
    hashDownloads: o.hash !== false,
    product: o.product,
    serial,
    maxDownloadSize,
    partitions,
    slots: o.slots ? o.slots.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    vars,
    logFile: o.log,
    faults,
    dynamicPartitions: o.dynamicPartitions,
    virtualAb: o.virtualAb,
    fastbootd: o.fastbootd,
  };
}

export async function runEmulate(local: EmulateCliOptions, withGlobals: Record<string, unknown>): Promise<void> {
  // The program's global -s/--serial may swallow `emulate --serial S`; accept it from there too.
  const globalSerial = withGlobals.serial;
  const serial = local.serial ?? (Array.isArray(globalSerial) && globalSerial.length ? (globalSerial.at(-1) as string) : undefined);
  const emu = await startFastbootEmulator(local.listen, toEmulatorOptions({ ...local, serial }));
  emu.device.onNote = (note) => process.stderr.write(`miflash emulate: ${note}\n`);
  process.stdout.write(`listening on ${emu.address}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void emu.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
