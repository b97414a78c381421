// `miflash edl emulate`: the emulated EDL device on TCP, one file per LUN
// (DIR/lun<N>.img, sparse). Prints "listening on tcp:HOST:PORT", then one line
// per event; runs until SIGINT/SIGTERM. Default LUN sizes are those of a real
// 256 GB UFS phone (or a 64 GB eMMC one); the files stay sparse.
import { appendFileSync } from 'node:fs';
import { BadInputError } from '../../errors.js';
import { parseNetworkAddress } from '../../transport/tcp.js';
import { openFileDisks } from './disk.js';
import type { EdlEmulatorOptions } from './device.js';
import { createDefaultGpts } from './gpt-layout.js';
import { startEdlTcpServer } from './serve.js';

export interface EdlEmulateCliOptions {
  listen: string;
  store: string;
  authRequired?: boolean;
  memory?: 'ufs' | 'emmc';
  luns?: string;
  lunSectors?: string;
  maxPayload?: string;
  nakOn?: string;
  stallOn?: string;
  shortRead?: boolean;
  badSector?: string;
  gpt?: boolean;
  read64?: boolean;
  chain?: string;
  firehoseRunning?: boolean;
  log?: string;
}

function int(name: string, v: string | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(v) || Number(v) < min) throw new BadInputError(`--${name}: expected an integer >= ${min}, found "${v}"`);
  return Number(v);
}

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
/**
 * Bytes per LUN of a 256 GB UFS phone, rounded up so any real layout fits:
 * LUN 0 user data, 1/2 boot loaders A/B, 3 device config, 4 firmware and
 * A/B images, 5 modem data. Further LUNs: 1 GiB. eMMC: one 64 GiB user area.
 */
export const UFS_LUN_BYTES = [256 * GiB, 64 * MiB, 64 * MiB, 64 * MiB, 16 * GiB, 1 * GiB];
export const EMMC_LUN_BYTES = 64 * GiB;

/** NUM_DISK_SECTORS per LUN: the defaults, or --lun-sectors N (every LUN) / N0,N1,… (per LUN, blanks keep the default). */
export function lunSizes(memory: 'ufs' | 'emmc', luns: number, spec: string | undefined): number[] {
  const sectorSize = memory === 'ufs' ? 4096 : 512;
  const defaults = Array.from({ length: luns }, (_, i) => (memory === 'ufs' ? (UFS_LUN_BYTES[i] ?? GiB) : EMMC_LUN_BYTES) / sectorSize);
  if (spec === undefined) return defaults;
  const parts = spec.split(',').map((s) => s.trim());
  if (parts.length === 1) return defaults.map(() => int('lun-sectors', parts[0], 0, 16));
  if (parts.length > luns) throw new BadInputError(`--lun-sectors: ${parts.length} sizes for ${luns} LUNs`);
  return defaults.map((d, i) => (parts[i] ? int('lun-sectors', parts[i], d, 16) : d));
}

export async function runEdlEmulate(opts: EdlEmulateCliOptions): Promise<void> {
  const memory = opts.memory ?? 'ufs';
  const sectorSize = memory === 'ufs' ? 4096 : 512;
  const luns = int('luns', opts.luns, memory === 'ufs' ? 6 : 1);
  const chain = opts.chain?.split(',').map((s) => int('chain', s.trim(), 13));
  const { host, port } = parseNetworkAddress(opts.listen, 0);
  const disks = openFileDisks(opts.store, sectorSize, lunSizes(memory, luns, opts.lunSectors));
  const log = (line: string): void => {
    process.stderr.write(`edl-emu: ${line}\n`);
    if (opts.log) appendFileSync(opts.log, line + '\n');
  };
  if (opts.gpt) {
    const created = createDefaultGpts(disks, memory);
    if (created.length > 0) log(`created a GPT on LUN ${created.join(', ')}`);
  }
  const emu: EdlEmulatorOptions = {
    memory,
    authRequired: opts.authRequired,
    maxPayloadToTarget: int('max-payload', opts.maxPayload, 1024 * 1024, 4096),
    faults: { nakTag: opts.nakOn, stallTag: opts.stallOn, shortRead: opts.shortRead, badSector: opts.badSector === undefined ? undefined : int('bad-sector', opts.badSector, 0, 0) },
    startInFirehose: opts.firehoseRunning,
    sahara: { read64: opts.read64, chain },
    onCommand: (c) => log(`command ${c.tag} ${JSON.stringify(c.attrs)}`),
  };
  const server = await startEdlTcpServer(host, port, disks, emu, log);
  process.stdout.write(`listening on ${server.address}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  for (const d of disks) d.close();
}
