// The proof that the emulator behaves like a real device: the AOSP fastboot
// client (Debian, v29) drives `miflash emulate` over TCP, and the partition
// files end up byte-identical to the images (simg2img output for sparse).
// Needs a built dist/ (npm run build) for the CLI.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAospFastboot, runTool, spawnCliEmulator, tempDir, withEmulator, type CliEmulator } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';

const tmp = tempDir('miflash-aosp-');
const store = path.join(tmp.dir, 'store');
const logFile = path.join(tmp.dir, 'emulator.log');
let emu: CliEmulator;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** 1 MiB + 123: random, zero and pattern regions (so img2simg emits RAW, FILL and DONT_CARE-like runs) and a partial tail block. */
function mixedImage(tail = 123): Buffer {
  const fill = Buffer.alloc(192 * 1024);
  for (let i = 0; i < fill.length; i += 4) fill.writeUInt32LE(0x01efcdab, i);
  return Buffer.concat([randomBytes(300 * 1024), Buffer.alloc(200 * 1024), fill, randomBytes(332 * 1024 + tail)]);
}

const RAW_SIZE = 96 * 1024;
const SPARSE_PART = 2 * 1024 * 1024;

beforeAll(async () => {
  emu = await spawnCliEmulator([
    '--store', store,
    '--product', 'aosp-proof',
    '--max-download-size', '256K',
    '--partition', `boot=${RAW_SIZE}`,
    '--partition', `system=${SPARSE_PART}`,
    '--partition', `vendor=${SPARSE_PART}`,
    '--log', logFile,
  ]);
});

afterAll(async () => {
  const code = await emu?.stop();
  tmp.cleanup();
  expect(code).toBe(0); // SIGTERM ends `miflash emulate` cleanly
});

describe('AOSP fastboot v29 against miflash emulate', needs('fastboot'), () => {
  it('getvar product', async () => {
    const r = await runAospFastboot(emu.port, ['getvar', 'product']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^product: aosp-proof$/m);
  });

  it('flashes a raw image: the partition equals the image', async () => {
    const img = randomBytes(RAW_SIZE);
    const file = path.join(tmp.dir, 'boot.img');
    writeFileSync(file, img);
    const r = await runAospFastboot(emu.port, ['flash', 'boot', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(store, 'boot.img')).equals(img)).toBe(true);
    expect(readFileSync(logFile, 'utf8')).toContain(`download ${RAW_SIZE} ${sha256(img)}\nflash:boot\n`);
  });

  it('flashes a sparse image it must split (-S 64K): the partition equals the simg2img output', needs('img2simg', 'simg2img'), async () => {
    const raw = mixedImage();
    const rawFile = path.join(tmp.dir, 'system.raw');
    const simg = path.join(tmp.dir, 'system.simg');
    const expanded = path.join(tmp.dir, 'system.expanded');
    writeFileSync(rawFile, raw);
    await runTool('img2simg', [rawFile, simg]);
    await runTool('simg2img', [simg, expanded]);
    const r = await runAospFastboot(emu.port, ['-S', '64K', 'flash', 'system', simg]);
    expect(r.code, r.stderr).toBe(0);
    const pieces = [...r.stderr.matchAll(/Sending sparse 'system' (\d+)\/(\d+)/g)];
    expect(pieces.length).toBeGreaterThan(3); // really split
    const part = readFileSync(path.join(store, 'system.img'));
    const want = readFileSync(expanded);
    expect(part.subarray(0, want.length).equals(want)).toBe(true);
    expect(part.subarray(0, raw.length).equals(raw)).toBe(true);
    expect(part.subarray(want.length).equals(Buffer.alloc(part.length - want.length))).toBe(true);
    const downloads = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.startsWith('download '));
    for (const d of downloads.slice(-pieces.length)) expect(Number(d.split(' ')[1])).toBeLessThanOrEqual(64 * 1024);
  });

  it('flashes a raw image larger than max-download-size (client resparses it): the partition equals the image', async () => {
    // Block-aligned: fastboot v29's own resparse of a raw file with a partial tail block emits invalid pieces.
    const raw = mixedImage(0);
    const file = path.join(tmp.dir, 'vendor.img');
    writeFileSync(file, raw);
    const r = await runAospFastboot(emu.port, ['flash', 'vendor', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Sending sparse 'vendor' 1\/\d+/);
    const part = readFileSync(path.join(store, 'vendor.img'));
    expect(part.subarray(0, raw.length).equals(raw)).toBe(true);
  });

  it('erase zeroes the partition', async () => {
    const r = await runAospFastboot(emu.port, ['erase', 'boot']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(store, 'boot.img')).equals(Buffer.alloc(RAW_SIZE))).toBe(true);
  });

  it('reboot answers OKAY, and the device comes back for the next connection', async () => {
    const r = await runAospFastboot(emu.port, ['reboot']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Rebooting\s+OKAY/);
    const again = await runAospFastboot(emu.port, ['getvar', 'product']);
    expect(again.stderr).toMatch(/^product: aosp-proof$/m);
    const log = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    expect(log.slice(-2)).toEqual(['reboot', 'getvar:product']);
  });

  it('an image larger than the partition is a FAIL the client reports', async () => {
    const file = path.join(tmp.dir, 'big.img');
    writeFileSync(file, randomBytes(RAW_SIZE + 4096));
    const r = await runAospFastboot(emu.port, ['flash', 'boot', file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FAILED \(remote: '.*too large/);
  });
});

describe('AOSP fastboot v29 with A/B slots (in-process emulator)', needs('fastboot'), () => {
  it('flash boot resolves to the current slot via has-slot/current-slot', async () => {
    await withEmulator({ slots: ['a', 'b'], partitions: { boot_a: 65536, boot_b: 65536 } }, async (e) => {
      const img = randomBytes(65536);
      const file = path.join(e.store!, '..', 'boot-ab.img');
      writeFileSync(file, img);
      expect((await runAospFastboot(e.port, ['set_active', 'b'])).code).toBe(0);
      const r = await runAospFastboot(e.port, ['flash', 'boot', file]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("Sending 'boot_b'");
      expect(e.device.readPartition('boot_b').equals(img)).toBe(true);
      expect(e.device.readPartition('boot_a').equals(Buffer.alloc(65536))).toBe(true);
    });
  });
});
