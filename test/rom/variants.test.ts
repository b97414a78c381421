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
import { FlashPlanSchema, isDeviceOp, type FlashPlan, type PlanStep } from '../../src/plan/schema.js';
import { ScriptInterpretError, openRom, opSignature, parseScript, planForRom } from '../../src/rom/index.js';
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

/**
 * Where the twins genuinely differ. v5's .bat writes `findstr ... && if %errorlevel% equ 0 (`: cmd expands
 * %errorlevel% when it reads the line, before findstr runs, so the test sees the errorlevel of the line
 * before — 1 when the device has no cust partition (that block's findstr failed and its else branch only
 * echoes). Such a device with an exaid partition gets `erase exaid` from the .sh but not from the .bat.
 * (The vendor's liuqin .bat uses the same form after a line that always leaves errorlevel 0, so there the
 * twins agree.) The value is the operation the .bat leaves out.
 */
const DISAGREE: Record<string, (sc: Scenario) => string | undefined> = {
  'v5-optional-partition': (sc) => (sc.vars['partition-type:exaid'] !== undefined && sc.vars['partition-type:cust'] === undefined ? 'erase exaid' : undefined),
};

// Both twins are interpreted (the .sh as dash runs it, the .bat as cmd.exe runs it): on every model device
// of ORACLE (below), with and without an injected failure, they send the same device operations and stop alike.
describe('fixtures/variants: the .sh and .bat twins do the same on every model device', () => {
  for (const name of [...Object.keys(ORACLE_NAMES)]) {
    it(`${name}: same device ops and the same stops`, async () => {
      const sh = parse(`${name}-flash_all.sh`);
      const bat = parse(`${name}-flash_all.bat`);
      expect(FlashPlanSchema.safeParse(bat).success).toBe(true);
      expect(bat.source).toMatchObject({ dialect: 'bat', mode: 'clean', family: 'xiaomi' });
      expect(bat.steps.filter(isDeviceOp).map(opSignature)).toEqual(sh.steps.filter(isDeviceOp).map(opSignature));
      const { product: prod, scenarios } = ORACLE_NAMES[name]!;
      for (const sc of scenarios) {
        const vars = { product: prod, ...sc.vars };
        const label = `${name} ${JSON.stringify(sc)}`;
        const b = await runPlan(bat, vars, sc.fail);
        const s = await runPlan(sh, vars, sc.fail);
        const differs = DISAGREE[name]?.(sc);
        if (differs) expect(b, label).toEqual({ ...s, ops: s.ops.filter((o) => o !== differs) });
        else expect(b, label).toEqual(s);
        expect(b.refused, label).toBe(sc.stops);
      }
    });
  }

  it('a plain findstr product check is a substring match, evaluated as such', async () => {
    const p = parse('v4-plain-findstr-flash_all.bat');
    const refused = async (product: string) => (await runPlan(p, { product })).refused;
    expect([await refused('cereus'), await refused('cereus_pro'), await refused('xcereus'), await refused('lancelot')]).toEqual([false, false, false, true]);
  });

  it('security patch level (.bat): the package date comes from the images/ file; without it cmd compares with 0 (text order)', async () => {
    const spl = (d?: string) => ({ product: 'liuqin', ...(d ? { 'security-patch-level': d } : {}) });
    const withFile = parse('v7a-security-patch-flash_all.bat', { [SPL_FILE]: '2025-02-01\n' });
    expect((await runPlan(withFile, spl('2025-01-01'))).refused).toBe(false);
    expect((await runPlan(withFile, spl('2025-03-01'))).refused).toBe(true);
    // CURRENT_SPL=0: any reported date is "greater" than 0; a device without the variable passes.
    const missing = parse('v7a-security-patch-flash_all.bat', {});
    expect((await runPlan(missing, spl('2020-01-01'))).refused).toBe(true);
    expect((await runPlan(missing, spl())).refused).toBe(false);
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
  // Walked with the device's answers, as the runner does.
  const sim = simulatePlan(plan.steps, { vars }, toolBox);
  const ops: string[] = [];
  for (const s of sim.ran.filter(isDeviceOp)) {
    const a = argv(s);
    ops.push(a);
    if (fail !== undefined && a.startsWith(fail) && s.onFailure === 'abort' && !s.vendorUnchecked) return { ops, refused: true };
  }
  return { ops, refused: sim.stop !== undefined && !(sim.stop.kind === 'exit' && sim.stop.status === 0) };
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
/** v8 checks the battery (interpreted in both dialects; its .sh is also run under sh below). */
const ORACLE_NAMES: Record<string, { product: string; scenarios: Scenario[] }> = {
  ...ORACLE,
  'v8-unknown-gate': {
    product: 'cereus',
    scenarios: [{ vars: { 'battery-soc-ok': 'yes' }, stops: false }, { vars: { 'battery-soc-ok': 'no' }, stops: true }, { vars: {}, stops: true }],
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

  it('v8: the .sh checks the battery as the vendor does, and so does its .bat twin', async () => {
    const root = join(work, 'v8');
    mkdirSync(join(root, 'images'), { recursive: true });
    copyFileSync(join(VARIANTS, 'v8-unknown-gate-flash_all.sh'), join(root, 'flash_all.sh'));
    const vars = { product: 'cereus', 'battery-soc-ok': 'yes' };
    expect(runVendor(root, 'flash_all.sh', vars).code).toBe(0);
    expect(runVendor(root, 'flash_all.sh', { ...vars, 'battery-soc-ok': 'no' }).code).toBe(1);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.sh'), vars)).refused).toBe(false);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.sh'), { ...vars, 'battery-soc-ok': 'no' })).refused).toBe(true);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.bat'), vars)).refused).toBe(false);
    expect((await runPlan(parse('v8-unknown-gate-flash_all.bat'), { ...vars, 'battery-soc-ok': 'no' })).refused).toBe(true);
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

// Shapes the old line recogniser refused (or blocked as unknown gates) are plain cmd to the interpreter:
// the plan does what cmd.exe does with them (expected results worked out from cmd's rules, said per case).
describe('.bat shapes the recogniser could not read are interpreted as cmd runs them', () => {
  const ran = (text: string, vars: Record<string, string>) => {
    const p = parseScript(text, { file: 'flash_all.bat', dialect: 'bat' });
    const sim = simulatePlan(p.steps, { vars }, toolBox);
    const stop = sim.stop && !(sim.stop.kind === 'exit' && sim.stop.status === 0) ? { line: sim.stop.line, kind: sim.stop.kind } : undefined;
    return { ops: sim.ran.filter(isDeviceOp).map(argv), stop, warnings: p.warnings };
  };
  it('a partition-type pattern that also matches the FAILED line: the erase runs on every device', () => {
    // %errorlevel% is 0 when the line is read; findstr /c:"cust" also matches "getvar:partition-type:cust FAILED ...".
    const t = 'fastboot %* getvar partition-type:cust 2>&1 | findstr /c:"cust" && if %errorlevel% equ 0 (\nfastboot %* erase cust\n)\n';
    expect(ran(t, { 'partition-type:cust': 'raw' }).ops).toEqual(['erase cust']);
    expect(ran(t, {}).ops).toEqual(['erase cust']);
  });
  it('a device op in the else branch runs on the devices that take it', () => {
    const t = 'fastboot %* getvar partition-type:cust 2>&1 | findstr /r /c:"^partition-type:cust:"\nif %errorlevel% equ 0 (\nfastboot %* erase cust\n) else (\nfastboot %* erase userdata\n)\n';
    expect(ran(t, { 'partition-type:cust': 'raw' }).ops).toEqual(['erase cust']);
    expect(ran(t, {}).ops).toEqual(['erase userdata']);
  });
  it('a split crc test whose result nothing reads: the script goes on, the plan says the check is ignored', () => {
    const r = ran('fastboot %* getvar crc 2>&1 | findstr /r /c:"^crc: 1"\nfastboot %* reboot\n', { crc: '0' });
    expect(r.ops).toEqual(['reboot']);
    expect(r.warnings.join('\n')).not.toMatch(/no check uses/);
  });
  it('`if not A GEQ B` is the negated comparison; an empty operand is a cmd syntax error that stops the plan', () => {
    const t = 'for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar hw-revision 2^>^&1 ^| findstr /r /c:"hw-revision:"\') do (set hw=%%i)\nif not %hw% GEQ 2 (\necho x\nexit /B 1\n)\nfastboot %* reboot\n';
    expect(ran(t, { 'hw-revision': '1' })).toMatchObject({ ops: [], stop: { line: 4, kind: 'exit' } });
    expect(ran(t, { 'hw-revision': '3' })).toMatchObject({ ops: ['reboot'], stop: undefined });
    // no hw-revision: %hw% is empty, the line reads `if not  GEQ 2 (` and cmd stops with a syntax error
    expect(ran(t, {})).toMatchObject({ ops: [], stop: { line: 2, kind: 'gate.unknown' } });
  });
  it('a for /f read that keeps the wrong token compares that token (text order)', () => {
    // tokens=1 of "anti: 1" is "anti"; `if anti GTR 1` compares text: "anti" > "1".
    const t = 'for /f "tokens=1 delims=: " %%i in (\'fastboot %* getvar anti 2^>^&1 ^| findstr /r /c:"anti:"\') do (set version=%%i)\nif [%version%] EQU [] set version=0\nif %version% GTR 1 (\necho x\nexit /B 1\n)\nfastboot %* reboot\n';
    expect(ran(t, { anti: '1' })).toMatchObject({ ops: [], stop: { line: 5, kind: 'exit' } });
    expect(ran(t, {})).toMatchObject({ ops: ['reboot'], stop: undefined });
  });
});

describe('what the .bat interpreter refuses is a typed error naming file, line and command', () => {
  const errors: Array<[string, string, number, RegExp]> = [
    ['for /f over another program', 'for /f "tokens=2 delims=: " %%i in (\'adb shell getprop ro.build.id\') do (set id=%%i)\nfastboot %* reboot\n', 1, /adb is not a command miflash interprets/],
    ['a call of another batch file', 'call sahara\nfastboot %* reboot\n', 1, /call sahara runs another batch file or program/],
    ['writing to a file', 'fastboot %* getvar product > product.txt\n', 1, /writing to product\.txt/],
    ['another fastboot-like program', '"%~dp0fastboot_edl.exe" reboot-edl\n', 1, /fastboot_edl\.exe is not a command miflash interprets/],
    ['a goto to a missing label', 'fastboot %* reboot || goto :failed\n', 1, /the script has no label :failed/],
    ['an unbalanced block', 'if exist x (\nfastboot %* reboot\n', 1, /a "\)" is missing/],
    ['powershell beyond Get-Date', 'powershell -Command "Remove-Item C:\\x"\n', 1, /powershell other than a Get-Date conversion/],
  ];
  for (const [what, text, line, why] of errors) {
    it(what, () => {
      let err: unknown;
      try {
        parseScript(text, { file: 'flash_all.bat', dialect: 'bat' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ScriptInterpretError);
      const e = err as ScriptInterpretError;
      expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
      expect(e.line).toBe(line);
      expect(e.text).toBe(text.split('\n')[line - 1]);
      expect(e.message).toContain(`flash_all.bat:${line}:`);
      expect(e.message).toMatch(why);
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
