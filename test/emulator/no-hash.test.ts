// Discard mode without hashing (`emulate --discard --no-hash`, the bench's
// device), and the TCP server's large reusable read buffers it relies on.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmulatedFastbootDevice } from '../../src/emulator/fastboot/index.js';
import { BadInputError } from '../../src/errors.js';
import { encodeFrame, encodeHandshake, FrameDecoder } from '../../src/transport/tcp-framing.js';
import { REPO_ROOT, runAospFastboot, spawnCliEmulator, tempDir, withEmulator } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';

const MiB = 1024 * 1024;

/** Write `wire` in one go (pipelined: no waiting for replies); collect `want` reply frames. */
async function pipelined(port: number, wire: Buffer, want: number, ms = 5000): Promise<string[]> {
  const s = net.connect(port, '127.0.0.1');
  const dec = new FrameDecoder({ handshake: true });
  const frames: string[] = [];
  let cur: Buffer[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${frames.length} of ${want} replies within ${ms} ms: ${frames.join(' | ')}`)), ms);
      s.on('error', reject);
      s.on('data', (d) => {
        dec.push(d);
        for (let p = dec.next(); p; p = dec.next()) {
          cur.push(p.data);
          if (!p.end) continue;
          frames.push(Buffer.concat(cur).toString('latin1'));
          cur = [];
        }
        if (frames.length >= want) {
          clearTimeout(t);
          resolve();
        }
      });
      s.once('connect', () => s.write(wire));
    });
  } finally {
    s.destroy();
  }
  return frames;
}

/** A download of `data` split into frames of `frame` bytes, then `after` commands, all in one buffer. */
function downloadWire(data: Buffer, frame: number, after: string[]): Buffer {
  const parts = [encodeHandshake(), encodeFrame(Buffer.from(`download:${data.length.toString(16).padStart(8, '0')}`))];
  for (let i = 0; i < data.length; i += frame) parts.push(encodeFrame(data.subarray(i, i + frame)));
  for (const c of after) parts.push(encodeFrame(Buffer.from(c)));
  return Buffer.concat(parts);
}

describe('discard mode without hashing', () => {
  it('logs `download SIZE -`, still answers flash with OKAY, and still refuses what does not fit', async () => {
    await withEmulator({ store: null, hashDownloads: false, partitions: { boot: 6 * MiB } }, async (emu) => {
      const img = randomBytes(5 * MiB + 3);
      const replies = await pipelined(emu.port, downloadWire(img, 1 * MiB + 17, ['flash:boot', 'getvar:product']), 4);
      expect(replies).toEqual([`DATA${img.length.toString(16).padStart(8, '0')}`, 'OKAY', 'OKAY', 'OKAYmiflash-emu']);
      expect(emu.log).toEqual([`download ${img.length} -`, 'flash:boot', 'getvar:product']);

      // Size checks need no hash: 7 MiB raw into a 6 MiB partition is refused.
      const big = Buffer.alloc(7 * MiB, 1);
      const again = await pipelined(emu.port, downloadWire(big, 4 * MiB, ['flash:boot']), 3);
      expect(again.slice(0, 2)).toEqual([`DATA${big.length.toString(16).padStart(8, '0')}`, 'OKAY']);
      expect(again[2]).toMatch(/^FAILimage too large for partition 'boot'/);
      expect(emu.log.at(-2)).toBe(`download ${big.length} -`);
    });
  });

  it('the hashing device logs the SHA-256 of data spread over many large reads', async () => {
    await withEmulator({ store: null, partitions: { boot: 16 * MiB } }, async (emu) => {
      const img = randomBytes(13 * MiB + 5);
      const replies = await pipelined(emu.port, downloadWire(img, 3 * MiB + 1, ['flash:boot']), 3);
      expect(replies).toEqual([`DATA${img.length.toString(16).padStart(8, '0')}`, 'OKAY', 'OKAY']);
      expect(emu.log[0]).toBe(`download ${img.length} ${createHash('sha256').update(img).digest('hex')}`);
    });
  });

  it('a storing device gets every byte right when download and commands arrive pipelined', async () => {
    await withEmulator({ partitions: { boot: 16 * MiB } }, async (emu) => {
      const img = randomBytes(11 * MiB + 9);
      const replies = await pipelined(emu.port, downloadWire(img, 5 * MiB, ['flash:boot', 'getvar:serialno']), 4);
      expect(replies.slice(1)).toEqual(['OKAY', 'OKAY', 'OKAYEMU0001']);
      expect(emu.device.readPartition('boot').subarray(0, img.length).equals(img)).toBe(true);
    });
  });

  it('hashDownloads: false with a store is refused', () => {
    const tmp = tempDir();
    try {
      expect(() => new EmulatedFastbootDevice({ store: tmp.dir, hashDownloads: false })).toThrow(BadInputError);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('miflash emulate --no-hash (CLI)', () => {
  it('is refused without --discard (exit 2)', () => {
    const tmp = tempDir();
    try {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), 'emulate', '--listen', 'tcp:127.0.0.1:0', '--store', tmp.dir, '--no-hash'], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('--no-hash needs --discard');
    } finally {
      tmp.cleanup();
    }
  });

  it('with --discard serves the AOSP client a flash and logs `download SIZE -`', needs('fastboot'), async () => {
    const tmp = tempDir();
    const log = path.join(tmp.dir, 'log');
    const img = path.join(tmp.dir, 'boot.img');
    writeFileSync(img, randomBytes(3 * MiB));
    const emu = await spawnCliEmulator(['--discard', '--no-hash', '--log', log, '--partition', 'boot=4M']);
    try {
      const r = await runAospFastboot(emu.port, ['flash', 'boot', img]);
      expect(r.code, r.stderr).toBe(0);
      const lines = readFileSync(log, 'utf8').trim().split('\n');
      expect(lines).toContain(`download ${3 * MiB} -`);
      expect(lines.at(-1)).toBe('flash:boot');
    } finally {
      expect(await emu.stop()).toBe(0);
      tmp.cleanup();
    }
  });
});
