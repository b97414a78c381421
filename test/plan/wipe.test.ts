// -w and format on the host side: AOSP's mke2fs arguments, the sparse image
// that leaves never-written blocks as DONT_CARE, and what happens when the
// tools are missing (erase and say so for -w; refuse before writing for format).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FastbootClient } from '../../src/fastboot/client.js';
import { blocksSkippingZeros, generateFilesystem, mke2fsArgs, mkf2fsArgs } from '../../src/fastboot/mkfs.js';
import { EmulatedFastbootDevice, runFastbootDevice, type FastbootEmulatorOptions } from '../../src/emulator/fastboot/index.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import { formatCommand, wipeNote, wipeUserData } from '../../src/plan/wipe.js';
import { writeFileSync } from 'node:fs';
import { needs, peerPath } from '../helpers/peers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-wipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

let n = 0;
function memoryClient(opts: Partial<FastbootEmulatorOptions> = {}) {
  const device = new EmulatedFastbootDevice({ store: path.join(dir, `store-${++n}`), partitions: { userdata: 64 * MiB, cache: 16 * MiB }, ...opts });
  const pair = createMemoryTransportPair({ preferredWriteSize: 64 * 1024, maxInFlight: 2 });
  void runFastbootDevice(pair.device, device);
  return { device, client: new FastbootClient(pair.host, { timeoutMs: 5000 }) };
}

describe('AOSP generator arguments', () => {
  it('mke2fs: ext4, 4 KiB blocks, uninit_bg, stride from the flash block sizes, size in blocks', () => {
    expect(mke2fsArgs('/x.img', 16 * MiB, 0, 0)).toEqual(['-t', 'ext4', '-b', '4096', '-O', 'uninit_bg', '-q', '-F', '/x.img', '4096']);
    // stride = max(8 KiB, logical) / 4 KiB; stripe width = erase / 4 KiB, at least the stride
    expect(mke2fsArgs('/x.img', 16 * MiB, 512 * 1024, 4096)).toContain('stride=2,stripe-width=128');
    expect(mke2fsArgs('/x.img', 16 * MiB, 4096, 16384)).toContain('stride=4,stripe-width=4');
    expect(mke2fsArgs('/x.img', 16 * MiB, 0, 0, { casefold: true, projid: true })).toEqual(['-t', 'ext4', '-b', '4096', '-E', 'encoding=utf8', '-O', 'uninit_bg', '-I', '512', '-O', 'casefold', '-q', '-F', '/x.img', '4096']);
  });

  it('mkfs.f2fs: -g android, feature options as AOSP', () => {
    expect(mkf2fsArgs('/y.img')).toEqual(['-g', 'android', '-q', '-f', '/y.img']);
    expect(mkf2fsArgs('/y.img', { compress: true })).toEqual(['-g', 'android', '-O', 'compression', '-O', 'extra_attr', '-q', '-f', '/y.img']);
  });

  it('holes become DONT_CARE, written zeros stay FILL 0 (an extent map is read; without one everything counts as written)', async () => {
    const f = path.join(dir, 'holes.img');
    const b = Buffer.alloc(3 * 4096);
    b.fill(7, 4096, 8192); // block 1 data; block 0 and 2 written zeros
    writeFileSync(f, b);
    const { truncateSync } = await import('node:fs');
    truncateSync(f, 64 * 4096); // blocks 3.. are a hole
    const img = await blocksSkippingZeros(f);
    const covered = img.blocks.reduce((sum, r) => sum + Math.ceil(r.len / 4096), 0);
    expect(covered).toBeLessThanOrEqual(3 + 61); // never more than the file
    expect(img.blocks[0]).toMatchObject({ kind: 'fill', block: 0, value: 0 });
    expect(img.blocks.some((r) => r.kind === 'fill' && r.value === 0x07070707)).toBe(true);
    const noMap = await blocksSkippingZeros(f, []); // no filefrag: the plain libsparse import
    expect(noMap.blocks.reduce((sum, r) => sum + Math.ceil(r.len / 4096), 0)).toBe(64);
  });
});

describe('filesystems made and flashed', needs('mke2fs', 'e2fsck'), () => {
  it('generates an ext4 of the asked size that e2fsck accepts', async () => {
    const g = await generateFilesystem('ext4', 32 * MiB);
    try {
      const { execFileSync } = await import('node:child_process');
      execFileSync(peerPath('e2fsck'), ['-fn', g.path], { stdio: 'ignore' });
      expect(g.image.len).toBe(32 * MiB);
    } finally {
      await g.cleanup();
    }
  });

  it('format with an explicit size (implicit hex, as AOSP fb_fix_numeric_var) warns that it differs from the partition', async () => {
    const { client, device } = memoryClient();
    const events: string[] = [];
    await formatCommand(client, 'cache', { fsType: 'ext4', size: '800000', onEvent: (e) => e.type === 'warning' && events.push(e.message) });
    expect(events[0]).toMatch(/cache size is 0x1000000, but 800000 was requested/);
    const sb = device.readPartition('cache');
    expect(sb.readUInt16LE(1080)).toBe(0xef53);
    expect(sb.readUInt32LE(1024 + 4)).toBe(0x800000 / 4096); // s_blocks_count_lo: 8 MiB in 4 KiB blocks
  });
});

describe('without the host tools', () => {
  it('-w erases and says Android will make the filesystems; nothing is downloaded', async () => {
    const { client, device } = memoryClient();
    const r = await wipeUserData(client, undefined, { searchPath: [] });
    expect(r.map((x) => [x.partition, x.outcome])).toEqual([
      ['userdata', 'no-tool'],
      ['cache', 'no-tool'],
      ['metadata', 'no-tool'],
    ]);
    expect(device.log.filter((l) => !l.startsWith('getvar'))).toEqual(['erase:userdata', 'erase:cache', 'erase:metadata']);
    expect(wipeNote(r, '-w')).toMatch(/^-w: userdata, cache, metadata erased, not formatted \(the host has no mkfs\.f2fs \(f2fs-tools\) or mke2fs \(e2fsprogs\).*Android creates the filesystem/);
  });

  it('format refuses before anything but getvars is sent, naming the package to install', async () => {
    const { client, device } = memoryClient();
    await expect(formatCommand(client, 'cache', { searchPath: [] })).rejects.toThrow(/mke2fs is not installed/);
    await expect(formatCommand(client, 'cache', { fsType: 'f2fs', searchPath: [] })).rejects.toMatchObject({ hint: expect.stringMatching(/apt-get install f2fs-tools/) });
    expect(device.log.every((l) => l.startsWith('getvar:'))).toBe(true);
  });

  it('a type with no generator: format refuses, -w erases it and notes it', async () => {
    const { client, device } = memoryClient({ vars: { 'partition-type:cache': 'raw' } });
    await expect(formatCommand(client, 'cache', { fsType: 'btrfs' })).rejects.toThrow(/only supported for ext4 and f2fs/);
    expect(device.log).toEqual([]);
    await expect(formatCommand(client, 'cache')).rejects.toThrow(/not supported for file system type 'raw'/);
    const r = await wipeUserData(client, undefined, { searchPath: [] });
    expect(r.find((x) => x.partition === 'cache')).toMatchObject({ outcome: 'erased', type: 'raw' });
    expect(device.log).toContain('erase:cache');
  });
});
