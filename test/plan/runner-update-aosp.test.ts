// `update image-*.zip` compared with the reference: the AOSP fastboot client
// (`fastboot`, v29) run against an identical emulator with the same zip.
// Every write the device receives (downloads with their SHA-256, flash,
// set_active, erase, reboot) must be the same, in the same order; getvars are
// left out (AOSP asks more of them). Documented differences: Debian's v29
// client cannot format for -w (no mke2fs beside it) where miflash builds the
// filesystems with the host's mke2fs / mkfs.f2fs; miflash checks the whole zip
// before the first write.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runAospFastboot, withEmulator } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';
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

describe('update: same device writes as AOSP fastboot v29', needs('fastboot'), () => {
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

  it('-w update: the same writes up to the wipe; then miflash formats userdata, cache and metadata on the host (as AOSP v35 with its bundled mke2fs / make_f2fs) and reboots', { ...needs('mke2fs', 'mkfs.f2fs'), timeout: 30_000 }, async () => {
    const { ours, aosp } = await both(['-w', 'update'], {}, {});
    expect(ours.error).toBeUndefined();
    const shape = (log: string[]) => writes(log).map((l) => (l.startsWith('download ') ? 'download' : l));
    const theirs = writes(aosp.log);
    const mine = writes(ours.log);
    const at = theirs.indexOf('erase:userdata');
    expect(at).toBeGreaterThan(0);
    expect(mine.slice(0, at + 1)).toEqual(theirs.slice(0, at + 1));
    expect(shape(ours.log).slice(at + 1)).toEqual(['download', 'flash:userdata', 'erase:cache', 'download', 'flash:cache', 'erase:metadata', 'download', 'flash:metadata', 'reboot']);
    if (aosp.code === 0) {
      // An AOSP client with its own mke2fs / make_f2fs beside it: the same sequence of writes.
      expect(shape(ours.log)).toEqual(shape(aosp.log));
    } else {
      // Debian's v29 client has no mke2fs beside it (it looks in its own folder) and stops after the first erase.
      expect(aosp.stderr).toMatch(/Cannot generate image for userdata/);
    }
  });
});
