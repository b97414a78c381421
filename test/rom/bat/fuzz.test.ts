// 10 000 generated .bat scripts never crash the interpreter: mutations of the
// corpus and variant .bat files, and random scripts from a small cmd grammar
// (labels and goto loops, call recursion, blocks, for /f over device answers,
// errorlevel, set /a, refused commands, ...). Each yields a valid plan or a
// typed error (exit code 2), in bounded time and memory.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MiflashError } from '../../../src/errors.js';
import { FlashPlanSchema } from '../../../src/plan/schema.js';
import { parseScript } from '../../../src/rom/script/index.js';
import { REPO_ROOT } from '../../helpers/emulator.js';
import { LIMITS, TOTAL, prng, type Rand } from '../../helpers/fuzz.js';

const GETVARS = ['product', 'anti', 'crc', 'partition-type:cust', 'unlocked', 'is-userspace', 'current-slot'];

const BAT_SOURCES = [
  ...readdirSync(path.join(REPO_ROOT, 'fixtures/corpus'))
    .filter((f) => f.endsWith('.bat'))
    .map((f) => readFileSync(path.join(REPO_ROOT, 'fixtures/corpus', f), 'utf8')),
  ...readdirSync(path.join(REPO_ROOT, 'fixtures/variants'))
    .filter((f) => f.endsWith('.bat'))
    .map((f) => readFileSync(path.join(REPO_ROOT, 'fixtures/variants', f), 'utf8')),
];

const BAT_TOKENS = [
  '%', '%%', '%*', '%1', '%~dp0', '%errorlevel%', '!x!', '"', '^', '(', ')', '&', '&&', '||', '|', '>nul', '2>&1', '2^>^&1', '<nul', ':', '::',
  'goto :eof', 'goto top', 'call :sub', 'exit /b 3', 'exit', 'setlocal enabledelayedexpansion', 'endlocal', 'set /a x=1/0', 'set /p x=', 'if', 'else',
  'for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar anti 2^>^&1\') do set v=%%i', 'if errorlevel 1', 'if %x% GTR 1', 'echo.', 'pause', 'rem',
  'del x', 'call other.bat', 'powershell -Command "Get-Date"', 'ping -n 3 127.0.0.1', 'timeout /t 2', 'choice /c yn',
];

/** A corpus .bat with a few random edits (the same edit kinds as for .sh). */
function mutateBat(r: Rand): string {
  const lines = r.pick(BAT_SOURCES).split('\n');
  const edits = 1 + r.int(4);
  for (let e = 0; e < edits; e++) {
    const i = r.int(Math.max(1, lines.length));
    const l = lines[i] ?? '';
    switch (r.int(5)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[r.int(lines.length)] ?? '');
        break;
      case 2: {
        const at = r.int(l.length + 1);
        lines[i] = `${l.slice(0, at)}${r.pick(BAT_TOKENS)}${l.slice(at)}`;
        break;
      }
      case 3: {
        const words = l.split(' ');
        words[r.int(words.length)] = r.pick(BAT_TOKENS);
        lines[i] = words.join(' ');
        break;
      }
      default: {
        const at = r.int(l.length + 1);
        lines[i] = l.slice(0, at) + l.slice(at + 1 + r.int(4));
      }
    }
  }
  return lines.join(r.chance(0.3) ? '\r\n' : '\n');
}

const BAT_VARS = ['x', 'v', 'anti', 'p'];

function batWord(r: Rand): string {
  return r.pick(['boot', '%~dp0images\\boot.img', '"%~dp0images\\a b.img"', '%x%', '!v!', '%v:~0,1%', '"%p%"', '1', '0', '""', '%1', '%*', '%%i', '%~nx0', '10', '0x1F', '-3']);
}

function batCommand(r: Rand, depth: number): string {
  const v = r.pick(BAT_VARS);
  const simple = [
    () => `fastboot %* getvar ${r.pick(GETVARS)} 2>&1 | findstr ${r.pick(['/r /c:"^product: *lmi"', '/c:"yes"', '"raw"', '/r /x /c:"crc: 1$"', '/i lmi'])}${r.pick(['', ' || exit /b 1', ' || echo bad && exit /B 1', ' >nul'])}`,
    () => `fastboot %* ${r.pick(['flash boot %~dp0images\\boot.img', 'erase cache', 'reboot', 'set_active a', 'oem lock', '-w', 'flash:raw boot k', 'reboot fastboot'])}${r.pick(['', ' || @echo "Flash error" && exit /B 1', ' || goto err'])}`,
    () => `set ${v}=${batWord(r)}`,
    () => `set /a ${v}=${r.pick(['1+2', '%x%*3', 'x<<2', '(1', '7/0', 'v+=1'])}`,
    () => `set /p ${v}=? `,
    () => `for /f "${r.pick(['tokens=2 delims=: ', 'delims=', 'tokens=1,2*', 'usebackq', 'eol=# tokens=3'])}" %%i in (${r.pick(["'fastboot %* getvar anti 2^>^&1 ^| findstr /c:\"anti:\"'", '"a: b c"', '%~dp0images\\anti_version.txt', "'echo x'"])}) do set ${v}=%%i`,
    () => `echo ${batWord(r)}`,
    () => `if ${r.pick(['not ', ''])}${r.pick([`"%${v}%"=="1"`, `%${v}% GTR 1`, 'errorlevel 1', `defined ${v}`, 'exist %~dp0images\\boot.img', '[%v%] EQU []'])} ${r.pick(['echo yes', 'exit /b 2', 'goto top', `set ${v}=0`, 'fastboot %* erase misc'])}`,
    () => `exit ${r.pick(['', '/b ', '/B '])}${r.int(3)}`,
    () => r.pick(['ping -n 2 127.0.0.1 >nul', 'timeout /t 1 /nobreak >nul', 'pause', 'title x', 'cls', 'cd /d %~dp0', 'choice /c yn /m go']),
    () => r.pick(['adb devices', 'del /q x', 'call other.bat', 'start fastboot', 'powershell -Command "Get-Process"', 'copy a b', 'echo x > log.txt']),
    () => r.pick(['goto top', 'goto :eof', `call :sub ${batWord(r)}`, 'call :missing', 'setlocal enabledelayedexpansion', 'endlocal']),
  ];
  if (depth <= 0 || r.chance(0.55)) return r.pick(simple)();
  const body = () => batBlock(r, depth - 1);
  return r.pick([
    () => `if ${r.pick(['%errorlevel% equ 0', 'exist %~dp0images\\x.img', `"%${v}%"==""`, `%${v}% LSS 3`])} (\n${body()}\n) else (\n${body()}\n)`,
    () => `(\n${body()}\n)`,
    () => `for %%k in (a b c) do (\n${body()}\n)`,
    () => `for /l %%k in (1,1,${r.int(5)}) do ${batCommand(r, 0)}`,
    () => `${batCommand(r, 0)} ${r.pick(['&&', '||', '|', '&'])} ${batCommand(r, 0)}`,
  ])();
}

function batBlock(r: Rand, depth: number): string {
  return Array.from({ length: 1 + r.int(4) }, () => batCommand(r, depth)).join('\n');
}

function randomBat(r: Rand): string {
  const head = r.pick(['', '@echo off\n', '@echo off\nsetlocal enabledelayedexpansion\n']);
  // labels so that goto/call have targets (loops and recursion): the bounds must stop them
  return `${head}:top\n${batBlock(r, 3)}\ngoto :eof\n:sub\n${batBlock(r, 2)}\nexit /b\n:err\necho failed\nexit /b 1\n`;
}

describe('fuzz: generated .bat scripts yield a plan or a typed error', () => {
  it(`${TOTAL} .bat scripts (mutations of the corpus and random cmd), bounded`, () => {
    const r = prng(0x5eedbeef);
    let plans = 0;
    let refusals = 0;
    let slowest = 0;
    let slowText = '';
    const heap0 = process.memoryUsage().heapUsed;
    for (let n = 0; n < TOTAL; n++) {
      const text = n % 10 === 0 ? mutateBat(r) : randomBat(r);
      const inputs = r.chance(0.3) ? ['y', 'n'] : [];
      const t0 = performance.now();
      try {
        const plan = parseScript(text, { file: 'flash_all.bat', dialect: 'bat', inputs, limits: LIMITS, readRomText: (f) => (f === 'images/anti_version.txt' ? '3\n' : undefined), listRomFiles: () => ['images/boot.img', 'images/anti_version.txt'] });
        expect(FlashPlanSchema.safeParse(plan).success).toBe(true);
        plans++;
      } catch (err) {
        if (!(err instanceof MiflashError) || err.exitCode !== 2) {
          throw new Error(`.bat script #${n} crashed the interpreter (${(err as Error)?.constructor?.name}: ${(err as Error)?.message}):\n${text}`);
        }
        refusals++;
      }
      const ms = performance.now() - t0;
      if (ms > slowest) {
        slowest = ms;
        slowText = text;
      }
    }
    expect(plans + refusals).toBe(TOTAL);
    expect(plans).toBeGreaterThan(TOTAL / 10);
    expect(refusals).toBeGreaterThan(TOTAL / 10);
    // Bounded time and memory: no script takes seconds, and the heap does not keep what the scripts built.
    expect(slowest).toBeLessThan(10_000);
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(512 * 1024 * 1024);
    console.log(`fuzz (.bat): ${plans} plans, ${refusals} typed refusals, slowest ${slowest.toFixed(0)} ms`);
    if (process.env.MIFLASH_FUZZ_SHOW_SLOWEST) console.log(slowText);
  }, 600_000);
});
