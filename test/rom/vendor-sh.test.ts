// The plan's device operations are exactly what the vendor .sh does under a
// real shell: run each synthetic ROM's script with a fake `fastboot` first on
// PATH that logs its arguments and answers getvar on stderr (as fastboot does),
// and compare with the plan (the .bat twin is merged into it).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeviceOp, type PlanStep } from '../../src/plan/schema.js';
import { simulatePlan } from '../../src/plan/simulate.js';
import { toolBox } from '../../src/rom/script/tools/index.js';
import { openRom, planForRom } from '../../src/rom/index.js';
import { buildSyntheticRom } from '../../src/rom/synthetic.js';

const FAKE = `#!/bin/sh
echo "$*" >> "$FASTBOOT_LOG"
case "$*" in
  "getvar product") echo "product: $FB_PRODUCT" >&2 ;;
  "getvar anti") [ -n "$FB_ANTI" ] && echo "anti: $FB_ANTI" >&2 ;;
  "getvar crc") echo "crc: $FB_CRC" >&2 ;;
  "getvar secure") echo "secure: yes" >&2 ;;
  "oem device-info") echo "(bootloader) Device unlocked: true" >&2 ;;
esac
echo "Finished. Total time: 0.001s" >&2
exit 0
`;

let work: string;
let bin: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'miflash-vendor-'));
  bin = join(work, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'fastboot'), FAKE);
  chmodSync(join(bin, 'fastboot'), 0o755);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Canonical form of one fastboot invocation: options sorted, then the positional words. */
function canon(argv: string[]): string {
  const opts = argv.filter((a) => a.startsWith('-')).sort();
  return [...opts, ...argv.filter((a) => !a.startsWith('-'))].join(' ');
}

function stepArgv(s: PlanStep, root: string): string[] {
  switch (s.kind) {
    case 'flash': {
      const f = s.flags ?? {};
      return [...(f.disableVerity ? ['--disable-verity'] : []), ...(f.disableVerification ? ['--disable-verification'] : []), 'flash', s.partition, join(root, s.file)];
    }
    case 'erase':
      return ['erase', s.partition];
    case 'format':
      return ['format', s.partition];
    case 'set-active':
      return ['set_active', s.slot];
    case 'reboot':
      return s.target ? ['reboot', s.target] : ['reboot'];
    case 'lock':
      return s.command.split(' ');
    case 'oem':
      return ['oem', ...s.args];
    case 'wipe':
      return ['-w'];
    default:
      throw new Error(`no argv for ${s.kind}`);
  }
}

function runVendor(script: string, env: Record<string, string>): string[] {
  const log = join(work, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, '');
  execFileSync('sh', [script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FASTBOOT_LOG: log, ...env }, stdio: 'pipe', timeout: 20_000 });
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('getvar ') && l !== 'oem device-info')
    .map((l) => canon(l.split(' ')));
}

const cases: Array<{ from: string; anti?: number; modes: Array<'clean' | 'keep-data' | 'lock'> }> = [
  { from: 'raphaelin', modes: ['clean', 'keep-data', 'lock'] },
  { from: 'liuqin', anti: 3, modes: ['clean', 'keep-data'] },
  { from: 'oxygen', modes: ['clean', 'keep-data', 'lock'] },
  { from: 'land', modes: ['clean', 'keep-data', 'lock'] },
  { from: 'cereus', modes: ['lock'] },
  { from: 'elish', modes: ['clean'] },
  { from: 'ysl', modes: ['keep-data'] },
];

const built = new Map<string, ReturnType<typeof buildSyntheticRom>>();
function romFor(from: string, anti?: number) {
  const dir = join(work, `${from}_images`);
  if (!built.has(from)) built.set(from, buildSyntheticRom(dir, { from, ...(anti !== undefined ? { anti } : {}) }));
  return built.get(from)!;
}

describe('plan device ops == what the vendor .sh sends (fake fastboot under sh)', () => {
  for (const c of cases) {
    for (const mode of c.modes) {
      for (const crc of ['1', '0']) {
        it(`${c.from} ${mode} (getvar crc: ${crc})`, async () => {
          const syn = await romFor(c.from, c.anti);
          const rom = await openRom(syn.root);
          const plan = await planForRom(rom, { mode });
          expect(plan.source.dialect).toBe('sh');
          // The plan walked for this device (its predicates read what the device answers).
          const sim = simulatePlan(plan.steps, { vars: { product: syn.product, anti: String(c.anti ?? 0), crc } }, toolBox, (f) => existsSync(join(rom.root, f)));
          expect(sim.stop === undefined || (sim.stop.kind === 'exit' && sim.stop.status === 0)).toBe(true);
          const expected = sim.ran.filter(isDeviceOp).map((s) => canon(stepArgv(s, rom.root)));
          const actual = runVendor(join(rom.root, plan.source.script), { FB_PRODUCT: syn.product, FB_ANTI: String(c.anti ?? 0), FB_CRC: crc });
          expect(actual).toEqual(expected);
          expect(actual.length).toBeGreaterThan(10);
        });
      }
    }
  }

  it('the vendor script stops where the plan gates refuse (wrong product, anti too high)', async () => {
    const dir = join(work, 'liuqin_gate');
    const syn = await buildSyntheticRom(dir, { from: 'liuqin', anti: 3 });
    const script = join(dir, 'flash_all.sh');
    const run = (env: Record<string, string>) => {
      try {
        return { ops: runVendor(script, env), code: 0 };
      } catch (e) {
        return { code: (e as { status: number }).status };
      }
    };
    expect(run({ FB_PRODUCT: 'raphael', FB_ANTI: '0', FB_CRC: '0' }).code).toBe(1);
    expect(run({ FB_PRODUCT: syn.product, FB_ANTI: '4', FB_CRC: '0' }).code).toBe(1);
    expect(run({ FB_PRODUCT: syn.product, FB_ANTI: '3', FB_CRC: '0' }).code).toBe(0);
    const plan = await planForRom(await openRom(dir));
    const stops = (vars: Record<string, string>) => simulatePlan(plan.steps, { vars }, toolBox, (f) => existsSync(join(dir, f))).stop !== undefined;
    expect(stops({ product: 'raphael', anti: '0', crc: '0' })).toBe(true);
    expect(stops({ product: syn.product, anti: '4', crc: '0' })).toBe(true);
    expect(stops({ product: syn.product, anti: '3', crc: '0' })).toBe(false);
  });
});
