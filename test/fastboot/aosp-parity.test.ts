// miflash's own client against AOSP fastboot (Debian's v29, `fastboot`)
// on the same emulated device: same image, same -S, same options => the same
// conversation, and byte-identical downloads (the emulator logs each download
// as `download SIZE SHA256`).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FastbootClient } from '../../src/fastboot/client.js';
import { flashImage } from '../../src/fastboot/flash-image.js';
import { startFastbootEmulator, type RunningFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { openTcpTransport } from '../../src/transport/tcp.js';
import { needs, peerPath } from '../helpers/peers.js';
import { noise } from '../helpers/emulator.js';

const run = promisify(execFile);
const KiB = 1024;

let dir: string;
const img: Record<string, string> = {};

/** Block-aligned image mixing zero, fill and noise blocks. */
function mixed(blocks: number, seed: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < blocks; i++) {
    if (i % 6 === 0) parts.push(Buffer.alloc(4096));
    else if (i % 6 === 1) parts.push(Buffer.alloc(4096, 0x5a));
    else parts.push(noise(4096, seed + i));
  }
  return Buffer.concat(parts);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miflash-parity-'));
  img.boot = join(dir, 'boot.img');
  await writeFile(img.boot, noise(300 * KiB + 123, 1));
  img.raw = join(dir, 'raw.img');
  await writeFile(img.raw, mixed(700, 2)); // 2.7 MiB
  img.sparse = join(dir, 'sparse.img');
  execFileSync(peerPath('img2simg'), [img.raw, img.sparse]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Case {
  name: string;
  args: string[]; // after `flash`
  sparseLimit?: number;
  slot?: string;
  maxDownloadSize?: number;
  minDownloads: number;
}

const cases: Case[] = [
  { name: 'raw image within the limit', args: ['boot', 'boot'], sparseLimit: 1024 * KiB, minDownloads: 1 },
  { name: 'raw image converted to sparse', args: ['system', 'raw'], sparseLimit: 512 * KiB, minDownloads: 3 },
  { name: 'sparse image resparsed', args: ['super', 'sparse'], sparseLimit: 600 * KiB, minDownloads: 2 },
  { name: 'sparse image within the limit sent as is', args: ['super', 'sparse'], sparseLimit: 8192 * KiB, minDownloads: 1 },
  { name: 'device max-download-size as the limit', args: ['system', 'raw'], maxDownloadSize: 1024 * KiB, minDownloads: 2 },
  { name: '--slot all', args: ['boot', 'boot'], slot: 'all', minDownloads: 2 },
  { name: '--slot other', args: ['boot', 'boot'], slot: 'other', minDownloads: 1 },
];

// The sparse cases flash img2simg's output, made in beforeAll.
describe('parity with AOSP fastboot', needs('fastboot', 'img2simg'), () => {
  for (const c of cases) {
    it(c.name, async () => {
      const emu: RunningFastbootEmulator = await startFastbootEmulator('tcp:127.0.0.1:0', {
        store: null,
        slots: ['a', 'b'],
        maxDownloadSize: c.maxDownloadSize,
      });
      try {
        const [partition, key] = c.args as [string, string];
        const argv = ['-s', emu.address];
        if (c.sparseLimit !== undefined) argv.push('-S', `${c.sparseLimit / KiB}K`);
        if (c.slot !== undefined) argv.push('--slot', c.slot);
        await run(peerPath('fastboot'), [...argv, 'flash', partition, img[key]!], { timeout: 20_000 });
        const aosp = emu.log.splice(0);

        const client = new FastbootClient(await openTcpTransport(emu.address, { timeoutMs: 5000 }), { timeoutMs: 5000 });
        try {
          await flashImage(client, partition, img[key]!, { sparseLimit: c.sparseLimit, slot: c.slot });
        } finally {
          await client.close();
        }
        const ours = emu.log.splice(0);
        expect(ours).toEqual(aosp);
        expect(ours.filter((l) => l.startsWith('download ')).length).toBeGreaterThanOrEqual(c.minDownloads);
      } finally {
        await emu.close();
      }
    });
  }
});
