// Reference test: for each synthetic ROM and mode, the commands `miflash
// emulate` receives from `miflash flash ROM --mode M` are exactly the device
// operations the vendor flash_all*.sh performs under a real shell (with a fake
// `fastboot` first on PATH that logs its arguments and answers getvars as a
// device that passes the script's checks would), downloads compared by size
// and SHA-256. The .bat twin, picked with --script, gives the same commands.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRom, selectScript, type RomMode } from '../../src/rom/index.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { deviceCommandsFor, emulatorForRom, replaceRomFile, runMiflash, runVendorScript } from '../helpers/fake-fastboot.js';

const ROMS = ['raphaelin', 'liuqin', 'oxygen', 'land', 'cereus', 'elish', 'ysl'] as const;
const MODES: RomMode[] = ['clean', 'keep-data', 'lock'];

interface Case {
  from: string;
  mode: RomMode;
  sh: string;
  bat?: string;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-reference-'));
const roms = new Map<string, SyntheticRom>();

/** vbmeta images get a real AVB header so --disable-verity can be applied (as the AOSP client would). */
function giveAvbHeaders(rom: SyntheticRom): void {
  for (const img of rom.images) {
    if (!/(^|\/)vbmeta[^/]*\.img$/.test(img.file)) continue;
    const data = readFileSync(path.join(rom.root, img.file));
    const avb = Buffer.alloc(Math.max(512, data.length));
    data.copy(avb);
    avb.write('AVB0', 0, 'latin1');
    avb[123] = 0;
    replaceRomFile(rom.root, img.file, avb);
  }
}

async function casesFor(from: string, rom: SyntheticRom): Promise<Case[]> {
  const r = await openRom(rom.root);
  const out: Case[] = [];
  for (const mode of MODES) {
    let picked;
    try {
      picked = selectScript(r, { mode });
    } catch {
      continue; // the package has no script for this mode
    }
    const sh = r.scripts.find((s) => s.variant === picked.variant && s.dialect === 'sh');
    const bat = r.scripts.find((s) => s.variant === picked.variant && s.dialect === 'bat');
    if (sh) out.push({ from, mode, sh: sh.name, ...(bat ? { bat: bat.name } : {}) });
  }
  return out;
}

beforeAll(async () => {
  for (const from of ROMS) {
    const rom = await buildSyntheticRom(path.join(work, from), { from, seed: 7 });
    if (from === 'elish') giveAvbHeaders(rom);
    roms.set(from, rom);
  }
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Emulator flags so slot resolution is the identity: slots only when the plan switches slots. */
function emulatorFlags(expected: string[]): string[] {
  return expected.some((c) => c.startsWith('set_active:')) ? ['--slots', 'a,b'] : [];
}

async function checkCase(rom: SyntheticRom, c: Case): Promise<void> {
  const vendor = await runVendorScript(rom.root, c.sh, { product: rom.product, anti: '0', crc: '1' });
  expect(vendor.code, `${c.sh} under sh: ${vendor.output}`).toBe(0);
  const expected = deviceCommandsFor(vendor.calls);
  expect(expected.length).toBeGreaterThan(10);
  expect(expected.filter((l) => l.startsWith('flash:')).length).toBeGreaterThan(5);

  const variants: Array<[string, string[]]> = [[`--mode ${c.mode}`, ['--mode', c.mode]]];
  if (c.bat) variants.push([`--script ${c.bat}`, ['--script', c.bat]]);
  await Promise.all(
    variants.map(async ([what, args]) => {
      const emu = await emulatorForRom(rom, emulatorFlags(expected));
      try {
        const r = await runMiflash(['-s', emu.address, 'flash', rom.root, ...args, '--yes']);
        expect(r.code, `${c.from} ${what}: ${r.stderr}`).toBe(0);
        expect(emu.writes(), `${c.from} ${what}`).toEqual(expected);
      } finally {
        await emu.stop();
      }
    }),
  );
}

describe('miflash flash ROM sends exactly what the vendor script sends', () => {
  for (const from of ROMS) {
    it(`${from}: every mode, .sh reference vs miflash (and the .bat twin)`, async () => {
      const rom = roms.get(from)!;
      const cases = await casesFor(from, rom);
      expect(cases.length).toBeGreaterThan(0);
      // Cases are independent (own emulator, own port): run them side by side.
      await Promise.all(cases.map((c) => checkCase(rom, c)));
    }, 120_000);
  }

  it('a device that fails the vendor checks makes the vendor script stop, and miflash refuses with nothing written', async () => {
    const rom = roms.get('raphaelin')!;
    const vendor = await runVendorScript(rom.root, 'flash_all.sh', { product: 'cepheus', anti: '0', crc: '1' });
    expect(vendor.code).not.toBe(0);
    expect(deviceCommandsFor(vendor.calls)).toEqual([]);
    const emu = await emulatorForRom({ ...rom, product: 'cepheus' });
    try {
      const r = await runMiflash(['-s', emu.address, 'flash', rom.root, '--yes']);
      expect(r.code).toBe(3);
      expect(emu.writes()).toEqual([]);
    } finally {
      await emu.stop();
    }
  }, 60_000);
});
