// The interpreter against the real shells: for every .sh in fixtures/corpus and
// fixtures/variants, run the vendor script under the shell its shebang names
// (bash, else Debian's sh = dash) with a logging fake `fastboot` answering as
// a model device, and check that miflash's plan, walked for the same model
// device, performs the same device operations and ends the same way. Model
// devices vary every variable the plan reads (matching and wrong product,
// anti equal, too high or absent, crc 0/1/absent, partition-type raw/ext4/absent,
// ...), inputs vary for scripts that `read`, and operations fail on demand.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ScriptInterpretError } from '../../../src/rom/script/interp/engine.js';
import { parseScript } from '../../../src/rom/script/index.js';
import { REPO_ROOT } from '../../helpers/emulator.js';
import { devices, failurePoints, planIn, productOf, romFolder, runUnderShell, walkPlan, type OracleCase } from '../../helpers/oracle.js';
import { needs } from '../../helpers/peers.js';

const CORPUS = path.join(REPO_ROOT, 'fixtures/corpus');
const VARIANTS = path.join(REPO_ROOT, 'fixtures/variants');
/** Scripts that are not flash scripts: refused with the command miflash does not interpret. */
const NOT_FLASH: Record<string, RegExp> = {
  'derived-smartisan-oscar-edl-flash.sh': /:5: adb is not a command miflash interprets/,
  'google-aosp-generator-generate-factory-images-common.sh': /: (rm|mkdir|cp|tar|zip) is not a command miflash interprets/,
  'calyxos-generator-generate-factory-images-common.sh': /: (rm|mkdir|cp|tar|zip) is not a command miflash interprets/,
};
/** Lines for scripts that ask the user. */
const INPUTS: Record<string, string[][]> = {
  'calyxos-fairphone-FP5-flash-all.sh': [['Y'], ['n']],
  'calyxos-motorola-devon-flash-all.sh': [['Y']],
  'calyxos-pixel8-shiba-flash-all.sh': [['Y']],
  'derived-nothing-np1-np2-flash-all.sh': [
    ['a', 'y', 'y', 'y'],
    ['auto', 'yes', 'n', 'n'],
    ['c'],
  ],
  'derived-oneplus-pad2-fastbootd-flash.sh': [['', '', '']],
};
/** ROM side files some scripts read. */
const FILES: Record<string, Array<Record<string, string>>> = {
  'xiaomi-liuqin-hyperos2-flash_all.sh': [{}, { 'images/anti_version.txt': '3\n' }],
  'xiaomi-liuqin-hyperos2-flash_all_except_storage.sh': [{ 'images/anti_version.txt': '3\n' }],
  'v7a-security-patch-flash_all.sh': [{ 'images/security_patch_level.txt': '2024-05-01\n' }, {}],
};

const scripts = [
  ...readdirSync(CORPUS)
    .filter((f) => f.endsWith('.sh'))
    .map((f) => path.join(CORPUS, f)),
  ...readdirSync(VARIANTS)
    .filter((f) => f.endsWith('.sh'))
    .map((f) => path.join(VARIANTS, f)),
];

describe('plans do what the vendor .sh does under a real shell', needs('dash', 'bash'), () => {
  for (const file of scripts) {
    const name = path.basename(file);
    if (NOT_FLASH[name]) continue;
    it(name, () => {
      const text = readFileSync(file, 'utf8');
      const product = productOf(text);
      let compared = 0;
      for (const files of FILES[name] ?? [{}]) {
        const rom = romFolder(file, files);
        try {
          for (const inputs of INPUTS[name] ?? [[]]) {
            const plan = planIn(rom.root, rom.script, inputs);
            const vars = [...new Set(plan.steps.flatMap((s) => (s.kind === 'query' && s.query.kind === 'getvar' ? [s.query.name] : [])))];
            const info = plan.steps.some((s) => s.kind === 'query' && s.query.kind === 'oem-device-info');
            for (const device of devices(vars, product, info)) {
              const c: OracleCase = { device, inputs };
              const want = runUnderShell(rom.root, rom.script, c);
              const got = walkPlan(plan, rom.root, c);
              const where = `${name} inputs=${JSON.stringify(inputs)} files=${JSON.stringify(Object.keys(files))} device=${JSON.stringify(device.vars)}`;
              if (got.end.startsWith('refuse')) {
                // miflash stops where it cannot follow; everything before must agree.
                expect(want.ops.slice(0, got.ops.length), where).toEqual(got.ops);
              } else {
                expect(got.ops, `${where}\n${want.output}`).toEqual(want.ops);
                if (got.end !== 'end') expect(want.end, where).toBe(got.end);
              }
              compared++;
            }
            // A failing device operation: the plan's policy matches what the script does next.
            const base: OracleCase = { device: devices(vars, product, info)[0]!, inputs };
            const all = runUnderShell(rom.root, rom.script, base);
            for (const point of failurePoints(all.callOps)) {
              const c = { ...base, ...point };
              const want = runUnderShell(rom.root, rom.script, c);
              const got = walkPlan(plan, rom.root, c);
              const where = `${name} fail op ${point.failAt} (${all.ops[point.failAt - 1]})`;
              if (got.end === 'abort') {
                expect(want.ops, where).toEqual(got.ops);
                expect(want.end, where).not.toBe('end');
              } else if (got.end.startsWith('refuse')) expect(want.ops.slice(0, got.ops.length), where).toEqual(got.ops);
              else expect(want.ops, where).toEqual(got.ops);
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

describe('scripts that are not flash scripts end in a typed refusal naming the command', () => {
  for (const [name, re] of Object.entries(NOT_FLASH)) {
    it(name, () => {
      const text = readFileSync(path.join(CORPUS, name), 'utf8');
      let err: unknown;
      try {
        parseScript(text, { file: name, dialect: 'sh' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ScriptInterpretError);
      expect((err as Error).message).toMatch(re);
      expect((err as ScriptInterpretError).exitCode).toBe(2);
    });
  }
});
