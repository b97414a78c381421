import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = new URL('../../bin/miflash.js', import.meta.url).pathname;

describe('miflash binary', () => {
  it('prints the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const out = execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe(pkg.version);
  });

  it('keeps start-up light: --version loads neither the USB stack nor the UI libraries', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../dist/bundle/manifest.json', import.meta.url), 'utf8')) as { chunks: Record<string, string[]> };
    // With MIFLASH_TRACE=1 the launcher names every chunk it loads; the manifest names the libraries inside each.
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: { ...process.env, MIFLASH_TRACE: '1' } });
    expect(r.status).toBe(0);
    const loaded = [...r.stderr.matchAll(/^miflash-trace-chunk (\S+) /gm)].map((m) => m[1]!);
    expect(loaded).toContain('main.cjs');
    const libs = new Set(loaded.flatMap((c) => manifest.chunks[c] ?? []));
    expect(libs.has('commander')).toBe(true);
    for (const heavy of ['usb', 'ora', 'chalk', 'yauzl', 'tar', 'zod', 'fast-xml-parser']) expect(libs.has(heavy), heavy).toBe(false);
  });

  it('runs from its code cache the second time, and ignores a damaged one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'miflash-code-cache-'));
    const env = { ...process.env, MIFLASH_CACHE_DIR: dir, MIFLASH_TRACE: '1' };
    const states = () => {
      const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env });
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
      return [...r.stderr.matchAll(/^miflash-trace-chunk \S+ (\S+)$/gm)].map((m) => m[1]);
    };
    expect(states()).not.toContain('cached'); // first run: compiled, then saved at exit
    const files = readdirSync(dir).filter((f) => /^code-.*-version\.bin$/.test(f));
    expect(files).toHaveLength(1);
    expect(new Set(states())).toEqual(new Set(['cached']));
    // Damaged (one byte of V8's data, which V8 itself would not notice and crash on; or the file
    // cut short): the run compiles as if there were no cache.
    const file = join(dir, files[0]!);
    const data = readFileSync(file);
    data[data.length >> 1] ^= 0x10;
    writeFileSync(file, data);
    expect(states()).toContain('compiled'); // the chunk whose data it was
    writeFileSync(file, data.subarray(0, 100));
    expect(states()).not.toContain('cached');
    expect(new Set(states())).toEqual(new Set(['cached'])); // and rewritten
  });

  it('writes no code cache when MIFLASH_CODE_CACHE=0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'miflash-code-cache-'));
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: { ...process.env, MIFLASH_CACHE_DIR: dir, MIFLASH_CODE_CACHE: '0' } });
    expect(r.status).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('runs the bundle unless tsc wrote its output after it (a lone tsc run must not leave an old bundle running)', () => {
    // A copy of the launcher next to a stand-in bundle and tsc output that say which one ran.
    const root = mkdtempSync(join(tmpdir(), 'miflash-launcher-'));
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'dist', 'bundle'), { recursive: true });
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
    copyFileSync(bin, join(root, 'bin', 'miflash.js'));
    writeFileSync(join(root, 'bin', 'package.json'), '{ "type": "commonjs" }');
    writeFileSync(join(root, 'dist', 'bundle', 'main.cjs'), 'process.stdout.write("bundle");');
    writeFileSync(join(root, 'dist', 'bundle', 'manifest.json'), JSON.stringify({ entry: 'main.cjs', buildId: 'test', chunks: {} }));
    writeFileSync(join(root, 'dist', 'cli', 'main.js'), 'process.stdout.write("tsc");');
    const ran = () => execFileSync(process.execPath, [join(root, 'bin', 'miflash.js')], { encoding: 'utf8', env: { ...process.env, MIFLASH_CODE_CACHE: '0' } });
    const at = (file: string, s: number) => utimesSync(join(root, 'dist', file), s, s);
    try {
      at('cli/main.js', 1000);
      at('bundle/manifest.json', 2000); // npm run build: tsc, then the bundle
      expect(ran()).toBe('bundle');
      at('cli/main.js', 3000); // tsc alone, later
      expect(ran()).toBe('tsc');
      rmSync(join(root, 'dist', 'cli'), { recursive: true });
      expect(ran()).toBe('bundle');
      rmSync(join(root, 'dist', 'bundle'), { recursive: true });
      expect(() => ran()).toThrow(/not built yet/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('rejects an unknown command with the usage exit code', () => {
    const r = spawnSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
  });
});
