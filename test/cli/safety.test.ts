// Safety audit of `miflash flash PLAN.json --rom DIR`: options the plan would
// silently ignore are refused before any device is touched.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRom, planForRom } from '../../src/rom/index.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { emulatorForRom, runMiflash } from '../helpers/fake-fastboot.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-cli-safety-'));
let syn: SyntheticRom;
let cleanPlan: string;

beforeAll(async () => {
  syn = await buildSyntheticRom(path.join(work, 'rom'), { from: 'land', seed: 9 });
  cleanPlan = path.join(work, 'clean.json');
  writeFileSync(cleanPlan, JSON.stringify(await planForRom(await openRom(syn.root), { mode: 'clean' })));
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('flash PLAN.json --rom DIR', () => {
  it('--mode keep-data with a clean (wiping) plan exits 2 and sends nothing', async () => {
    const emu = await emulatorForRom(syn);
    try {
      const r = await runMiflash(['-s', emu.address, 'flash', cleanPlan, '--rom', syn.root, '--mode', 'keep-data', '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/is a 'clean' plan but --mode keep-data was given/);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  }, 30_000);

  it('--mode keep-data with --script naming a wiping script exits 2 and sends nothing', async () => {
    const emu = await emulatorForRom(syn);
    try {
      const r = await runMiflash(['-s', emu.address, 'flash', syn.root, '--script', 'flash_all.sh', '--mode', 'keep-data', '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/flash_all\.sh is a 'clean' script but --mode keep-data was given/);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  }, 30_000);
});
