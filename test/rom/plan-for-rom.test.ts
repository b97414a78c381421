import { copyFileSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatePlan } from '../../src/plan/simulate.js';
import { toolBox } from '../../src/rom/script/tools/index.js';
import { FlashPlanSchema, isDeviceOp } from '../../src/plan/schema.js';
import { openRom, planForRom } from '../../src/rom/index.js';
import { buildSyntheticRom } from '../../src/rom/synthetic.js';
import { FIXTURES } from './helpers.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'miflash-planrom-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('planForRom', () => {
  it('picks the script for each MiFlash mode, .sh first, merged with its .bat twin', async () => {
    const syn = await buildSyntheticRom(join(work, 'raphaelin_global'), { from: 'raphaelin' });
    const rom = await openRom(syn.root);
    const clean = await planForRom(rom);
    expect(clean.source).toMatchObject({ script: 'flash_all.sh', twin: 'flash_all.bat', mode: 'clean', rom: syn.root });
    expect(clean.product).toEqual({ device: 'raphaelin', build: 'SYNTHETIC.1' });
    const keep = await planForRom(rom, { mode: 'keep-data' });
    expect(keep.source.script).toBe('flash_all_except_storage.sh');
    expect(keep.steps.some((s) => 'partition' in s && (s.partition === 'userdata' || s.partition === 'metadata'))).toBe(false);
    const lock = await planForRom(rom, { mode: 'lock' });
    expect(lock.steps.filter(isDeviceOp).at(-1)).toMatchObject({ kind: 'lock', command: 'oem lock', onFailure: 'abort', message: 'Oem lock error' });
    const bat = await planForRom(rom, { script: 'flash_all.bat' });
    expect(bat.source).toMatchObject({ script: 'flash_all.bat', dialect: 'bat', twin: 'flash_all.sh' });
    await expect(planForRom(rom, { script: 'nope.sh' })).rejects.toThrow(/script nope\.sh is not in .*available: .*flash_all_lock\.bat/);
    for (const p of [clean, keep, lock, bat]) expect(FlashPlanSchema.safeParse(p).success).toBe(true);
  });

  it('older keep-data names; a missing variant is reported, never synthesised', async () => {
    const land = await openRom((await buildSyntheticRom(join(work, 'land_global'), { from: 'land' })).root);
    expect((await planForRom(land, { mode: 'keep-data' })).source.script).toBe('flash_all_except_data_storage.sh');
    const ysl = await openRom((await buildSyntheticRom(join(work, 'ysl_global'), { from: 'ysl' })).root);
    expect((await planForRom(ysl, { mode: 'keep-data' })).source.script).toBe('flash_all_except_data.sh');
    await expect(planForRom(ysl, { mode: 'lock' })).rejects.toThrow(/no script for mode lock \(flash_all_lock\); available: (flash_all\.bat, flash_all_except_data\.sh|flash_all_except_data\.sh, flash_all\.bat)$/);
  });

  it('ysl flash_all.bat has no product check: a misc.txt gate is added before the first op, with a warning', async () => {
    const ysl = await openRom(join(work, 'ysl_global'));
    const p = await planForRom(ysl, { mode: 'clean' });
    // A getvar product query and an exit that refuses any other product (`grep -q "^product: *ysl$"`).
    const gate = p.steps.find((s) => s.kind === 'exit' && s.line === 0);
    expect(gate).toMatchObject({ status: 1, onFailure: 'abort', message: 'this ROM is for ysl (misc.txt)' });
    expect(p.steps.indexOf(gate!)).toBeLessThan(p.steps.findIndex(isDeviceOp));
    const stops = (product: string) => simulatePlan(p.steps, { vars: { product } }, toolBox).stop === gate;
    expect([stops('ysl'), stops('yslx'), stops('xysl'), stops('sakura')]).toEqual([false, true, true, true]);
    expect(p.warnings).toContain('the script has no product check; miflash checks misc.txt device=ysl');
  });

  it('land: merged plan checks every flash (from the .bat) and uses the ROM folder for the .bat product rule', async () => {
    const p = await planForRom(await openRom(join(work, 'land_global')), { mode: 'clean' });
    expect(p.source.twin).toBe('flash_all.bat');
    const flashes = p.steps.filter((s) => s.kind === 'flash');
    expect(flashes.every((s) => s.onFailure === 'abort' && !s.vendorUnchecked && s.message)).toBe(true);
  });

  it('anti version comes from images/anti_version.txt, 0 when missing', async () => {
    const dir = join(work, 'liuqin_cn');
    await buildSyntheticRom(dir, { from: 'liuqin', anti: 4 });
    // The script reads the file (`cat images/anti_version.txt`) when the plan is made; missing, it compares with 0.
    const stops = async (anti: string) => simulatePlan((await planForRom(await openRom(dir))).steps, { vars: { product: 'liuqin', anti, crc: '1' } }, toolBox).stop !== undefined;
    expect([await stops('4'), await stops('5')]).toEqual([false, true]);
    unlinkSync(join(dir, 'images', 'anti_version.txt'));
    expect([await stops('0'), await stops('1')]).toEqual([false, true]);
  });

  it('lmi `if exist` is resolved against the ROM: the branch taken is emitted', async () => {
    const dir = join(work, 'lmi_global');
    await buildSyntheticRom(dir, { from: 'lmi' });
    const exaid = async () =>
      (await planForRom(await openRom(dir))).steps.filter((s) => 'partition' in s && s.partition === 'exaid').map((s) => `${s.kind}${s.when ? ' (conditional)' : ''}`);
    expect(await exaid()).toEqual(['flash', 'flash']);
    unlinkSync(join(dir, 'images', 'exaid.img'));
    expect(await exaid()).toEqual(['erase', 'erase']);
  });

  it('a .cmd flash script is found and interpreted as a batch file', async () => {
    const dir = join(work, 'cmd_only');
    mkdirSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'images', 'boot.img'), 'b');
    writeFileSync(join(dir, 'flash_all.cmd'), '@echo off\r\nfastboot %* flash boot "%~dp0images\\boot.img" || exit /b 1\r\nfastboot %* reboot\r\n');
    const rom = await openRom(dir);
    expect(rom.scripts.map((s) => [s.name, s.dialect])).toEqual([['flash_all.cmd', 'bat']]);
    const plan = await planForRom(rom);
    expect(plan.source).toMatchObject({ script: 'flash_all.cmd', dialect: 'bat', mode: 'clean' });
    expect(plan.steps.filter(isDeviceOp).map((s) => s.kind)).toEqual(['flash', 'reboot']);
  });

  it('a keep-data script that wipes user data is refused', async () => {
    const dir = join(work, 'bad_keep');
    mkdirSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'flash_all_except_storage.sh'), 'fastboot $* erase userdata\nfastboot $* reboot\n');
    await expect(planForRom(await openRom(dir), { mode: 'keep-data' })).rejects.toThrow(/keep-data script but line 1 erases user data/);
  });

  it('Google factory folder: update step gets android-info requirements from the zip', async () => {
    const dir = join(work, 'maguro');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(FIXTURES, 'google-maguro-galaxynexus-jdq39-flash-all.sh'), join(dir, 'flash-all.sh'));
    const { makeZip } = await import('./helpers.js');
    writeFileSync(join(dir, 'image-takju-jdq39.zip'), makeZip([{ name: 'android-info.txt', data: 'require board=tuna\nrequire version-bootloader=PRIMELC03\n' }, { name: 'boot.img', data: 'b' }]));
    const p = await planForRom(await openRom(dir));
    expect(p.source.family).toBe('google');
    expect(p.steps.find((s) => s.kind === 'gate.android-info')).toMatchObject({
      file: 'image-takju-jdq39.zip',
      requirements: [
        { kind: 'require', variable: 'product', values: ['tuna'], line: 1 },
        { kind: 'require', variable: 'version-bootloader', values: ['PRIMELC03'], line: 2 },
      ],
    });
  });
});
