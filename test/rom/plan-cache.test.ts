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
function rom(files: Record<string, string | undefined>, listing = ['flash_all.sh', 'images/xbl.elf']): Required<RomReader> {
  return {
    readRomText: (f: string) => files[f],
    listRomFiles: () => [...listing],
  };
}

type Opts = RomReader & Record<string, unknown>;

/** A parse whose plan shows what it saw: the script text, an option, a side file, and (optionally) the listing. */
function parser(opts: { list?: boolean } = {}) {
  const p = {
    calls: 0,
    parse: (text: string, o: Opts): FlashPlan => {
      p.calls++;
      const spl = o.readRomText?.('images/security_patch_level.txt');
      const listed = opts.list ? o.listRomFiles!().length : -1;
      return {
        version: 1,
        source: { script: 'flash_all.sh', dialect: 'sh', mode: 'clean', family: 'xiaomi' },
        warnings: [`text=${text}`, `anti=${String(o.antiVersion)}`, `spl=${spl ?? 'missing'}`, `listed=${listed}`],
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
    const first = cachedParse('A', { file: 'flash_all.sh', ...r }, p.parse, opts());
    const again = cachedParse('A', { file: 'flash_all.sh', ...r }, p.parse, opts());
    expect(p.calls).toBe(1);
    expect(again).toEqual(first);
    expect(again.warnings).toContain('spl=2025-01-01');
    expect(readdirSync(dir).filter((f) => /^plan-[0-9a-f]{16}\.json$/.test(f))).toHaveLength(1);
  });

  it('parses again when the text, any option, the build or a file the parse read changed', () => {
    const p = parser();
    const files: Record<string, string | undefined> = { 'images/security_patch_level.txt': '2025-01-01' };
    const r = rom(files);
    cachedParse('A', { ...r }, p.parse, opts());
    cachedParse('B', { ...r }, p.parse, opts()); // another script text
    expect(p.calls).toBe(2);
    expect(cachedParse('A', { antiVersion: 3, ...r }, p.parse, opts()).warnings).toContain('anti=3'); // another option
    expect(p.calls).toBe(3);
    cachedParse('A', { inputs: ['y'], ...r }, p.parse, opts()); // an option nobody told the cache about
    expect(p.calls).toBe(4);
    cachedParse('A', { inputs: ['n'], ...r }, p.parse, opts()); // nested values count too
    expect(p.calls).toBe(5);
    cachedParse('A', { ...r }, p.parse, { ...opts(), sourceId: 'build-2' }); // another parser
    expect(p.calls).toBe(6);
    files['images/security_patch_level.txt'] = '2025-02-01'; // a file it read
    const changed = cachedParse('A', { ...r }, p.parse, opts());
    expect(p.calls).toBe(7);
    expect(changed.warnings).toContain('spl=2025-02-01');
    delete files['images/security_patch_level.txt']; // now missing
    expect(cachedParse('A', { ...r }, p.parse, opts()).warnings).toContain('spl=missing');
    expect(p.calls).toBe(8);
    files['images/security_patch_level.txt'] = '2025-03-01'; // and back
    expect(cachedParse('A', { ...r }, p.parse, opts()).warnings).toContain('spl=2025-03-01');
    expect(p.calls).toBe(9);
    cachedParse('A', { ...r }, p.parse, opts());
    expect(p.calls).toBe(9);
  });

  it('keys on option values, not on the order they were written in', () => {
    const p = parser();
    const r = rom({});
    cachedParse('A', { file: 'f.sh', dialect: 'sh', limits: { steps: 1, depth: 2 }, ...r }, p.parse, opts());
    cachedParse('A', { ...r, limits: { depth: 2, steps: 1 }, dialect: 'sh', file: 'f.sh' }, p.parse, opts());
    expect(p.calls).toBe(1);
  });

  it('never caches a parse given code other than the ROM readers (its answers could not be checked)', () => {
    const p = parser();
    const o = { ...rom({}), onStep: () => 1 };
    cachedParse('A', o, p.parse, opts());
    cachedParse('A', o, p.parse, opts());
    expect(p.calls).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('checks the listing of the ROM when the parse looked at it, and only then', () => {
    const listing = ['flash_all.sh', 'images/xbl.elf'];
    const p = parser({ list: true });
    cachedParse('A', rom({}, listing), p.parse, opts());
    cachedParse('A', rom({}, listing), p.parse, opts());
    expect(p.calls).toBe(1);
    const grown = cachedParse('A', rom({}, [...listing, 'images/new.img']), p.parse, opts());
    expect(p.calls).toBe(2);
    expect(grown.warnings).toContain('listed=3');
    const q = parser(); // never lists: a new file does not matter to it
    cachedParse('Q', rom({}, listing), q.parse, opts());
    cachedParse('Q', rom({}, [...listing, 'x']), q.parse, opts());
    expect(q.calls).toBe(1);
  });

  it('parses when an entry is damaged, belongs to other inputs or holds an invalid plan', () => {
    const p = parser();
    const r = rom({});
    cachedParse('A', r, p.parse, opts());
    const [file] = readdirSync(dir).map((f) => join(dir, f));
    const entry = JSON.parse(readFileSync(file!, 'utf8'));
    writeFileSync(file!, '{"key":');
    expect(cachedParse('A', r, p.parse, opts()).warnings).toContain('text=A');
    expect(p.calls).toBe(2);
    // Same file name, other inputs (a name collision): the full key is compared.
    writeFileSync(file!, JSON.stringify({ ...entry, key: entry.key.replace('"A"', '"Z"') }));
    cachedParse('A', r, p.parse, opts());
    expect(p.calls).toBe(3);
    // A plan the schema refuses (a file escaping the ROM) is never served.
    const bad = structuredClone(entry);
    bad.plan.steps[0].file = '../../etc/passwd';
    writeFileSync(file!, JSON.stringify(bad));
    expect(cachedParse('A', r, p.parse, opts()).steps[0]).toMatchObject({ file: 'images/xbl.elf' });
    expect(p.calls).toBe(4);
  });

  it('without a source id (tsc output, tests) parses every time and writes nothing', () => {
    const p = parser();
    cachedParse('A', rom({}), p.parse, { dir });
    cachedParse('A', rom({}), p.parse, { dir });
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
