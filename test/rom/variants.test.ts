// Grammar §6 "Variants outside this corpus": synthetic .sh/.bat twins in
// fixtures/variants/ parse to exact steps, the twins perform the same device
// operations, and the .sh files run under a real `sh` with a fake `fastboot`
// behave as the plan says (gates refuse exactly when the script exits; the
// conditioned ops run exactly when the device answers).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { evaluateGate, type DeviceFacts, type GateStep } from '../../src/plan/gates.js';
import { FlashPlanSchema, isDeviceOp, isGate, type FlashPlan, type PlanStep } from '../../src/plan/schema.js';
import { ScriptParseError, openRom, opSignature, parseScript, planForRom } from '../../src/rom/index.js';
import { simulatePlan } from '../../src/plan/simulate.js';
import { toolBox } from '../../src/rom/script/tools/index.js';
import { planIn, runUnderShell, walkPlan } from '../helpers/oracle.js';
import { needs } from '../helpers/peers.js';

const VARIANTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'variants');
const SPL_FILE = 'images/security_patch_level.txt';
const PACKAGE_SPL = '2024-05-01';

function parse(name: string, romText: Record<string, string> = { [SPL_FILE]: `${PACKAGE_SPL}\n` }): FlashPlan {
  return parseScript(readFileSync(join(VARIANTS, name), 'utf8'), {
    file: name,
    dialect: name.endsWith('.sh') ? 'sh' : 'bat',
    readRomText: (f) => romText[f],
  });
}

/** Every field of a step, compactly: `LINE: what [abort(M)|ignore] [unchecked] [if COND]`. */
function fmt(s: PlanStep): string {
  let t: string;
  switch (s.kind) {
    case 'flash':
      t = `flash ${s.partition} ${s.file}${s.flags ? ` ${JSON.stringify(s.flags)}` : ''}`;
      break;
    case 'erase':
      t = `erase ${s.partition}`;
      break;
    case 'set-active':
      t = `set_active ${s.slot}`;
      break;
    case 'reboot':
      t = `reboot${s.target ? ` ${s.target}` : ''}`;
      break;
    case 'oem':
      t = `oem ${s.args.join(' ')}`;
      break;
    case 'note':
      t = `note ${JSON.stringify(s.text)}`;
      break;
    default: {
      const { kind, line: _l, onFailure: _o, message: _m, condition: _c, vendorUnchecked: _v, foreign: _f, ...rest } = s as PlanStep & Record<string, unknown>;
      t = `${kind} ${JSON.stringify(rest)}`;
    }
  }
  const failure = s.onFailure === 'abort' ? ` abort(${s.message ?? ''})` : s.kind === 'note' ? '' : ' ignore';
  const c = s.condition;
  const cond = c ? ` if ${c.kind}${c.kind === 'partition-exists' ? `(${c.partition})` : c.kind === 'crc-supported' ? '' : `(${c.file})`}` : '';
  return `${s.line}: ${t}${failure}${s.vendorUnchecked ? ' unchecked' : ''}${cond}${s.foreign ? ' foreign' : ''}`;
}

const MISMATCH = 'abort(Missmatching image and device)';
const product = (name: string, match: string, pattern: string, dialect: string) =>
  `gate.product {"products":["${name}"],"patterns":["${pattern}"],"match":"${match}","source":{"text":"${pattern}","dialect":"${dialect}"}} ${MISMATCH}`;

const EXPECTED: Record<string, { sh: string[]; bat: string[]; warnings?: RegExp[] }> = {
  'v1-crc-split': {
    sh: [
      `1: ${product('liuqin', 'prefix', '^product: *liuqin', 'bre')}`,
      '6: flash crclist images/crclist.txt abort(Flash crclist error) if crc-supported',
      '8: flash sparsecrclist images/sparsecrclist.txt abort(Flash sparsecrclist error) if crc-supported',
      '11: erase boot_ab abort(Erase boot error)',
      '13: flash abl_ab images/abl.elf abort(Flash abl error)',
      '15: flash boot_ab images/boot.img abort(Flash boot error)',
      '17: set_active a abort(Set active a error)',
      '19: reboot abort(Reboot error)',
    ],
    bat: [
      `2: ${product('liuqin', 'prefix', '^product: *liuqin', 'findstr')}`,
      '6: flash crclist images/crclist.txt abort(Flash crclist error) if crc-supported',
      '7: flash sparsecrclist images/sparsecrclist.txt abort(Flash sparsecrclist error) if crc-supported',
      '9: erase boot_ab abort(Erase boot error)',
      '10: flash abl_ab images/abl.elf abort(Flash abl error)',
      '11: flash boot_ab images/boot.img abort(Flash boot error)',
      '12: set_active a abort(Set active a error)',
      '13: reboot abort(Reboot error)',
    ],
  },
  'v2-keypress-tail': {
    sh: [
      `1: ${product('raphaelin', 'prefix', '^product: *raphaelin', 'bre')}`,
      '3: erase boot abort(Erase boot error)',
      '5: flash xbl images/xbl.elf abort(Flash xbl error)',
      '11: flash boot images/boot.img abort(Flash boot error)',
      '13: reboot abort(Reboot error)',
    ],
    bat: [
      `2: ${product('raphaelin', 'prefix', '^product: *raphaelin', 'findstr')}`,
      '3: erase boot abort(Erase boot error)',
      '4: flash xbl images/xbl.elf abort(Flash xbl error)',
      '5: flash boot images/boot.img abort(Flash boot error)',
      '6: reboot abort(Reboot error)',
    ],
  },
  'v3-doubled-separator': {
    sh: [
      `1: ${product('lmi', 'prefix', '^product: *lmi', 'bre')}`,
      '3: erase boot abort(Erase boot error)',
      '5: flash xbl images/xbl.elf abort(Flash xbl error)',
      '7: flash dtbo images/dtbo.img abort(Flash dtbo error)',
      '9: flash boot images/boot.img abort(Flash boot error)',
      '11: reboot abort(Reboot error)',
    ],
    bat: [
      `2: ${product('lmi', 'prefix', '^product: *lmi', 'findstr')}`,
      '3: erase boot abort(Erase boot error)',
      '4: flash xbl images/xbl.elf abort(Flash xbl error)',
      '5: flash dtbo images/dtbo.img abort(Flash dtbo error)',
      '6: flash boot images/boot.img abort(Flash boot error)',
      '7: reboot abort(Reboot error)',
    ],
  },
  'v4-plain-findstr': {
    sh: [
      `1: ${product('cereus', 'substring', 'cereus', 'bre')}`,
      '3: flash preloader images/preloader_cereus.bin abort(Flash preloader error)',
      '5: flash boot images/boot.img abort(Flash boot error)',
      '7: reboot ignore unchecked',
    ],
    bat: [
      `2: ${product('cereus', 'substring', 'cereus', 'findstr')}`,
      '3: flash preloader images/preloader_cereus.bin abort(Flash preloader error)',
      '4: flash boot images/boot.img abort(Flash boot error)',
      '5: reboot ignore unchecked',
    ],
    warnings: [/product check cereus is a substring match/],
  },
  'v5-optional-partition': {
    sh: [
      `1: ${product('elish', 'prefix', '^product: *elish', 'bre')}`,
      '3: erase boot_a abort(Erase boot_a error)',
      '5: flash super images/super.img abort(Flash super error)',
      '10: erase cust abort(Erase cust error) if partition-exists(cust)',
      '13: note "(only when the device has no partition cust) cust partition not found, skip erase cust"',
      '18: erase exaid ignore unchecked if partition-exists(exaid)',
      '20: flash boot_a images/boot.img abort(Flash boot_a error)',
      '22: set_active a abort(Set active a error)',
      '24: reboot abort(Reboot error)',
    ],
    bat: [
      `2: ${product('elish', 'prefix', '^product: *elish', 'findstr')}`,
      '3: erase boot_a abort(Erase boot_a error)',
      '4: flash super images/super.img abort(Flash super error)',
      '8: erase cust abort(Erase cust error) if partition-exists(cust)',
      '10: note "(only when the device has no partition cust) cust partition not found, skip erase cust"',
      '14: erase exaid ignore unchecked if partition-exists(exaid)',
      '16: flash boot_a images/boot.img abort(Flash boot_a error)',
      '17: set_active a abort(Set active a error)',
      '18: reboot abort(Reboot error)',
    ],
  },
  'v6-oem-subcommands': {
    sh: [
      `1: ${product('oxygen', 'prefix', '^product: *oxygen', 'bre')}`,
      '3: oem fb_mode_set ignore unchecked',
      '4: erase boot abort(Erase boot error)',
      '6: flash boot images/boot.img abort(Flash boot error)',
      '8: oem off-mode-charge 0 abort(Oem off-mode-charge error)',
      '10: oem cdms ignore unchecked',
      '11: oem fb_mode_clear ignore unchecked',
      '12: reboot ignore unchecked',
    ],
    bat: [
      `2: ${product('oxygen', 'prefix', '^product: *oxygen', 'findstr')}`,
      '3: oem fb_mode_set ignore unchecked',
      '4: erase boot abort(Erase boot error)',
      '5: flash boot images/boot.img abort(Flash boot error)',
      '6: oem off-mode-charge 0 abort(Oem off-mode-charge error)',
      '7: oem cdms ignore unchecked',
      '8: oem fb_mode_clear ignore unchecked',
      '9: reboot ignore unchecked',
    ],
  },
  'v7a-security-patch': {
    sh: [
      `1: ${product('liuqin', 'prefix', '^product: *liuqin', 'bre')}`,
      `11: gate.security-patch-level {"variable":"security-patch-level","packageLevel":"${PACKAGE_SPL}"} abort(Current device security patch level is newer than this package)`,
      '13: erase boot_ab abort(Erase boot error)',
      '15: flash boot_ab images/boot.img abort(Flash boot error)',
      '17: reboot abort(Reboot error)',
    ],
    bat: [
      `2: ${product('liuqin', 'prefix', '^product: *liuqin', 'findstr')}`,
      `11: gate.security-patch-level {"variable":"security-patch-level","packageLevel":"${PACKAGE_SPL}"} abort(Current device security patch level is newer than this package)`,
      '13: erase boot_ab abort(Erase boot error)',
      '14: flash boot_ab images/boot.img abort(Flash boot error)',
      '15: reboot abort(Reboot error)',
    ],
  },
  'v7b-hw-revision': {
    sh: [
      '4: gate.hw-revision {"variable":"hw-revision","min":2} abort(This package does not support this hardware revision)',
      `5: ${product('surya', 'prefix', '^product: *surya', 'bre')}`,
      '7: erase boot abort(Erase boot error)',
      '9: flash boot images/boot.img abort(Flash boot error)',
      '11: reboot abort(Reboot error)',
    ],
    bat: [
      '4: gate.hw-revision {"variable":"hw-revision","min":2} abort(This package does not support this hardware revision)',
      `9: ${product('surya', 'prefix', '^product: *surya', 'findstr')}`,
      '10: erase boot abort(Erase boot error)',
      '11: flash boot images/boot.img abort(Flash boot error)',
      '12: reboot abort(Reboot error)',
    ],
  },
  'v7c-anti-awk': {
    sh: [
      '4: gate.anti-rollback {"packageVersion":4,"variable":"anti","from":"script"} abort(Current device antirollback version is greater than this package)',
      `5: ${product('raphaelin', 'prefix', '^product: *raphaelin', 'bre')}`,
      '7: erase boot abort(Erase boot error)',
      '9: flash boot images/boot.img abort(Flash boot error)',
      '11: reboot abort(Reboot error)',
    ],
    bat: [
      '6: gate.anti-rollback {"packageVersion":4,"variable":"anti","from":"script"} abort(Current device antirollback version is greater than this package)',
      `8: ${product('raphaelin', 'prefix', '^product: *raphaelin', 'findstr')}`,
      '9: erase boot abort(Erase boot error)',
      '10: flash boot images/boot.img abort(Flash boot error)',
      '11: reboot abort(Reboot error)',
    ],
  },
  'v8-unknown-gate': {
    sh: [
      `1: ${product('cereus', 'prefix', '^product: *cereus', 'bre')}`,
      `5: gate.unknown ${JSON.stringify({
        text: 'socok=`fastboot $* getvar battery-soc-ok 2>&1 | awk \'/battery-soc-ok/ {print $2}\'` / if [ "$socok" != "yes" ]; then echo "Battery level too low, please charge the device first"; exit 1; fi',
        reason: 'the script stops when getvar battery-soc-ok != (string) "yes"; miflash interprets only anti-rollback, hardware-revision and security-patch-level checks',
      })} abort(Battery level too low, please charge the device first)`,
      '6: erase boot abort(Erase boot error)',
      '8: flash boot images/boot.img abort(Flash boot error)',
      '10: reboot ignore unchecked',
    ],
    bat: [
      `2: ${product('cereus', 'prefix', '^product: *cereus', 'findstr')}`,
      `5: gate.unknown ${JSON.stringify({
        text: 'for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar battery-soc-ok 2^>^&1 ^| findstr /r /c:"battery-soc-ok:"\') do (set socok=%%i) / if %socok% NEQ yes (',
        reason: 'the script stops when getvar battery-soc-ok != "yes"; miflash interprets only anti-rollback, hardware-revision and security-patch-level checks',
      })} abort(Battery level too low, please charge the device first)`,
      '9: erase boot abort(Erase boot error)',
      '10: flash boot images/boot.img abort(Flash boot error)',
      '11: reboot ignore unchecked',
    ],
  },
};

// The .bat twins still go through the line recogniser (bat.ts) until the cmd.exe front end replaces it: exact steps.
// The .sh files are interpreted: test/rom/sh/oracle.test.ts checks them against dash; here they must agree with their twins.
describe('fixtures/variants: every §6 variant parses to exact steps (.bat) and the .sh agrees with it', () => {
  for (const [name, want] of Object.entries(EXPECTED)) {
    for (const dialect of ['bat'] as const) {
      it(`${name}.${dialect}`, () => {
        const p = parse(`${name}-flash_all.${dialect}`);
        expect(FlashPlanSchema.safeParse(p).success).toBe(true);
        expect(p.source).toMatchObject({ dialect, mode: 'clean', family: 'xiaomi' });
        expect(p.steps.map(fmt)).toEqual(want[dialect]);
        for (const w of want.warnings ?? []) expect(p.warnings.some((x) => w.test(x)), `${w} in ${JSON.stringify(p.warnings)}`).toBe(true);
        // nothing is left unused: no "sets X but no check uses it" warnings
        expect(p.warnings.filter((x) => /no check uses it/.test(x))).toEqual([]);
      });
    }
    it(`${name}: .sh and .bat twins give the same device ops and refuse the same devices`, async () => {
      const sh = parse(`${name}-flash_all.sh`);
      const bat = parse(`${name}-flash_all.bat`);
      expect(bat.steps.filter(isDeviceOp).map(opSignature)).toEqual(sh.steps.filter(isDeviceOp).map(opSignature));
      // v8's .bat gate is one the line recogniser cannot read (always blocks); the interpreted .sh checks the battery.
      if (name === 'v8-unknown-gate') return;
      for (const sc of ORACLE[name]!.scenarios.filter((x) => x.fail === undefined)) {
        const vars = { product: ORACLE[name]!.product, ...sc.vars };
        expect((await runPlan(sh, vars)).refused, `${name} ${JSON.stringify(vars)}`).toBe((await runPlan(bat, vars)).refused);
      }
    });
  }

  it('the plain findstr / grep product check is a substring match, evaluated as such', () => {
    const g = parse('v4-plain-findstr-flash_all.bat').steps[0] as Extract<PlanStep, { kind: 'gate.product' }>;
    const re = new RegExp(g.patterns[0]!);
    expect(['product: cereus', 'product: cereus_pro', 'product: xcereus'].map((l) => re.test(l))).toEqual([true, true, true]);
    expect(re.test('product: lancelot')).toBe(false);
  });

  it('security patch level (.bat): the package date comes from the images/ file; a missing or malformed file is a blocking unknown gate', () => {
    const missing = parse('v7a-security-patch-flash_all.bat', {}).steps[1];
    expect(missing).toMatchObject({ kind: 'gate.unknown', onFailure: 'abort', line: 11 });
    expect((missing as Extract<PlanStep, { kind: 'gate.unknown' }>).reason).toMatch(/images\/security_patch_level\.txt, which is not in the ROM/);
    const bad = parse('v7a-security-patch-flash_all.bat', { [SPL_FILE]: 'May 2024\n' }).steps[1];
    expect((bad as Extract<PlanStep, { kind: 'gate.unknown' }>).reason).toMatch(/"May 2024", not a YYYY-MM-DD date/);
  });

  it('security patch level (.sh): the package date read from the images/ file decides, as under dash', async () => {
    const newer = parse('v7a-security-patch-flash_all.sh', { [SPL_FILE]: '2025-02-01\n' });
    expect((await runPlan(newer, { product: 'liuqin', 'security-patch-level': '2025-01-01' })).refused).toBe(false);
    expect((await runPlan(newer, { product: 'liuqin', 'security-patch-level': '2025-03-01' })).refused).toBe(true);
  });
});

// ---- the .sh files under a real shell ----

const FAKE = `#!/bin/sh
echo "$*" >> "$FASTBOOT_LOG"
if [ "$1" = getvar ]; then
  v=$(grep "^$2: " "$FB_VARS" | head -n 1)
  if [ -n "$v" ]; then echo "$v" >&2; echo "Finished. Total time: 0.001s" >&2; exit 0; fi
  printf '%-50s FAILED (remote: %s)\\n' "getvar:$2" "'GetVar Variable Not found'" >&2
  echo "Finished. Total time: 0.001s" >&2
  exit 1
fi
if [ -n "$FB_FAIL" ]; then
  case "$*" in "$FB_FAIL"*) echo "FAILED (remote: 'injected')" >&2; exit 1 ;; esac
fi
echo "OKAY [  0.001s]" >&2
exit 0
`;

let work: string;
let bin: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'miflash-variants-'));
  bin = join(work, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'fastboot'), FAKE);
  chmodSync(join(bin, 'fastboot'), 0o755);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function argv(s: PlanStep): string {
  switch (s.kind) {
    case 'flash':
      return `flash ${s.partition} ${s.file}`;
    case 'erase':
      return `erase ${s.partition}`;
    case 'set-active':
      return `set_active ${s.slot}`;
    case 'reboot':
      return s.target ? `reboot ${s.target}` : 'reboot';
    case 'oem':
      return `oem ${s.args.join(' ')}`;
    default:
      throw new Error(`no argv for ${s.kind}`);
  }
}

/** Run the vendor .sh; device ops it sent (paths made ROM-relative) and its exit status. */
function runVendor(root: string, script: string, vars: Record<string, string>, fail?: string): { ops: string[]; code: number } {
  const log = join(work, `log-${Math.random().toString(36).slice(2)}`);
  const varsFile = join(work, `vars-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, '');
  writeFileSync(varsFile, Object.entries(vars).map(([k, v]) => `${k}: ${v}\n`).join(''));
  let code = 0;
  try {
    execFileSync('sh', [join(root, script)], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FASTBOOT_LOG: log, FB_VARS: varsFile, FB_FAIL: fail ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 20_000,
    });
  } catch (e) {
    code = (e as { status: number }).status;
  }
  const ops = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('getvar '))
    .map((l) => l.replace(/\/\/+/g, '/').split(`${root}/`).join(''));
  return { ops, code };
}

/** What the plan does on a device answering `vars`: gates first, then the ops whose condition holds, stopping at an aborting failure. */
async function runPlan(plan: FlashPlan, vars: Record<string, string>, fail?: string): Promise<{ ops: string[]; refused: boolean }> {
  if (plan.source.dialect === 'sh') {
    // Interpreted plans: walked with the device's answers, as the runner does.
    const sim = simulatePlan(plan.steps, { vars }, toolBox);
    const ops: string[] = [];
    for (const s of sim.ran.filter(isDeviceOp)) {
      const a = argv(s);
      ops.push(a);
      if (fail !== undefined && a.startsWith(fail) && s.onFailure === 'abort' && !s.vendorUnchecked) return { ops, refused: true };
    }
    return { ops, refused: sim.stop !== undefined && !(sim.stop.kind === 'exit' && sim.stop.status === 0) };
  }
  const facts = { get: async (n: string) => vars[n], oemDeviceInfo: async () => [], snapshot: () => ({}) } as unknown as DeviceFacts;
  for (const g of plan.steps.filter(isGate)) {
    if (!(await evaluateGate(g as GateStep, facts)).ok) return { ops: [], refused: true };
  }
  const ops: string[] = [];
  for (const s of plan.steps.filter(isDeviceOp)) {
    const c = s.condition;
    if (c?.kind === 'crc-supported' && vars.crc !== '1') continue;
    if (c?.kind === 'partition-exists' && vars[`partition-type:${c.partition}`] === undefined) continue;
    const a = argv(s);
    ops.push(a);
    if (fail !== undefined && a.startsWith(fail) && s.onFailure === 'abort') return { ops, refused: true };
  }
  return { ops, refused: false };
}

type Scenario = { vars: Record<string, string>; fail?: string; stops: boolean };
const ORACLE: Record<string, { product: string; scenarios: Scenario[] }> = {
  'v1-crc-split': { product: 'liuqin', scenarios: [{ vars: { crc: '1' }, stops: false }, { vars: { crc: '0' }, stops: false }, { vars: {}, stops: false }, { vars: { product: 'raphael' }, stops: true }] },
  'v2-keypress-tail': {
    product: 'raphaelin',
    scenarios: [{ vars: {}, stops: false }, { vars: {}, fail: 'flash xbl', stops: true }, { vars: {}, fail: 'flash boot', stops: true }, { vars: {}, fail: 'erase boot', stops: true }],
  },
  'v3-doubled-separator': { product: 'lmi', scenarios: [{ vars: {}, stops: false }] },
  'v4-plain-findstr': {
    product: 'cereus',
    scenarios: [{ vars: {}, stops: false }, { vars: { product: 'cereus_pro' }, stops: false }, { vars: { product: 'lancelot' }, stops: true }],
  },
  'v5-optional-partition': {
    product: 'elish',
    scenarios: [
      { vars: { 'partition-type:cust': 'raw', 'partition-type:exaid': 'raw' }, stops: false },
      { vars: { 'partition-type:cust': 'ext4' }, stops: false },
      { vars: { 'partition-type:exaid': 'raw' }, fail: 'erase exaid', stops: false },
      { vars: {}, stops: false },
      { vars: { 'partition-type:cust': 'raw' }, fail: 'erase cust', stops: true },
    ],
  },
  'v6-oem-subcommands': {
    product: 'oxygen',
    scenarios: [{ vars: {}, stops: false }, { vars: {}, fail: 'oem cdms', stops: false }, { vars: {}, fail: 'oem off-mode-charge', stops: true }],
  },
  'v7a-security-patch': {
    product: 'liuqin',
    scenarios: [
      { vars: { 'security-patch-level': '2024-01-05' }, stops: false },
      { vars: { 'security-patch-level': PACKAGE_SPL }, stops: false },
      { vars: { 'security-patch-level': '2024-06-01' }, stops: true },
      { vars: { 'security-patch-level': '2025-01-01' }, stops: true },
    ],
  },
  'v7b-hw-revision': {
    product: 'surya',
    scenarios: [
      { vars: { 'hw-revision': '1' }, stops: true },
      { vars: { 'hw-revision': '2' }, stops: false },
      { vars: { 'hw-revision': '3' }, stops: false },
      { vars: {}, stops: true },
    ],
  },
  'v7c-anti-awk': {
    product: 'raphaelin',
    scenarios: [{ vars: { anti: '3' }, stops: false }, { vars: { anti: '4' }, stops: false }, { vars: { anti: '5' }, stops: true }, { vars: {}, stops: false }],
  },
};

describe('fixtures/variants .sh under sh with a fake fastboot: the plan does what the script does', () => {
  for (const [name, { product: prod, scenarios }] of Object.entries(ORACLE)) {
    it(name, async () => {
      const root = join(work, name);
      mkdirSync(join(root, 'images'), { recursive: true });
      copyFileSync(join(VARIANTS, `${name}-flash_all.sh`), join(root, 'flash_all.sh'));
      writeFileSync(join(root, SPL_FILE), `${PACKAGE_SPL}\n`);
      const plan = parse(`${name}-flash_all.sh`);
      for (const sc of scenarios) {
        const vars = { product: prod, ...sc.vars };
        const vendor = runVendor(root, 'flash_all.sh', vars, sc.fail);
        const ours = await runPlan(plan, vars, sc.fail);
        const label = `${name} ${JSON.stringify(sc)}`;
        expect(vendor.code !== 0, label).toBe(sc.stops);
        expect(ours.refused, label).toBe(sc.stops);
        expect(ours.ops, label).toEqual(vendor.ops);
      }
    });
  }

  it('v8: the interpreted .sh checks the battery as the vendor does (the .bat recogniser still blocks it)', async () => {
    const root = join(work, 'v8');
    mkdirSync(join(root, 'images'), { recursive: true });
    copyFileSync(join(VARIANTS, 'v8-unknown-gate-flash_all.sh'), join(root, 'flash_all.sh'));
    const vars = { product: 'cereus', 'battery-soc-ok': 'yes' };
    expect(runVendor(root, 'flash_all.sh', vars).code).toBe(0);
    expect(runVendor(root, 'flash_all.sh', { ...vars, 'battery-soc-ok': 'no' }).code).toBe(1);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.sh'), vars)).refused).toBe(false);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.sh'), { ...vars, 'battery-soc-ok': 'no' })).refused).toBe(true);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.bat'), vars)).refused).toBe(true);
  });
});

describe('planForRom reads the package value of a gate from the ROM', () => {
  it('v7a as flash_all.sh + .bat: the .sh reads images/security_patch_level.txt from the ROM', async () => {
    const root = join(work, 'rom_v7a');
    mkdirSync(join(root, 'images'), { recursive: true });
    copyFileSync(join(VARIANTS, 'v7a-security-patch-flash_all.sh'), join(root, 'flash_all.sh'));
    copyFileSync(join(VARIANTS, 'v7a-security-patch-flash_all.bat'), join(root, 'flash_all.bat'));
    writeFileSync(join(root, SPL_FILE), '2023-11-01\n');
    const plan = await planForRom(await openRom(root));
    expect(plan.source).toMatchObject({ script: 'flash_all.sh', twin: 'flash_all.bat' });
    expect((await runPlan(plan, { product: 'liuqin', 'security-patch-level': '2023-12-01' })).refused).toBe(true);
    expect((await runPlan(plan, { product: 'liuqin', 'security-patch-level': '2023-10-01' })).refused).toBe(false);
  });
});

// ---- what miflash cannot interpret fails loudly ----

function parseErr(text: string, dialect: 'sh' | 'bat'): ScriptParseError {
  const file = `flash_all.${dialect}`;
  try {
    parseScript(text, { file, dialect });
  } catch (e) {
    expect(e).toBeInstanceOf(ScriptParseError);
    return e as ScriptParseError;
  }
  throw new Error(`expected a ScriptParseError for ${JSON.stringify(text)}`);
}

describe('variants miflash cannot interpret fail loudly', () => {
  const errors: Array<[string, 'sh' | 'bat', string, number, RegExp]> = [
    [
      'partition-type pattern that also matches the FAILED line (bat)',
      'bat',
      'fastboot %* getvar partition-type:cust 2>&1 | findstr /c:"cust" && if %errorlevel% equ 0 (\nfastboot %* erase cust\n)\n',
      1,
      /also matches fastboot's FAILED line/,
    ],
    [
      'a device op in the else branch of an optional block',
      'bat',
      'fastboot %* getvar partition-type:cust 2>&1 | findstr /r /c:"^partition-type:cust:"\nif %errorlevel% equ 0 (\nfastboot %* erase cust\n) else (\nfastboot %* erase userdata\n)\n',
      5,
      /only echo is supported in the else branch/,
    ],
    ['for /f over a command other than fastboot getvar', 'bat', 'for /f "tokens=2 delims=: " %%i in (\'adb shell getprop ro.build.id\') do (set id=%%i)\n', 1, /other than `fastboot getvar`/],
    [
      'for /f reading a quoted path without usebackq',
      'bat',
      'if exist "%~dp0images\\anti_version.txt" (for /f "delims==" %%a in ("%~dp0images\\anti_version.txt") do (set CURRENT_ANTI_VER=%%a))\n',
      1,
      /without usebackq/,
    ],
    ['a pass/fail echo check without its `if … set` line', 'bat', 'set anticheck="antirollback check pass"\necho %anticheck% | findstr /r /c:"pass" || @echo "x" && exit /B 1\n', 2, /without the `if … set anticheck=…` line/],
    ['a split crc test not followed by the if', 'bat', 'fastboot %* getvar crc 2>&1 | findstr /r /c:"^crc: 1"\nfastboot %* reboot\n', 1, /not followed by `if %errorlevel% equ 0 \(`/],
  ];
  for (const [what, dialect, text, line, why] of errors) {
    it(`ScriptParseError: ${what}`, () => {
      const e = parseErr(text, dialect);
      expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
      expect(e.line).toBe(line);
      expect(e.text).toBe(text.split('\n')[line - 1]);
      expect(e.message).toContain(`flash_all.${dialect}:${line}:`);
      expect(e.message).toMatch(why);
    });
  }

  it('assignments and device reads no check uses are reported, not silently dropped (.bat)', () => {
    const bat = parseScript('set MIN=3\nfor /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar hw-revision 2^>^&1 ^| findstr /r /c:"hw-revision:"\') do (set hw=%%i)\nfastboot %* reboot\n', { file: 'flash_all.bat', dialect: 'bat' });
    expect(bat.warnings).toEqual(['line 2: reads getvar hw-revision into hw but no check uses it', 'line 1: sets min but no check uses it']);
  });

  const unknown: Array<[string, 'sh' | 'bat', string, number, RegExp]> = [
    [
      'patch-level dates compared with -gt (sh cannot compare them; the vendor check never fires)',
      'sh',
      'SPL=2024-01-01\nspl=`fastboot $* getvar security-patch-level 2>&1 | grep -oP "security-patch-level: \\K[0-9-]+"`\nif [ $spl -gt $SPL ]; then echo "x"; exit 1; fi\n',
      3,
      /numerically/,
    ],
    [
      'an anti version taken from another file',
      'sh',
      'if [ -e $(dirname $0)/images/rollback.txt ]; then\nANTI=$(cat $(dirname $0)/images/rollback.txt)\nfi\nver=`fastboot $* getvar anti 2>&1 | grep -oP "anti: \\K[0-9]+"`\nif [ $ver -gt $ANTI ]; then echo "x"; exit 1; fi\n',
      5,
      /images\/rollback\.txt; miflash reads it only from images\/anti_version\.txt/,
    ],
    ['a hardware threshold with -le', 'sh', 'hw=`fastboot $* getvar hw-revision 2>&1 | awk \'/hw-revision/ {print $2}\'`\nif [ $hw -le 2 ]; then echo "x"; exit 1; fi\n', 2, /device < minimum/],
    ['a device value read through sed', 'sh', 'ver=`fastboot $* getvar anti 2>&1 | sed -n "s/anti: //p"`\nif [ $ver -gt 1 ]; then echo "x"; exit 1; fi\n', 2, /through a filter miflash does not interpret/],
    [
      'an `if not` comparison (bat)',
      'bat',
      'for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar hw-revision 2^>^&1 ^| findstr /r /c:"hw-revision:"\') do (set hw=%%i)\nif not %hw% GEQ 2 (\necho x\nexit /B 1\n)\n',
      2,
      /comparison miflash cannot interpret/,
    ],
    [
      'a for /f read that keeps the wrong token (bat)',
      'bat',
      'for /f "tokens=1 delims=: " %%i in (\'fastboot %* getvar anti 2^>^&1 ^| findstr /r /c:"anti:"\') do (set version=%%i)\nif %version% GTR 1 (\necho x\nexit /B 1\n)\n',
      2,
      /through a filter miflash does not interpret/,
    ],
  ];
  for (const [what, dialect, text, line, why] of unknown.filter(([, d]) => d === 'bat')) {
    it(`blocking gate.unknown: ${what}`, () => {
      const p = parseScript(text, { file: `flash_all.${dialect}`, dialect });
      const g = p.steps.find((s) => s.kind === 'gate.unknown') as Extract<PlanStep, { kind: 'gate.unknown' }> | undefined;
      expect(g, JSON.stringify(p.steps)).toBeDefined();
      expect(g).toMatchObject({ line, onFailure: 'abort', message: 'x' });
      expect(g!.reason).toMatch(why);
      expect(p.steps.filter(isGate)).toHaveLength(1);
    });
  }
});

// Shapes the old line recogniser refused (or blocked as unknown gates) are plain shell to the interpreter:
// the plan does what dash does with them.
describe('.sh shapes the recogniser could not read are interpreted as dash runs them', needs('dash'), () => {
  const texts: Array<[string, string, Array<Record<string, string>>]> = [
    ['patch-level dates compared with -gt (an integer test error in dash: the check never fires)', 'SPL=2024-01-01\nspl=`fastboot $* getvar security-patch-level 2>&1 | grep -oP "security-patch-level: \\K[0-9-]+"`\nif [ $spl -gt $SPL ]; then echo "x"; exit 1; fi\nfastboot $* reboot\n', [{ 'security-patch-level': '2025-01-01' }, {}]],
    ['an anti version taken from another file', 'if [ -e $(dirname $0)/images/rollback.txt ]; then\nANTI=$(cat $(dirname $0)/images/rollback.txt)\nfi\nver=`fastboot $* getvar anti 2>&1 | grep -oP "anti: \\K[0-9]+"`\nif [ $ver -gt $ANTI ]; then echo "x"; exit 1; fi\nfastboot $* reboot\n', [{ anti: '2' }, { anti: '3' }]],
    ['a device value read through sed', 'ver=`fastboot $* getvar anti 2>&1 | sed -n "s/anti: //p"`\nif [ $ver -gt 1 ]; then echo "x"; exit 1; fi\nfastboot $* reboot\n', [{ anti: '2' }, { anti: '1' }]],
    ['a device op in the else branch', 'fastboot $* getvar partition-type:cust 2>&1 | grep "^partition-type:cust:"\nif [ $? -eq 0 ]; then\nfastboot $* erase cust\nelse\nfastboot $* erase userdata\nfi\n', [{ 'partition-type:cust': 'raw' }, {}]],
    ['a partition-type pattern that also matches the FAILED line', 'fastboot $* getvar partition-type:cust 2>&1 | grep "partition-type:cust"\nif [ $? -eq 0 ]; then\nfastboot $* erase cust\nfi\n', [{ 'partition-type:cust': 'raw' }, {}]],
    ['an oem argument from an unset variable', 'fastboot $* oem select-display-panel $PANEL\n', [{}]],
  ];
  for (const [what, text, devices] of texts) {
    it(what, () => {
      const dir = mkdtempSync(join(tmpdir(), 'miflash-shape-'));
      try {
        writeFileSync(join(dir, 'flash_all.sh'), text);
        writeFileSync(join(dir, 'rollback.txt'), '2\n');
        mkdirSync(join(dir, 'images'));
        writeFileSync(join(dir, 'images/rollback.txt'), '2\n');
        const plan = planIn(dir, 'flash_all.sh');
        for (const vars of devices) {
          const want = runUnderShell(dir, 'flash_all.sh', { device: { vars } });
          const got = walkPlan(plan, dir, { device: { vars } });
          expect(got.ops, `${what} ${JSON.stringify(vars)}`).toEqual(want.ops);
          if (got.end.startsWith('exit')) expect(want.end, JSON.stringify(vars)).toBe(got.end);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
