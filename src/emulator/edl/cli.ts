// `miflash edl emulate`: the emulated EDL device on TCP, one file per LUN
// (DIR/lun<N>.img, sparse). Prints "listening on tcp:HOST:PORT", then one line
// per event; runs until SIGINT/SIGTERM.
import { appendFileSync } from 'node:fs';
import { BadInputError } from '../../errors.js';
import { parseNetworkAddress } from '../../transport/tcp.js';
import { openFileDisks } from './disk.js';
import type { EdlEmulatorOptions } from './device.js';
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

export async function runEdlEmulate(opts: EdlEmulateCliOptions): Promise<void> {
  const memory = opts.memory ?? 'ufs';
  const sectorSize = memory === 'ufs' ? 4096 : 512;
  const luns = int('luns', opts.luns, memory === 'ufs' ? 6 : 1);
  const sectors = int('lun-sectors', opts.lunSectors, memory === 'ufs' ? 520_000 : 4_194_304, 16);
  const chain = opts.chain?.split(',').map((s) => int('chain', s.trim(), 13));
  const { host, port } = parseNetworkAddress(opts.listen, 0);
  const disks = openFileDisks(opts.store, luns, sectorSize, sectors);
  const log = (line: string): void => {
    process.stderr.write(`edl-emu: ${line}\n`);
    if (opts.log) appendFileSync(opts.log, line + '\n');
  };
  const emu: EdlEmulatorOptions = {
    memory,
    authRequired: opts.authRequired,
    maxPayloadToTarget: int('max-payload', opts.maxPayload, 1024 * 1024, 4096),
    faults: { nakTag: opts.nakOn, stallTag: opts.stallOn, shortRead: opts.shortRead },
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
