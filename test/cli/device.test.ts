// The device commands as a user runs them: `node bin/miflash.js …` (build
// first: npx tsc -p .) against emulated devices on loopback.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatedFastbootDevice, runFastbootDevice } from '../../src/emulator/fastboot/index.js';
import { listenUdpDevice } from '../../src/transport/udp-server.js';
import { REPO_ROOT, runAospFastboot, runTool, spawnCliEmulator, tempDir, withEmulator } from '../helpers/emulator.js';
import { needs, peerPath } from '../helpers/peers.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI with a clean device environment (no ANDROID_SERIAL leaking in). */
function miflash(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<Run> {
  const { ANDROID_SERIAL: _a, FASTBOOT_DEVICE: _f, ...base } = process.env;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...base, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const tmp = tempDir('miflash-cli-device-');
const boot = path.join(tmp.dir, 'boot.img');
const rawImg = path.join(tmp.dir, 'system.img');
const sparseImg = path.join(tmp.dir, 'system.sparse.img');
let bootBytes: Buffer;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/cli/commands/device.js'))) throw new Error('build first: npx tsc -p .');
  bootBytes = Buffer.alloc(256 * 1024 + 7);
  for (let i = 0; i < bootBytes.length; i++) bootBytes[i] = (i * 13 + (i >> 9)) & 0xff;
  await writeFile(boot, bootBytes);
  const blocks: Buffer[] = [];
  for (let i = 0; i < 500; i++) blocks.push(i % 4 === 0 ? Buffer.alloc(4096) : Buffer.alloc(4096, i & 0xff));
  await writeFile(rawImg, Buffer.concat(blocks.map((b, i) => (i % 4 === 3 ? bootBytes.subarray(i * 100, i * 100 + 4096) : b))));
});
afterAll(() => tmp.cleanup());

/** AOSP fastboot with any -s (runAospFastboot only does tcp). */
function runAosp(args: string[]): Promise<number | null> {
  const child = spawn(peerPath('fastboot'), args, { stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => child.once('close', (code) => (clearTimeout(timer), resolve(code))));
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('miflash device commands', () => {
  it('getvar NAME prints NAME: VALUE, getvar all the AOSP lines on stderr; --json prints objects', async () => {
    await withEmulator({ product: 'cepheus', serial: 'ABC123' }, async (emu) => {
      const one = await miflash(['-s', emu.address, 'getvar', 'product']);
      expect(one).toMatchObject({ code: 0, stdout: 'product: cepheus\n' });
      const all = await miflash(['-s', emu.address, 'getvar', 'all']);
      expect(all.code).toBe(0);
      expect(all.stderr).toContain('(bootloader) serialno:ABC123\n');
      expect(all.stderr).toMatch(/^\(bootloader\) max-download-size:0x20000000$/m);
      const json = await miflash(['-s', emu.address, '--json', 'getvar', 'serialno']);
      expect(JSON.parse(json.stdout)).toEqual({ event: 'var', name: 'serialno', value: 'ABC123' });
      const missing = await miflash(['-s', emu.address, 'getvar', 'nope']);
      expect(missing.code).toBe(4);
      expect(missing.stderr).toContain("'getvar:nope'");
    });
  });

  it('several -s run the command on each device, naming it', async () => {
    await withEmulator({ product: 'one' }, async (a) => {
      await withEmulator({ product: 'two' }, async (b) => {
        const r = await miflash(['-s', a.address, '-s', b.address, 'getvar', 'product']);
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(`${a.address}\tproduct: one\n${b.address}\tproduct: two\n`);
      });
    });
  });

  it('ANDROID_SERIAL selects the device when -s is absent', async () => {
    await withEmulator({ product: 'env-dev' }, async (emu) => {
      const r = await miflash(['getvar', 'product'], { ANDROID_SERIAL: emu.address });
      expect(r).toMatchObject({ code: 0, stdout: 'product: env-dev\n' });
    });
  });

  it('flash raw with AOSP status lines; the device gets the image; --json progress', async () => {
    await withEmulator({ slots: ['a', 'b'] }, async (emu) => {
      const r = await miflash(['-s', emu.address, 'flash', 'boot', boot]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^Sending 'boot_a' \(256 KB\) +OKAY \[ *\d+\.\d{3}s\]$/m);
      expect(r.stderr).toMatch(/^Writing 'boot_a' +OKAY/m);
      expect(emu.log).toContain(`download ${bootBytes.length} ${sha(bootBytes)}`);
      expect(emu.device.readPartition('boot_a').subarray(0, bootBytes.length).equals(bootBytes)).toBe(true);

      const j = await miflash(['-s', emu.address, '--json', 'flash', '--slot', 'b', 'boot', boot]);
      expect(j.code).toBe(0);
      const events = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; label?: string; bytesDone?: number });
      expect(events.find((e) => e.event === 'step-done')?.label).toBe("Sending 'boot_b' (256 KB)");
      expect(events.some((e) => e.event === 'step-progress' && e.bytesDone === bootBytes.length)).toBe(true);
    });
  });

  it('flash an img2simg-made sparse image split at -S 400K, with AOSP status lines', needs('img2simg'), async () => {
    await runTool('img2simg', [rawImg, sparseImg]);
    await withEmulator({ slots: ['a', 'b'], partitions: { super: 4 << 20 } }, async (emu) => {
      const s = await miflash(['-s', emu.address, '-S', '400K', 'flash', 'super', sparseImg]);
      expect(s.code).toBe(0);
      const pieces = [...s.stderr.matchAll(/^Sending sparse 'super' (\d+)\/(\d+) \(\d+ KB\) +OKAY/gm)];
      expect(pieces.length).toBeGreaterThan(1);
      expect(pieces.map((m) => Number(m[1]))).toEqual(pieces.map((_, i) => i + 1));
    });
  });

  it('bad input exits 2 before anything reaches the device', async () => {
    await withEmulator({}, async (emu) => {
      // One argument is a ROM (src/cli/flash-rom.ts); a missing one is bad input.
      const one = await miflash(['-s', emu.address, 'flash', path.join(tmp.dir, 'rom.zip')]);
      expect(one.code).toBe(2);
      expect(one.stderr).toContain('rom.zip');
      const missing = await miflash(['-s', emu.address, 'flash', 'boot', path.join(tmp.dir, 'absent.img')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('absent.img');
      const badTarget = await miflash(['-s', emu.address, 'reboot', 'moon']);
      expect(badTarget.code).toBe(2);
      expect(emu.log).toEqual([]);
    });
  });

  it('erase, set-active, oem, flashing and reboot', async () => {
    await withEmulator({ slots: ['a', 'b'] }, async (emu) => {
      const erase = await miflash(['-s', emu.address, 'erase', 'userdata']);
      expect(erase.stderr).toMatch(/^Erasing 'userdata' +OKAY/m);
      expect(erase.stderr).toMatch(/^Warning: 'userdata' is an f2fs partition/m);
      expect((await miflash(['-s', emu.address, 'set-active', 'b'])).code).toBe(0);
      expect(emu.device.currentSlot).toBe('b');
      const oem = await miflash(['-s', emu.address, 'oem', 'device-info']);
      expect(oem.stderr).toContain('(bootloader) Device critical unlocked: true');
      expect((await miflash(['-s', emu.address, 'flashing', 'get_unlock_ability'])).code).toBe(0);
      expect((await miflash(['-s', emu.address, 'reboot-bootloader'])).code).toBe(0);
      expect((await miflash(['-s', emu.address, 'reboot', 'recovery'])).code).toBe(0);
      expect(emu.log).toEqual([
        'getvar:has-slot:userdata',
        'getvar:partition-type:userdata',
        'erase:userdata',
        'getvar:slot-count',
        'set_active:b',
        'oem device-info',
        'flashing get_unlock_ability',
        'reboot-bootloader',
        'reboot-recovery',
      ]);
    });
  });

  it('a FAIL exits 4 with the device message; a stall exits 5 within the timeout', async () => {
    await withEmulator({ faults: { failOn: 'flash', failMessage: 'Flashing is not allowed in Lock State' } }, async (emu) => {
      const r = await miflash(['-s', emu.address, 'flash', 'boot', boot]);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain('Flashing is not allowed in Lock State');
      expect(r.stderr).toMatch(/Writing 'boot' +FAILED/);
    });
    await withEmulator({ faults: { stallOn: 'getvar:product' } }, async (emu) => {
      const r = await miflash(['-s', emu.address, '--timeout', '500', 'getvar', 'product']);
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/timed out after 500 ms/);
      expect(r.ms).toBeLessThan(5000);
    });
    await withEmulator({ faults: { dropAfterBytes: 100_000 } }, async (emu) => {
      const r = await miflash(['-s', emu.address, '--timeout', '500', 'flash', 'boot', boot]);
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/Sending 'boot' \(256 KB\) +FAILED/);
    });
  });

  it('without -s and without devices it says so (exit 5); devices never fails', async () => {
    const r = await miflash(['getvar', 'product']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/no fastboot device found|USB/);
    const d = await miflash(['devices']);
    expect(d.code).toBe(0);
    const dj = await miflash(['devices', '--json']);
    expect(dj.code).toBe(0);
    for (const line of dj.stdout.split('\n').filter(Boolean)) expect(JSON.parse(line)).toHaveProperty('event', 'device');
  });

  it('Ctrl-C during a download stops cleanly with exit 130 and nothing flashed', async () => {
    await withEmulator({ store: null }, async (emu) => {
      // A slow link: a proxy that forwards host->device data with a pause per chunk.
      const server = net.createServer((down) => {
        const up = net.connect(emu.port, '127.0.0.1');
        up.pipe(down);
        down.on('data', (chunk: Buffer) => {
          down.pause();
          up.write(chunk, () => setTimeout(() => down.resume(), 15));
        });
        down.on('close', () => up.destroy());
        up.on('close', () => down.destroy());
        down.on('error', () => up.destroy());
        up.on('error', () => down.destroy());
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      const big = path.join(tmp.dir, 'big.img');
      await writeFile(big, Buffer.alloc(32 << 20, 7)); // larger than loopback socket buffers can swallow
      try {
        const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), '-s', `tcp:127.0.0.1:${port}`, '--json', 'flash', 'boot', big], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        let sent = false;
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (!sent && stdout.includes('"step-progress"')) {
            sent = true;
            child.kill('SIGINT');
          }
        });
        const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
        expect(sent).toBe(true);
        expect(code).toBe(130);
        expect(stderr).toContain('stopping after the current buffer');
        const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as { event: string; code: string };
        expect(last).toMatchObject({ event: 'error', code: 'aborted' });
        expect(emu.log.some((l) => l.startsWith('flash:'))).toBe(false);
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });

  /** miflash getvar + flash over UDP; returns the device and what the flash sent. */
  async function udpFlash(): Promise<{ device: EmulatedFastbootDevice; server: Awaited<ReturnType<typeof listenUdpDevice>>; small: string; ours: string[] }> {
    const device = new EmulatedFastbootDevice({ store: null, product: 'udp-dev', slots: ['a', 'b'] });
    const server = await listenUdpDevice('udp:127.0.0.1:0', (t) => void runFastbootDevice(t, device));
    const small = path.join(tmp.dir, 'small.img');
    await writeFile(small, bootBytes.subarray(0, 64 * 1024));
    try {
      const g = await miflash(['-s', server.address, 'getvar', 'product']);
      expect(g).toMatchObject({ code: 0, stdout: 'product: udp-dev\n' });
      device.log.length = 0;
      const f = await miflash(['-s', server.address, 'flash', 'boot', small]);
      expect(f.stderr).toMatch(/Writing 'boot_a' +OKAY/);
      expect(f.code).toBe(0);
      const ours = device.log.splice(0);
      expect(ours).toContain(`download ${64 * 1024} ${sha(bootBytes.subarray(0, 64 * 1024))}`);
      return { device, server, small, ours };
    } catch (e) {
      await server.close();
      throw e;
    }
  }

  it('speaks fastboot over UDP (-s udp:HOST:PORT)', async () => {
    await (await udpFlash()).server.close();
  });

  it('over UDP, a flash sends what AOSP fastboot sends', needs('fastboot'), async () => {
    const { device, server, small, ours } = await udpFlash();
    try {
      const a = await runAosp(['-s', server.address, 'flash', 'boot', small]);
      expect(a).toBe(0);
      expect(device.log).toEqual(ours);
    } finally {
      await server.close();
    }
  });

  it('works against `miflash emulate` run as a separate process', async () => {
    const emu = await spawnCliEmulator(['--discard', '--product', 'spawned']);
    try {
      expect((await miflash(['-s', emu.address, 'getvar', 'product'])).stdout).toBe('product: spawned\n');
      expect((await miflash(['-s', emu.address, 'flash', 'boot', boot])).code).toBe(0);
    } finally {
      await emu.stop();
    }
  });
});

describe('same conversation as AOSP fastboot', needs('fastboot'), () => {
  const commands: string[][] = [
    ['getvar', 'product'],
    ['erase', 'userdata'],
    ['erase', 'boot'],
    ['set_active', 'b'],
    ['oem', 'device-info'],
    ['reboot', 'bootloader'],
    ['reboot'],
  ];
  for (const args of commands) {
    it(args.join(' '), async () => {
      await withEmulator({ slots: ['a', 'b'] }, async (emu) => {
        const a = await runAospFastboot(emu.port, args);
        expect(a.code).toBe(0);
        const aosp = emu.log.splice(0);
        emu.device.currentSlot = 'a';
        const ours = await miflash(['-s', emu.address, ...args]);
        expect(ours.code).toBe(0);
        expect(emu.log).toEqual(aosp);
      });
    });
  }
});
