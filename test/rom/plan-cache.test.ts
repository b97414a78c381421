import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FlashPlan } from '../../src/plan/schema.js';
import { cachedParse, type RomReader } from '../../src/rom/plan-cache.js';
import { buildSyntheticRom } from '../../src/rom/synthetic.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'miflash-plan-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A ROM as the parse sees it: side files (undefined = missing) and a listing. */
function rom(files: Record<string, string | undefined>, listing = ['flash_all.sh', 'images/xbl.elf']): RomReader & { reads: number } {
  const r = {
    reads: 0,
    readRomText: (f: string) => {
      r.reads++;
      return files[f];
    },
    listRomFiles: () => [...listing],
  };
  return r;
}

/** A parse whose plan shows what it saw: the script text, a side file, and (optionally) the listing. */
function parser(opts: { list?: boolean } = {}) {
  const p = {
    calls: 0,
    parse: (text: string) => (reader: RomReader): FlashPlan => {
      p.calls++;
      const spl = reader.readRomText('images/security_patch_level.txt');
      const listed = opts.list ? reader.listRomFiles!().length : -1;
      return {
        version: 1,
        source: { script: 'flash_all.sh', dialect: 'sh', mode: 'clean', family: 'xiaomi' },
        warnings: [`text=${text}`, `spl=${spl ?? 'missing'}`, `listed=${listed}`],
        steps: [{ kind: 'flash', line: 1, onFailure: 'abort', partition: 'xbl', file: 'images/xbl.elf' }],
      };
    },
  };
  return p;
}

const opts = () => ({ sourceId: 'build-1', dir });

describe('cachedParse', () => {
  it('serves the same plan the second time without parsing', () => {
    const p = parser();
    const r = rom({ 'images/security_patch_level.txt': '2025-01-01' });
    const first = cachedParse({ text: 'A', file: 'flash_all.sh' }, r, p.parse('A'), opts());
    const again = cachedParse({ text: 'A', file: 'flash_all.sh' }, r, p.parse('A'), opts());
    expect(p.calls).toBe(1);
    expect(again).toEqual(first);
    expect(again.warnings).toContain('spl=2025-01-01');
    expect(readdirSync(dir).filter((f) => /^plan-[0-9a-f]{16}\.json$/.test(f))).toHaveLength(1);
  });

  it('parses again when any input, the build or a file the parse read changed', () => {
    const p = parser();
    const files: Record<string, string | undefined> = { 'images/security_patch_level.txt': '2025-01-01' };
    const r = rom(files);
    cachedParse({ text: 'A' }, r, p.parse('A'), opts());
    cachedParse({ text: 'B' }, r, p.parse('B'), opts()); // another script text
    expect(p.calls).toBe(2);
    cachedParse({ text: 'A', antiVersion: 3 }, r, p.parse('A'), opts()); // another option
    expect(p.calls).toBe(3);
    cachedParse({ text: 'A' }, r, p.parse('A'), { ...opts(), sourceId: 'build-2' }); // another parser
    expect(p.calls).toBe(4);
    files['images/security_patch_level.txt'] = '2025-02-01'; // a file it read
    const changed = cachedParse({ text: 'A' }, r, p.parse('A'), opts());
    expect(p.calls).toBe(5);
    expect(changed.warnings).toContain('spl=2025-02-01');
    delete files['images/security_patch_level.txt']; // now missing
    expect(cachedParse({ text: 'A' }, r, p.parse('A'), opts()).warnings).toContain('spl=missing');
    expect(p.calls).toBe(6);
    files['images/security_patch_level.txt'] = '2025-03-01'; // and back
    expect(cachedParse({ text: 'A' }, r, p.parse('A'), opts()).warnings).toContain('spl=2025-03-01');
    expect(p.calls).toBe(7);
    cachedParse({ text: 'A' }, r, p.parse('A'), opts());
    expect(p.calls).toBe(7);
  });

  it('checks the listing of the ROM when the parse looked at it, and only then', () => {
    const listing = ['flash_all.sh', 'images/xbl.elf'];
    const p = parser({ list: true });
    cachedParse({ text: 'A' }, rom({}, listing), p.parse('A'), opts());
    cachedParse({ text: 'A' }, rom({}, listing), p.parse('A'), opts());
    expect(p.calls).toBe(1);
    const grown = cachedParse({ text: 'A' }, rom({}, [...listing, 'images/new.img']), p.parse('A'), opts());
    expect(p.calls).toBe(2);
    expect(grown.warnings).toContain('listed=3');
    const q = parser(); // never lists: a new file does not matter to it
    cachedParse({ text: 'Q' }, rom({}, listing), q.parse('Q'), opts());
    cachedParse({ text: 'Q' }, rom({}, [...listing, 'x']), q.parse('Q'), opts());
    expect(q.calls).toBe(1);
  });

  it('parses when an entry is damaged, belongs to other inputs or holds an invalid plan', () => {
    const p = parser();
    const r = rom({});
    cachedParse({ text: 'A' }, r, p.parse('A'), opts());
    const [file] = readdirSync(dir).map((f) => join(dir, f));
    const entry = JSON.parse(readFileSync(file!, 'utf8'));
    writeFileSync(file!, '{"key":');
    expect(cachedParse({ text: 'A' }, r, p.parse('A'), opts()).warnings).toContain('text=A');
    expect(p.calls).toBe(2);
    // Same file name, other inputs (a name collision): the full key is compared.
    writeFileSync(file!, JSON.stringify({ ...entry, key: entry.key.replace('"A"', '"Z"') }));
    cachedParse({ text: 'A' }, r, p.parse('A'), opts());
    expect(p.calls).toBe(3);
    // A plan the schema refuses (a file escaping the ROM) is never served.
    const bad = structuredClone(entry);
    bad.plan.steps[0].file = '../../etc/passwd';
    writeFileSync(file!, JSON.stringify(bad));
    expect(cachedParse({ text: 'A' }, r, p.parse('A'), opts()).steps[0]).toMatchObject({ file: 'images/xbl.elf' });
    expect(p.calls).toBe(4);
  });

  it('without a source id (tsc output, tests) parses every time and writes nothing', () => {
    const p = parser();
    cachedParse({ text: 'A' }, rom({}), p.parse('A'), { dir });
    cachedParse({ text: 'A' }, rom({}), p.parse('A'), { dir });
    expect(p.calls).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('plan cache through the CLI (bundle)', () => {
  const bin = new URL('../../bin/miflash.js', import.meta.url).pathname;
  const tsc = new URL('../../dist/cli/main.js', import.meta.url).pathname;
  const plan = (entry: string, root: string, cache: string) => {
    const r = spawnSync(process.execPath, [entry, 'plan', root, '--json'], { encoding: 'utf8', env: { ...process.env, MIFLASH_CACHE_DIR: cache } });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };

  it('serves exactly what a fresh parse gives, and follows an edited script', async () => {
    const syn = await buildSyntheticRom(join(dir, 'liuqin'), { from: 'liuqin' });
    const cache = join(dir, 'cache');
    const fresh = plan(tsc, syn.root, join(dir, 'unused')); // tsc's output has no source id: it never caches
    expect(plan(bin, syn.root, cache)).toBe(fresh);
    expect(readdirSync(cache).filter((f) => f.startsWith('plan-'))).toHaveLength(2); // flash_all.sh and its .bat twin
    expect(plan(bin, syn.root, cache)).toBe(fresh);
    // Same size, one partition renamed: the cached plan must not be served.
    const script = join(syn.root, 'flash_all.sh');
    const text = readFileSync(script, 'utf8');
    expect(text).toContain('flash abl_ab ');
    writeFileSync(script, text.replace('flash abl_ab ', 'flash abX_ab '));
    const edited = plan(tsc, syn.root, join(dir, 'unused'));
    expect(edited).not.toBe(fresh);
    expect(plan(bin, syn.root, cache)).toBe(edited);
  });
});
