// `miflash update`, `format[:FS[:SIZE]]` and `-w` as a user runs them, against
// `miflash emulate --log`: the same writes as the AOSP client where Debian's
// v29 client can do the same, real filesystems (checked with e2fsck /
// fsck.f2fs on the emulator's stored partitions), and confirmations before
// user data goes.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runAospFastboot, spawnCliEmulator, tempDir, type CliEmulator } from '../helpers/emulator.js';
import { buildGoogleRom, type GoogleRom } from '../plan/runner-google-rom.js';
import { needs, peerPath } from '../helpers/peers.js';

const tmp = tempDir('miflash-cli-update-');
afterAll(() => tmp.cleanup());
// Formatting runs the host's mke2fs / mkfs.f2fs inside `miflash` (a child process the peer guard
// cannot see): tests that format are marked with both, and the checkers they run.
const FORMATS = needs('mke2fs', 'mkfs.f2fs', 'e2fsck', 'fsck.f2fs');

function miflash(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { ANDROID_SERIAL: _a, FASTBOOT_DEVICE: _f, ...env } = process.env;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

let n = 0;
async function device(extra: string[] = []): Promise<{ emu: CliEmulator; log: () => string[]; store: string }> {
  const log = path.join(tmp.dir, `log-${++n}`);
  const store = path.join(tmp.dir, `store-${n}`);
  writeFileSync(log, '');
  const emu = await spawnCliEmulator(['--store', store, '--product', 'emu', '--partition', 'userdata=64M', '--partition', 'bootloader=1M', '--partition', 'radio=1M', '--log', log, ...extra]);
  return { emu, store, log: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}
const writes = (log: string[]) => log.filter((l) => !l.startsWith('getvar:')).map((l) => (l.startsWith('download ') ? 'download' : l));
const fsckOk = (tool: 'e2fsck' | 'fsck.f2fs', file: string) => {
  try {
    execFileSync(peerPath(tool), tool === 'e2fsck' ? ['-fn', file] : [file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

let rom: GoogleRom;
beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/cli/commands/device-update.js'))) throw new Error('build first: npx tsc -p .');
  rom = await buildGoogleRom(path.join(tmp.dir, 'rom'));
});

describe('update ZIP', () => {
  it('--skip-reboot update: the same writes, byte for byte, as the AOSP client', { ...needs('fastboot'), timeout: 60_000 }, async () => {
    const zip = path.join(rom.root, rom.zipName);
    const a = await device();
    const b = await device();
    try {
      const ra = await runAospFastboot(a.emu.port, ['--skip-reboot', 'update', zip]);
      const rb = await miflash(['-s', b.emu.address, 'update', '--skip-reboot', zip]);
      expect(ra.code, ra.stderr).toBe(0);
      expect(rb.code, rb.stderr).toBe(0);
      const aw = a.log().filter((l) => !l.startsWith('getvar:'));
      expect(b.log().filter((l) => !l.startsWith('getvar:'))).toEqual(aw);
      expect(aw.filter((l) => l.startsWith('flash:'))).toEqual(['flash:boot', 'flash:recovery', 'flash:vbmeta', 'flash:system', 'flash:vendor']);
    } finally {
      await a.emu.stop();
      await b.emu.stop();
    }
  });

  it('-w needs a confirmation: without --yes and no terminal nothing is written (130)', async () => {
    const d = await device();
    try {
      const r = await miflash(['-s', d.emu.address, 'update', '-w', path.join(rom.root, rom.zipName)]);
      expect(r.code).toBe(130);
      expect(d.log().every((l) => l.startsWith('getvar:'))).toBe(true);
    } finally {
      await d.emu.stop();
    }
  });

  it('-w --yes: images, then userdata / cache / metadata erased and formatted, then reboot', { ...FORMATS, timeout: 60_000 }, async () => {
    const d = await device();
    try {
      const r = await miflash(['-s', d.emu.address, 'update', '-w', '--yes', path.join(rom.root, rom.zipName)]);
      expect(r.code, r.stderr).toBe(0);
      expect(writes(d.log()).slice(-10)).toEqual(['erase:userdata', 'download', 'flash:userdata', 'erase:cache', 'download', 'flash:cache', 'erase:metadata', 'download', 'flash:metadata', 'reboot']);
    } finally {
      await d.emu.stop();
    }
    expect(fsckOk('e2fsck', path.join(d.store, 'metadata.img'))).toBe(true);
    expect(fsckOk('fsck.f2fs', path.join(d.store, 'userdata.img'))).toBe(true);
  });

  it('flashall from $ANDROID_PRODUCT_OUT: the same writes as the AOSP client (A/B: *_other to slot b)', { ...needs('fastboot'), timeout: 60_000 }, async () => {
    const prod = path.join(tmp.dir, 'product');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(prod, { recursive: true });
    for (const [name, size] of [['boot.img', 20_000], ['system.img', 30_000], ['vbmeta.img', 4096], ['system_other.img', 4096]] as const) {
      writeFileSync(path.join(prod, name), Buffer.alloc(size, name.length));
    }
    writeFileSync(path.join(prod, 'android-info.txt'), 'require board=emu\n');
    const a = await device(['--slots', 'a,b']);
    const b = await device(['--slots', 'a,b']);
    try {
      const { spawnSync } = await import('node:child_process');
      const ra = spawnSync(peerPath('fastboot'), ['-s', `tcp:127.0.0.1:${a.emu.port}`, 'flashall', '--skip-reboot'], { env: { ...process.env, ANDROID_PRODUCT_OUT: prod }, timeout: 20_000 });
      expect(ra.status, String(ra.stderr)).toBe(0);
      const { ANDROID_SERIAL: _a, ...env } = process.env;
      const rb = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), '-s', b.emu.address, 'flashall', '--skip-reboot'], { env: { ...env, ANDROID_PRODUCT_OUT: prod }, timeout: 20_000 });
      expect(rb.status, String(rb.stderr)).toBe(0);
      const aw = a.log().filter((l) => !l.startsWith('getvar:'));
      expect(b.log().filter((l) => !l.startsWith('getvar:'))).toEqual(aw);
      expect(aw.filter((l) => !l.startsWith('download'))).toEqual(['set_active:a', 'flash:boot_a', 'flash:vbmeta_a', 'flash:system_a', 'flash:system_b']);
    } finally {
      await a.emu.stop();
      await b.emu.stop();
    }
  });

  it('android-info.txt not met: refused (3) before any write; --force goes on with a warning, as AOSP', async () => {
    const other = await buildGoogleRom(path.join(tmp.dir, 'rom-tuna'), { board: 'tuna' });
    const zip = path.join(other.root, other.zipName);
    const d = await device();
    try {
      const no = await miflash(['-s', d.emu.address, 'update', '--skip-reboot', zip]);
      expect(no.code).toBe(3);
      expect(d.log().every((l) => l.startsWith('getvar:'))).toBe(true);
      const yes = await miflash(['-s', d.emu.address, 'update', '--skip-reboot', '--force', zip]);
      expect(yes.code, yes.stderr).toBe(0);
      expect(d.log()).toContain('flash:system');
    } finally {
      await d.emu.stop();
    }
  }, 60_000);

  it('a missing zip is bad input (2)', async () => {
    const r = await miflash(['-s', 'tcp:127.0.0.1:1', 'update', path.join(tmp.dir, 'nope.zip')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nope\.zip/);
  });
});

describe('format and -w', () => {
  it('format:ext4 cache and format userdata (f2fs, the reported type) make filesystems fsck accepts', { ...FORMATS, timeout: 60_000 }, async () => {
    const d = await device();
    try {
      expect((await miflash(['-s', d.emu.address, 'format:ext4', 'cache'])).code).toBe(0);
      const r = await miflash(['-s', d.emu.address, 'format', 'userdata']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Creating f2fs filesystem for 'userdata' \(64 MB\)/);
      expect(writes(d.log())).toEqual(['download', 'flash:cache', 'download', 'flash:userdata']);
    } finally {
      await d.emu.stop();
    }
    expect(fsckOk('e2fsck', path.join(d.store, 'cache.img'))).toBe(true);
    expect(fsckOk('fsck.f2fs', path.join(d.store, 'userdata.img'))).toBe(true);
  });

  it('-w with another command is refused rather than ignored (2)', async () => {
    const r = await miflash(['-s', 'tcp:127.0.0.1:1', '-w', 'flash', 'boot', 'boot.img']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-w works alone or with update \/ flashall, not with flash/);
  });

  it('format:btrfs is refused before anything is sent', async () => {
    const d = await device();
    try {
      const r = await miflash(['-s', d.emu.address, 'format:btrfs', 'userdata']);
      expect(r.code).toBe(2);
      expect(d.log()).toEqual([]);
    } finally {
      await d.emu.stop();
    }
  });

  it('-w --yes alone wipes the three partitions as fastboot -w; -w alone without a terminal asks and stops (130)', { ...FORMATS, timeout: 60_000 }, async () => {
    const d = await device();
    try {
      const no = await miflash(['-s', d.emu.address, '-w']);
      expect(no.code).toBe(130);
      expect(d.log()).toEqual([]);
      const r = await miflash(['-s', d.emu.address, '-w', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(writes(d.log())).toEqual(['erase:userdata', 'download', 'flash:userdata', 'erase:cache', 'download', 'flash:cache', 'erase:metadata', 'download', 'flash:metadata']);
    } finally {
      await d.emu.stop();
    }
  });
});
