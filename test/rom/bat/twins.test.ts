// The .bat side of issue 8's oracle: every .bat in fixtures/ with a .sh twin
// (same name) must perform the same device operations as its twin — and stop
// the same way — on every model device the shell oracle uses for the .sh
// (test/rom/sh/oracle.test.ts checks the .sh plans against dash and bash), with
// the same ROM side files and --input lines. Where the vendor files genuinely
// disagree, the difference is listed below with the reason, and asserted.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FlashPlan } from '../../../src/plan/schema.js';
import type { ModelDevice } from '../../../src/plan/simulate.js';
import { parseScript } from '../../../src/rom/script/index.js';
import { REPO_ROOT } from '../../helpers/emulator.js';
import { devices, productOf, romFolder, walkPlan } from '../../helpers/oracle.js';

const DIRS = [path.join(REPO_ROOT, 'fixtures/corpus'), path.join(REPO_ROOT, 'fixtures/variants')];
const FILES: Record<string, Array<Record<string, string>>> = {
  'xiaomi-liuqin-hyperos2-flash_all': [{}, { 'images/anti_version.txt': '3\n' }],
  'xiaomi-liuqin-hyperos2-flash_all_except_storage': [{ 'images/anti_version.txt': '3\n' }],
  'v7a-security-patch-flash_all': [{ 'images/security_patch_level.txt': '2024-05-01\n' }, {}],
};

/** --input lines, as the shell oracle gives the .sh (`read answer`); the .bat reads them with `choice`. */
const INPUTS: Record<string, string[][]> = {
  'calyxos-fairphone-FP5-flash-all': [['Y'], ['n']],
  'calyxos-pixel8-shiba-flash-all': [['Y']],
  // the .sh reads three lines (`read`); the .bat's `pause`s wait for keys, not lines
  'derived-oneplus-pad2-fastbootd-flash': [['', '', '']],
};

/**
 * Twins that genuinely differ, with why; the value says what the .bat does instead on such a device.
 * v5 (fixtures/variants): its .bat tests `findstr ... && if %errorlevel% equ 0 (`; cmd expands %errorlevel%
 * when it reads the line, before findstr runs, so the value is the previous line's — 1 on a device without
 * the cust partition (that block's findstr failed, its else branch only echoes). Such a device with an exaid
 * partition gets `erase exaid` from the .sh, not from the .bat. (liuqin's vendor .bat uses the same form
 * after a line that always leaves errorlevel 0, so there the twins agree.)
 */
const DISAGREE: Record<string, (d: ModelDevice, shOps: string[]) => string[] | undefined> = {
  // oneplus (community scripts): the .sh ends with `fastboot -w`; the .bat only tells the user to format data.
  'derived-oneplus-pad2-fastbootd-flash': (_d, ops) => ops.filter((o) => !o.startsWith('-w ')),
  'v5-optional-partition-flash_all': (d, ops) => (d.vars['partition-type:cust'] === undefined && d.vars['partition-type:exaid'] !== undefined ? ops.filter((o) => !/exaid/.test(o)) : undefined),
};

/**
 * Operations only the .bat performs, on every device (taken out before comparing, and required to be there).
 * oneplus (community scripts): the .bat deletes and re-creates the logical partitions my_company, my_preload,
 * system and vendor (both slots, and their -cow) before flashing them; the .sh's loop list leaves those four out.
 */
const BAT_EXTRA: Record<string, { ops: RegExp; count: number }> = {
  'derived-oneplus-pad2-fastbootd-flash': { ops: /^(delete|create)-logical-partition (my_company|my_preload|system|vendor)_[ab](-cow)?\b/, count: 24 },
};

/**
 * Where both stop at the same point but with another status. oneplus: when the device is not in fastbootd the
 * .sh exits 1, the .bat jumps to `:ext` and `exit /b` ends with errorlevel 0 (that of the last program run).
 */
const END_DIFFERS: Record<string, (d: ModelDevice) => boolean> = {
  'derived-oneplus-pad2-fastbootd-flash': (d) => d.vars['is-userspace'] !== 'yes',
};

const pairs = DIRS.flatMap((dir) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.bat') && readdirSync(dir).includes(f.replace(/\.bat$/, '.sh')))
    .map((f) => ({ dir, base: f.replace(/\.bat$/, '') })),
);

function plan(root: string, dir: string, file: string, inputs: string[]): FlashPlan {
  return parseScript(readFileSync(path.join(dir, file), 'utf8'), {
    file,
    inputs,
    dialect: file.endsWith('.sh') ? 'sh' : 'bat',
    readRomText: (f) => {
      try {
        return readFileSync(path.join(root, f), 'utf8');
      } catch {
        return undefined;
      }
    },
  });
}

const endKind = (e: string) => (e.startsWith('refuse') ? 'refuse' : e);
const getvars = (p: FlashPlan) => p.steps.flatMap((s) => (s.kind === 'query' && s.query.kind === 'getvar' ? [s.query.name] : []));

describe('.bat twins perform the .sh twin\'s device operations on every model device', () => {
  it('finds the twins', () => {
    expect(pairs.length).toBeGreaterThanOrEqual(25);
  });
  for (const { dir, base } of pairs) {
    it(base, () => {
      const shText = readFileSync(path.join(dir, `${base}.sh`), 'utf8');
      let compared = 0;
      for (const files of FILES[base] ?? [{}]) {
        const rom = romFolder(path.join(dir, `${base}.sh`), files);
        try {
          for (const inputs of INPUTS[base] ?? [[]]) {
            const sh = plan(rom.root, dir, `${base}.sh`, inputs);
            const bat = plan(rom.root, dir, `${base}.bat`, inputs);
            const vars = [...new Set([...getvars(sh), ...getvars(bat)])];
            const info = [sh, bat].some((p) => p.steps.some((s) => s.kind === 'query' && s.query.kind === 'oem-device-info'));
            for (const device of devices(vars, productOf(shText), info)) {
              const a = walkPlan(sh, rom.root, { device, inputs });
              const b = walkPlan(bat, rom.root, { device, inputs });
              const where = `${base} inputs=${JSON.stringify(inputs)} files=${JSON.stringify(Object.keys(files))} device=${JSON.stringify(device.vars)}`;
              const want = DISAGREE[base]?.(device, a.ops) ?? a.ops;
              const extra = BAT_EXTRA[base];
              const got = extra ? b.ops.filter((o) => !extra.ops.test(o)) : b.ops;
              if (extra && want.some((o) => o.includes('logical-partition'))) expect(b.ops.length - got.length, where).toBe(extra.count);
              expect(got, where).toEqual(want);
              if (END_DIFFERS[base]?.(device)) expect([endKind(b.end), endKind(a.end)], where).toEqual(['end', 'exit 1']);
              else expect(endKind(b.end), where).toBe(endKind(a.end));
              compared++;
            }
          }
        } finally {
          rom.done();
        }
      }
      expect(compared).toBeGreaterThan(0);
    });
  }
});
