// The launcher keeps V8's young generation at its first size (bin/miflash.js):
// interpreting a vendor flash script for the first time (no cached plan) used to
// grow it to 16 MiB, ~12 MiB of peak RSS on top of everything else (issue 10's
// 96 MiB budget). A preload reports the young generation's committed size at exit.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSyntheticRom } from '../../src/rom/synthetic.js';

const BIN = path.resolve(__dirname, '../../bin/miflash.js');
const MiB = 1024 * 1024;
let work: string;
let rom: string;
let probe: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'miflash-young-'));
  rom = (await buildSyntheticRom(path.join(work, 'rom'), { from: 'liuqin', seed: 3 })).root;
  probe = path.join(work, 'probe.cjs');
  writeFileSync(
    probe,
    "process.on('exit', () => { const s = require('node:v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); process.stderr.write(`new_space ${s.space_size}\\n`); });\n",
  );
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `miflash ARGS` with nothing cached; the young generation's committed size at exit. */
function youngGeneration(args: string[], cache: string): number {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, MIFLASH_CACHE_DIR: path.join(work, cache), NODE_OPTIONS: `--require ${probe}` },
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/flash/i); // it did make a plan
  const size = Number(/^new_space (\d+)$/m.exec(r.stderr)?.[1]);
  expect(size).toBeGreaterThan(0);
  return size;
}

describe('young generation', () => {
  it('stays small while a flash script is interpreted for the first time (miflash plan, nothing cached)', () => {
    expect(youngGeneration(['plan', rom], 'cache-dir')).toBeLessThanOrEqual(2 * MiB);
  });

  it('stays small after a hash worker has started (its start resets V8 flags): plan of a .tgz, extracted then parsed', () => {
    const tgz = path.join(work, 'rom.tgz');
    const t = spawnSync('tar', ['-czf', tgz, '-C', path.dirname(rom), path.basename(rom)], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    // It may grow once (2 -> 4 MiB) before the worker runs and the flag is set again; unchecked, it reached 16-32 MiB.
    expect(youngGeneration(['plan', tgz, '--cache', path.join(work, 'extracted')], 'cache-tgz')).toBeLessThanOrEqual(4 * MiB);
  });
});
