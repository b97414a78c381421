import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { CorruptDownloadError, UnsafeArchiveError, md5PrefixFromName, openRom } from '../../src/rom/index.js';
import { buildSyntheticRom } from '../../src/rom/synthetic.js';
import { makeTar, makeZip } from './helpers.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'miflash-archive-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const md5 = (p: string) => createHash('md5').update(readFileSync(p)).digest('hex');

async function expectError<T extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  let err: unknown;
  await p.catch((e: unknown) => (err = e));
  expect(err).toBeInstanceOf(cls);
  return err as T;
}

describe('md5 prefix from Xiaomi archive names', () => {
  it('reads _<10 hex> before the extension', () => {
    expect(md5PrefixFromName('/x/raphaelin_in_global_images_V12.0.5.0.QFKINXM_20210315.0000.00_10.0_in_d7a2e1cbd3.tgz')).toBe('d7a2e1cbd3');
    expect(md5PrefixFromName('oxygen_global_images_V11_7.1_global_c98be7c892.tar.gz')).toBe('c98be7c892');
    expect(md5PrefixFromName('rom_D7A2E1CBD3.zip')).toBe('d7a2e1cbd3');
    expect(md5PrefixFromName('rom_d7a2e1cbd.tgz')).toBeUndefined();
    expect(md5PrefixFromName('rom.tgz')).toBeUndefined();
  });
});

describe('tgz ROMs', () => {
  let tgz: string;
  beforeAll(async () => {
    const src = join(work, 'src');
    await buildSyntheticRom(join(src, 'liuqin_images_OS2'), { from: 'liuqin', anti: 2 });
    const plain = join(work, 'liuqin_images_OS2.tgz');
    await tarCreate({ gzip: true, file: plain, cwd: src }, ['liuqin_images_OS2']);
    tgz = join(work, `liuqin_images_OS2_${md5(plain).slice(0, 10)}.tgz`);
    renameSync(plain, tgz);
  });

  it('extracts beside the archive (one nested level), verifies the name MD5, then reuses the cache', async () => {
    const seen: number[] = [];
    const rom = await openRom(tgz, { onProgress: (p) => seen.push(p.done) });
    expect(rom.source).toMatchObject({ kind: 'tgz', reused: false });
    expect(rom.root).toBe(join(tgz.replace(/\.tgz$/, '.miflash'), 'liuqin_images_OS2'));
    expect(rom.scripts.map((s) => s.name)).toContain('flash_all.sh');
    expect(rom.antiVersion).toBe(2);
    expect(rom.crcList?.size).toBeGreaterThan(10);
    expect(seen.at(-1)).toBe(readFileSync(tgz).length);
    const again = await openRom(tgz);
    expect(again.source.reused).toBe(true);
    expect(again.root).toBe(rom.root);
  });

  it('--cache puts the extraction under another folder', async () => {
    const cache = join(work, 'cache');
    const rom = await openRom(tgz, { cache });
    expect(rom.root.startsWith(join(cache, ''))).toBe(true);
    expect(existsSync(join(rom.root, 'images', 'crclist.txt'))).toBe(true);
  });

  it('a wrong name MD5 is a corrupted download (exit 3) and leaves no cache behind', async () => {
    const bad = join(work, 'liuqin_images_OS2_0123456789.tgz');
    writeFileSync(bad, readFileSync(tgz));
    const err = await expectError(openRom(bad), CorruptDownloadError);
    expect(err.exitCode).toBe(ExitCode.GATE_REFUSED);
    expect(err.message).toMatch(/does not start with 0123456789.*corrupted download/);
    expect(readdirSync(work).filter((f) => f.startsWith('liuqin_images_OS2_0123456789.miflash'))).toEqual([]);
  });

  const hostile: Array<[string, Parameters<typeof makeTar>[0], RegExp]> = [
    ['dot-dot path', [{ type: 'dir', name: 'rom/' }, { type: 'file', name: 'rom/../../evil.txt', data: 'x' }], /"\.\." and would escape/],
    ['absolute path', [{ type: 'file', name: '/tmp/miflash-evil.txt', data: 'x' }], /absolute path/],
    ['symlink pointing outside', [{ type: 'dir', name: 'rom/images/' }, { type: 'symlink', name: 'rom/images/boot.img', target: '../../../etc/passwd' }], /points outside/],
    ['absolute symlink', [{ type: 'symlink', name: 'rom/x', target: '/etc/passwd' }], /absolute path/],
    ['hard link escaping', [{ type: 'hardlink', name: 'rom/x', target: '../etc/passwd' }], /would escape/],
  ];
  for (const [what, entries, msg] of hostile) {
    it(`refuses a ${what}`, async () => {
      const dir = mkdtempSync(join(work, 'hostile-'));
      const file = join(dir, 'evil.tgz');
      writeFileSync(file, makeTar(entries));
      const err = await expectError(openRom(file), UnsafeArchiveError);
      expect(err.exitCode).toBe(ExitCode.BAD_INPUT);
      expect(err.message).toMatch(msg);
      expect(existsSync(join(dir, 'evil.txt'))).toBe(false);
      expect(existsSync(join(work, 'evil.txt'))).toBe(false);
      expect(readdirSync(dir)).toEqual(['evil.tgz']);
    });
  }

  it('keeps links that stay inside the folder', async () => {
    const dir = mkdtempSync(join(work, 'links-'));
    const file = join(dir, 'rom.tar');
    writeFileSync(
      file,
      makeTar(
        [
          { type: 'file', name: 'rom/flash_all.sh', data: 'fastboot $* flash boot `dirname $0`/images/boot.img\n' },
          { type: 'file', name: 'rom/images/real.img', data: 'abc' },
          { type: 'symlink', name: 'rom/images/boot.img', target: 'real.img' },
        ],
        false,
      ),
    );
    const rom = await openRom(file);
    expect(lstatSync(join(rom.imagesDir, 'boot.img')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(rom.imagesDir, 'boot.img'), 'utf8')).toBe('abc');
  });
});

describe('tgz extraction in one pass', () => {
  /** A file of data, long zero runs (left as holes) and data again, and small files. */
  function mixed(seed: number): Buffer {
    const data = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
    return Buffer.concat([data(300_001), Buffer.alloc(5 << 20), data(70_000), Buffer.alloc(3 << 20)]);
  }

  it('writes every file byte for byte (zero runs as holes), and returns digests equal to reading the files back', async () => {
    const dir = mkdtempSync(join(work, 'onepass-'));
    const files = { 'rom/images/a.img': mixed(1), 'rom/images/zeros.img': Buffer.alloc(20 << 20), 'rom/images/tiny.txt': Buffer.from('x'), 'rom/images/empty.img': Buffer.alloc(0) };
    const tgz = join(dir, 'rom.tgz');
    writeFileSync(tgz, makeTar([{ type: 'dir', name: 'rom/' }, ...Object.entries(files).map(([name, data]) => ({ type: 'file' as const, name, data }))]));
    const { extractTar } = await import('../../src/rom/archive.js');
    const { digestFile } = await import('../../src/rom/hash.js');
    const out = join(dir, 'out');
    const { digests } = await extractTar(tgz, out);
    for (const [name, data] of Object.entries(files)) {
      expect(readFileSync(join(out, name)).equals(data), name).toBe(true);
      expect(digests.get(name), name).toEqual(await digestFile(join(out, name)));
    }
    expect([...digests.keys()].sort()).toEqual(Object.keys(files).sort());
    // Where the filesystem has holes (a truncated file takes no blocks), the zero file takes (almost) none either.
    const { truncateSync, statSync } = await import('node:fs');
    const probe = join(dir, 'probe');
    writeFileSync(probe, '');
    truncateSync(probe, 8 << 20);
    if (statSync(probe).blocks === 0) expect(statSync(join(out, 'rom/images/zeros.img')).blocks * 512).toBeLessThan(1 << 20);
  });

  it('an archive cut short fails as a damaged archive, not a hang', async () => {
    const dir = mkdtempSync(join(work, 'cut-'));
    const whole = makeTar([{ type: 'file', name: 'rom/images/a.img', data: mixed(2) }]);
    const tgz = join(dir, 'rom.tgz');
    writeFileSync(tgz, whole.subarray(0, Math.floor(whole.length / 2)));
    const { extractTar } = await import('../../src/rom/archive.js');
    await expect(extractTar(tgz, join(dir, 'out'))).rejects.toMatchObject({ exitCode: ExitCode.BAD_INPUT });
  });

  it('remembers the digests: checking the extracted images afterwards uses them (a planted wrong digest shows it)', async () => {
    const dir = mkdtempSync(join(work, 'remember-'));
    const src = join(dir, 'src');
    await buildSyntheticRom(join(src, 'rom'), { from: 'cereus', seed: 5 });
    const plain = join(dir, 'rom.tgz');
    await tarCreate({ gzip: true, file: plain, cwd: src }, ['rom']);
    const rom = await openRom(plain);
    const { DigestCache, identityOf } = await import('../../src/rom/digest-cache.js');
    const { checkRomImages } = await import('../../src/plan/preflight.js');
    const { planForRom } = await import('../../src/rom/index.js');
    const { realpathSync, statSync: st } = await import('node:fs');
    const plan = await planForRom(rom, { mode: 'lock' });
    const boot = join(rom.imagesDir, 'boot.img');
    const id = identityOf(st(boot, { bigint: true }));
    const cached = await new DigestCache().get(realpathSync(boot), id);
    expect(cached?.md5).toBe(rom.md5?.get('boot.img'));
    // Plant a wrong MD5 for this very version of the file: the check trusts the cache, so it must now fail...
    const cache = new DigestCache();
    cache.put(realpathSync(boot), id, { ...cached!, md5: '0'.repeat(32) });
    await cache.save();
    await expect(checkRomImages(rom, plan, { limit: 512 << 20 })).rejects.toThrow(/boot\.img.*MD5.*mismatch/);
    // ...and once the file is rewritten (same bytes), the planted entry no longer applies.
    writeFileSync(boot, readFileSync(boot));
    await expect(checkRomImages(rom, plan, { limit: 512 << 20 })).resolves.toBeDefined();
  });
});

describe('zip ROMs', () => {
  it('extracts a zip, checks its name MD5', async () => {
    const dir = mkdtempSync(join(work, 'zip-'));
    const body = makeZip([
      { name: 'rom/', dir: true },
      { name: 'rom/flash_all.bat', data: 'fastboot %* flash boot %~dp0images\\boot.img || @echo "Flash boot error" && exit /B 1\n' },
      { name: 'rom/images/boot.img', data: 'boot!' },
    ]);
    const good = join(dir, `rom_${createHash('md5').update(body).digest('hex').slice(0, 10)}.zip`);
    writeFileSync(good, body);
    const rom = await openRom(good);
    expect(rom.source.kind).toBe('zip');
    expect(readFileSync(join(rom.imagesDir, 'boot.img'), 'utf8')).toBe('boot!');
    expect(rom.scripts.map((s) => [s.name, s.dialect, s.mode])).toEqual([['flash_all.bat', 'bat', 'clean']]);
    const bad = join(dir, 'rom_ffffffffff.zip');
    writeFileSync(bad, body);
    await expectError(openRom(bad), CorruptDownloadError);
  });

  it('refuses ../ entries and symlinks leaving the folder, writing nothing', async () => {
    for (const [entries, msg] of [
      [[{ name: 'rom/images/a.img', data: 'a' }, { name: 'rom/../../evil.txt', data: 'x' }], /escape/],
      [[{ name: 'rom/images/a.img', data: 'a' }, { name: 'rom/images/b.img', symlinkTo: '../../../../etc/passwd' }], /points outside/],
      [[{ name: 'rom/images/b.img', symlinkTo: '/etc/passwd' }], /absolute path/],
    ] as const) {
      const dir = mkdtempSync(join(work, 'zipbad-'));
      const file = join(dir, 'evil.zip');
      writeFileSync(file, makeZip(entries as unknown as Parameters<typeof makeZip>[0]));
      const err = await expectError(openRom(file), UnsafeArchiveError);
      expect(err.message).toMatch(msg);
      expect(readdirSync(dir)).toEqual(['evil.zip']);
    }
  });
});

describe('folders', () => {
  it('finds the ROM one level down and reports folders that are not ROMs', async () => {
    const dir = mkdtempSync(join(work, 'folder-'));
    await buildSyntheticRom(join(dir, 'cereus_images'), { from: 'cereus' });
    const rom = await openRom(dir);
    expect(rom.root).toBe(join(dir, 'cereus_images'));
    expect(rom.scripts.map((s) => `${s.name}:${s.mode}`)).toEqual(['flash_all_lock.bat:lock', 'flash_all_lock.sh:lock']);
    expect(rom.misc?.device).toBe('cereus');
    expect(rom.md5?.get('crclist.txt')).toMatch(/^[0-9a-f]{32}$/);
    expect(rom.securityPatchLevel).toBe('2025-01-01');
    const empty = mkdtempSync(join(work, 'empty-'));
    await expect(openRom(empty)).rejects.toThrow(/no flash_all\*\.sh\/\.bat\/\.cmd script or images\/ folder/);
    await expect(openRom(join(work, 'nope'))).rejects.toThrow(/no such file or folder/);
  });
});

describe('free-space estimate', () => {
  it('uses the gzip ISIZE for .tgz and the central directory for .zip', async () => {
    const { estimateExtractedSize } = await import('../../src/rom/archive.js');
    const dir = mkdtempSync(join(work, 'est-'));
    const tar = makeTar([{ type: 'file', name: 'rom/images/a.img', data: Buffer.alloc(300_000) }], false);
    writeFileSync(join(dir, 'a.tgz'), makeTar([{ type: 'file', name: 'rom/images/a.img', data: Buffer.alloc(300_000) }]));
    expect(await estimateExtractedSize(join(dir, 'a.tgz'))).toBe(tar.length);
    writeFileSync(join(dir, 'a.zip'), makeZip([{ name: 'a', data: 'x'.repeat(1000) }, { name: 'b', data: 'y'.repeat(24) }]));
    expect(await estimateExtractedSize(join(dir, 'a.zip'))).toBe(1024);
  });
});
