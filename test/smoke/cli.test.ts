import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = new URL('../../bin/miflash.js', import.meta.url).pathname;

describe('miflash binary', () => {
  it('prints the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const out = execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe(pkg.version);
  });

  it('keeps start-up light: --version loads neither the USB stack nor the UI libraries', () => {
    // A resolve hook (running in Node's loader thread) appends every specifier and the URL it resolved to to a file.
    const log = join(mkdtempSync(join(tmpdir(), 'miflash-startup-')), 'resolved.txt');
    const hook = `import { appendFileSync } from 'node:fs';
      export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, spec + '\\t' + r.url + '\\n'); return r; }`;
    const register = `import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
    const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, bin, '--version'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]);
    // Bundled (dist/bundle) or not (dist/cli), a library shows as its specifier or as its sources inside a loaded chunk.
    const sources = loaded.filter(([, url]) => url.startsWith('file:') && url.includes('/dist/')).map(([, url]) => readFileSync(fileURLToPath(url), 'utf8'));
    const has = (lib: string) => loaded.some(([spec]) => spec === lib) || sources.some((text) => text.includes(`node_modules/${lib}/`));
    expect(has('commander')).toBe(true);
    for (const heavy of ['usb', 'ora', 'chalk', 'yauzl', 'tar', 'zod']) expect(has(heavy), heavy).toBe(false);
  });

  it('rejects an unknown command with the usage exit code', () => {
    const r = spawnSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
  });
});
