// The commands the Debian AOSP client (v29) also has, run by both against the
// same `miflash emulate --log` device: the device must see the same command
// sequence and byte-identical downloads. Where miflash follows v35 instead
// (reboot fastboot asks is-userspace first), the test says so.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runAospFastboot, spawnCliEmulator, tempDir, type CliEmulator, noise, runMiflash } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';

const tmp = tempDir('miflash-fb-parity-');
afterAll(() => tmp.cleanup());

let n = 0;
/** A fresh logging device for each client, so each log holds one client's conversation. */
async function device(extra: string[] = []): Promise<{ emu: CliEmulator; log: () => string[] }> {
  const log = path.join(tmp.dir, `log-${++n}`);
  writeFileSync(log, '');
  const emu = await spawnCliEmulator(['--store', path.join(tmp.dir, `store-${n}`), '--serial', 'PARITY1', '--slots', 'a,b', '--log', log, ...extra]);
  return { emu, log: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

const kernel = path.join(tmp.dir, 'kernel');
const ramdisk = path.join(tmp.dir, 'ramdisk');
const bootImg = path.join(tmp.dir, 'boot.img');
const stageFile = path.join(tmp.dir, 'stage.bin');
beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/cli/commands/device-ram.js'))) throw new Error('build first: npx tsc -p .');
  writeFileSync(kernel, noise(70_000, 1));
  writeFileSync(ramdisk, noise(9_000, 2));
  writeFileSync(bootImg, Buffer.concat([Buffer.from('ANDROID!'), noise(20_000, 3)]));
  writeFileSync(stageFile, noise(123_457, 4));
});

/** Runs `args` with the AOSP client and with miflash, each on its own fresh device; returns both logs. */
async function both(args: string[], extra: string[] = []): Promise<{ aosp: string[]; ours: string[]; aospErr: string; oursErr: string; oursCode: number | null }> {
  const a = await device(extra);
  const b = await device(extra);
  try {
    const ra = await runAospFastboot(a.emu.port, args);
    const rb = await runMiflash(['-s', b.emu.address, ...args]);
    return { aosp: a.log(), ours: b.log(), aospErr: ra.stderr, oursErr: rb.stderr, oursCode: rb.code };
  } finally {
    await a.emu.stop();
    await b.emu.stop();
  }
}

describe('same conversation as the AOSP client (v29)', needs('fastboot'), () => {
  it('getvar all: the same lines on stderr ("(bootloader) NAME:VALUE", then "all: "), nothing on stdout', async () => {
    const { emu } = await device();
    try {
      const aosp = await runAospFastboot(emu.port, ['getvar', 'all']);
      const ours = await runMiflash(['-s', emu.address, 'getvar', 'all']);
      expect(ours.code).toBe(0);
      expect(ours.stdout).toBe('');
      const strip = (s: string) => s.replace(/^Finished\. Total time: .*\n/m, '');
      expect(ours.stderr).toBe(strip(aosp.stderr));
      expect(ours.stderr).toMatch(/^\(bootloader\) serialno:PARITY1$/m);
      expect(ours.stderr.endsWith('all: \n')).toBe(true);
    } finally {
      await emu.stop();
    }
  });

  it('boot KERNEL RAMDISK: the boot image AOSP builds, byte for byte, then boot', async () => {
    const r = await both(['boot', kernel, ramdisk]);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours.map((l) => l.split(' ')[0])).toEqual(['download', 'boot']);
    expect(r.oursErr).toContain('creating boot image - ');
  });

  it('boot BOOT.IMG and boot with --cmdline', async () => {
    expect((await both(['boot', bootImg])).ours).toEqual((await both(['boot', bootImg])).aosp);
    const r = await both(['boot', kernel, '--cmdline', 'console=ttyS0 quiet', '--base', '0x80000000', '--header-version', '2']);
    expect(r.oursCode).toBe(0);
    expect(r.ours).toEqual(r.aosp);
  });

  it('stage FILE', async () => {
    const r = await both(['stage', stageFile]);
    expect(r.ours).toEqual(r.aosp);
    expect(r.ours).toHaveLength(2);
  });

  it('continue, reboot, reboot bootloader, reboot recovery, reboot-bootloader', async () => {
    for (const args of [['continue'], ['reboot'], ['reboot', 'bootloader'], ['reboot', 'recovery'], ['reboot-bootloader']]) {
      const r = await both(args);
      expect(r.ours, args.join(' ')).toEqual(r.aosp);
      expect(r.ours).toHaveLength(1);
    }
  });

  it('reboot fastboot into a device that reaches fastbootd: both succeed', async () => {
    const r = await both(['reboot', 'fastboot']);
    expect(r.aosp).toEqual(['reboot-fastboot', 'getvar:is-userspace']);
    expect(r.ours).toEqual(['getvar:is-userspace', 'getvar:serialno', 'reboot-fastboot', 'getvar:serialno', 'getvar:is-userspace']);
    expect(r.oursCode).toBe(0);
    expect(r.aospErr).not.toContain('Failed to boot into userspace fastboot');
  });

  it('reboot fastboot into a bootloader that comes back as a bootloader: both fail; miflash asks is-userspace first (v35 RebootTask) and checks the serial number', async () => {
    const r = await both(['reboot', 'fastboot'], ['--no-fastbootd']);
    expect(r.aosp).toEqual(['reboot-fastboot', 'getvar:is-userspace']);
    expect(r.ours).toEqual(['getvar:is-userspace', 'getvar:serialno', 'reboot-fastboot', 'getvar:serialno', 'getvar:is-userspace']);
    expect(r.oursCode).toBe(4);
    expect(r.aospErr).toContain('Failed to boot into userspace fastboot');
    expect(r.oursErr).toContain('failed to boot into userspace fastboot');
  });
});
