// `update image-*.zip` compared with the reference: the AOSP fastboot client
// (/usr/bin/fastboot, v29) run against an identical emulator with the same zip.
// Every write the device receives (downloads with their SHA-256, flash,
// set_active, erase, reboot) must be the same, in the same order; getvars are
// left out (AOSP asks more of them). Documented differences: AOSP formats after
// erasing for -w (mke2fs/make_f2fs), miflash only erases; miflash checks the
// whole zip before the first write.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AOSP_FASTBOOT, runAospFastboot, withEmulator } from '../helpers/emulator.js';
import { buildGoogleRom, GOOGLE_PARTITIONS, runGoogle, writes, type GoogleRomOptions } from './runner-google-rom.js';
import type { FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-update-aosp-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;

async function both(args: string[], rom: GoogleRomOptions, emu: Partial<FastbootEmulatorOptions>) {
  const built = await buildGoogleRom(path.join(work, `rom-${++n}`), { ...rom, script: `fastboot ${args.join(' ')} image-emu-test1.zip\n` });
  const ours = await runGoogle(built, { emu });
  const aosp = await withEmulator({ product: 'emu', partitions: GOOGLE_PARTITIONS, ...emu }, async (e) => {
    const r = await runAospFastboot(e.port, [...args, path.join(built.root, built.zipName)]);
    return { ...r, log: [...e.log] };
  });
  return { ours, aosp };
}

describe.skipIf(!existsSync(AOSP_FASTBOOT))('update: same device writes as AOSP fastboot v29', () => {
  it('non-A/B, update (reboots at the end), images split at a small max-download-size', async () => {
    const { ours, aosp } = await both(['update'], { systemBlocks: 200 }, { maxDownloadSize: 128 * 1024 });
    expect(ours.error).toBeUndefined();
    expect(aosp.code, aosp.stderr).toBe(0);
    expect(writes(aosp.log).filter((l) => l === 'flash:system').length).toBeGreaterThan(1);
    expect(writes(ours.log)).toEqual(writes(aosp.log));
    expect(writes(ours.log).at(-1)).toBe('reboot');
  }, 30_000);

  it('A/B, --skip-reboot update: set_active to the current slot first, system_other.img to the other slot', async () => {
    const { ours, aosp } = await both(
      ['--skip-reboot', 'update'],
      { omit: ['recovery.img'], extra: [{ name: 'system_other.img', data: Buffer.alloc(12288, 9) }] },
      { slots: ['a', 'b'] },
    );
    expect(ours.error).toBeUndefined();
    expect(aosp.code, aosp.stderr).toBe(0);
    expect(writes(ours.log)).toEqual(writes(aosp.log));
    expect(writes(ours.log)).toContain('flash:system_b');
  }, 30_000);

  it('-w update: the same writes up to the wipe; AOSP then formats on the host, miflash erases cache and metadata too and reboots', async () => {
    const { ours, aosp } = await both(['-w', 'update'], {}, {});
    expect(ours.error).toBeUndefined();
    const theirs = writes(aosp.log);
    const mine = writes(ours.log);
    const at = theirs.indexOf('erase:userdata');
    expect(at).toBeGreaterThan(0);
    expect(mine.slice(0, at + 1)).toEqual(theirs.slice(0, at + 1));
    expect(mine.slice(at + 1)).toEqual(['erase:cache', 'erase:metadata', 'reboot']);
    if (aosp.code === 0) {
      // A host with working mke2fs/make_f2fs: AOSP flashes generated filesystems where miflash only erased.
      expect(theirs.slice(at + 1).some((l) => l.startsWith('download'))).toBe(true);
    } else {
      expect(aosp.stderr).toMatch(/Cannot generate image for userdata/);
    }
  }, 30_000);
});
