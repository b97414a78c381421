// The emulator over network fastboot UDP, driven by the AOSP client (a peer we did not write).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { tempDir } from '../helpers/emulator.js';
import { needs, peerPath } from '../helpers/peers.js';

function fastboot(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(peerPath('fastboot'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('miflash emulate over UDP', needs('fastboot'), () => {
  it('serves the AOSP client: getvar, then a flash that lands in the partition', async () => {
    const tmp = tempDir();
    const image = randomBytes(200 * 1024);
    writeFileSync(path.join(tmp.dir, 'boot.img'), image);
    const emu = await startFastbootEmulator('udp:127.0.0.1:0', { store: path.join(tmp.dir, 'store'), product: 'udpdev' });
    try {
      expect(emu.address).toMatch(/^udp:127\.0\.0\.1:\d+$/);
      const getvar = await fastboot(['-s', emu.address, 'getvar', 'product']);
      expect(getvar.code, getvar.out).toBe(0);
      expect(getvar.out).toContain('product: udpdev');
      const flash = await fastboot(['-s', emu.address, 'flash', 'boot', path.join(tmp.dir, 'boot.img')]);
      expect(flash.code, flash.out).toBe(0);
      const stored = emu.device.readPartition('boot');
      expect(Buffer.from(stored.subarray(0, image.length)).equals(image)).toBe(true);
    } finally {
      await emu.close();
      tmp.cleanup();
    }
  });
});
