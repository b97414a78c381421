// cmd.exe semantics the .bat interpreter must get right, each case one that a
// plausible but wrong implementation gets wrong (expected results follow cmd's
// documented rules, said in each test). Plans are walked for model devices.
import { describe, expect, it } from 'vitest';
import { stepLabel } from '../../../src/plan/runner.js';
import { isDeviceOp, type FlashPlan } from '../../../src/plan/schema.js';
import { simulatePlan } from '../../../src/plan/simulate.js';
import { parseScript, ScriptInterpretError } from '../../../src/rom/index.js';
import { cmdCompare, forFRuns, parseForOptions } from '../../../src/rom/script/tools/cmd.js';
import { splitArgs } from '../../../src/rom/script/bat/parse.js';
import { evalSetA, getDateConversion } from '../../../src/rom/script/bat/interpret.js';
import { toolBox } from '../../../src/rom/script/tools/index.js';
import { planQueries, predText } from '../../../src/plan/pred-text.js';

function plan(text: string, opts: { inputs?: string[]; files?: string[]; maxSteps?: number } = {}): FlashPlan {
  return parseScript(text.split('\n').join('\r\n'), {
    file: 'flash_all.bat',
    dialect: 'bat',
    ...(opts.inputs ? { inputs: opts.inputs } : {}),
    ...(opts.files ? { listRomFiles: () => opts.files! } : {}),
    ...(opts.maxSteps ? { limits: { maxSteps: opts.maxSteps } } : {}),
  });
}

function run(p: FlashPlan, vars: Record<string, string> = {}): { ops: string[]; notes: string[]; stop?: string } {
  const sim = simulatePlan(p.steps, { vars }, toolBox);
  const s = sim.stop;
  const stop = s && !(s.kind === 'exit' && s.status === 0) ? `${s.kind}@${s.line}${s.message ? `: ${s.message}` : ''}` : undefined;
  return {
    ops: sim.ran.filter(isDeviceOp).map(stepLabel),
    notes: sim.ran.flatMap((x) => (x.kind === 'note' ? [x.text] : [])),
    ...(stop ? { stop } : {}),
  };
}

const lines = (...l: string[]) => l.join('\n');

describe('expansion: %var% when the line (or block) is read, !var! when the command runs', () => {
  it('%x% inside a block has its value from before the block', () => {
    const p = plan(lines('@echo off', 'set x=old', '(', '  set x=new', '  fastboot %* erase %x%', '  echo %x%', ')', 'fastboot %* erase %x%'));
    expect(run(p)).toMatchObject({ ops: ['erase old', 'erase new'], notes: ['old'] });
  });
  it('!x! under setlocal enabledelayedexpansion has the value of the moment', () => {
    const p = plan(lines('@echo off', 'setlocal enabledelayedexpansion', 'set x=old', '(', '  set x=new', '  fastboot %* erase !x!', ')'));
    expect(run(p).ops).toEqual(['erase new']);
  });
  it('without delayed expansion !x! is literal text', () => {
    const p = plan(lines('set x=new', 'fastboot %* oem !x!'));
    expect(run(p).ops).toEqual(['oem !x!']);
  });
  it('%errorlevel% on the line of the command that sets it is the previous value', () => {
    // `fastboot getvar crc | findstr ... && if %errorlevel% equ 0 (`: the test reads the errorlevel from before the line.
    const p = plan(lines('fastboot %* getvar x 2>&1 | findstr /c:"x: 1"', 'fastboot %* getvar y 2>&1 | findstr /c:"y: 1" && if %errorlevel% equ 0 (', 'fastboot %* erase yes', ')'));
    expect(run(p, { x: '1', y: '1' }).ops).toEqual(['erase yes']);
    expect(run(p, { x: '0', y: '1' }).ops).toEqual([]); // errorlevel 1 from line 1
  });
  it('setlocal scopes end at endlocal', () => {
    const p = plan(lines('set p=outer', 'setlocal', 'set p=inner', 'endlocal', 'fastboot %* erase %p%'));
    expect(run(p).ops).toEqual(['erase outer']);
  });
  it('^ escapes a special character; quotes keep it; echo prints the quotes', () => {
    const p = plan(lines('@echo off', 'echo a ^& b', 'echo "c & d"', 'echo.'));
    expect(run(p).notes).toEqual(['a & b', '"c & d"']);
  });
  it('%name:~a,b% and %name:x=y%', () => {
    const p = plan(lines('set v=abcdef', 'fastboot %* oem %v:~1,3% %v:cd=XY% %v:~-2%'));
    expect(run(p).ops).toEqual(['oem bcd abXYef ef']);
  });
});

describe('errorlevel and exit codes', () => {
  it('`if errorlevel N` means errorlevel >= N', () => {
    const p = plan(lines('@echo off', 'choice /C ABC /N', 'if errorlevel 3 echo three', 'if errorlevel 2 echo two', 'if errorlevel 1 echo one', 'if not errorlevel 2 echo below'), { inputs: ['b'] });
    expect(run(p).notes.filter((n) => /^(three|two|one|below)$/.test(n))).toEqual(['two', 'one']);
  });
  it('a program resets errorlevel: after `fastboot erase` succeeds, `if errorlevel 1` is false', () => {
    const p = plan(lines('@echo off', 'choice /C AB /N', 'if errorlevel 2 fastboot %* erase two', 'if errorlevel 1 echo still one'), { inputs: ['b'] });
    // erase two succeeding sets errorlevel 0; failing, it would set 1 and the script would go on differently: refused.
    expect(() => run(p)).not.toThrow();
  });
  it('`if errorlevel N` on a device-dependent status', () => {
    const p = plan(lines('fastboot %* getvar x 2>&1 | findstr /c:"x: 1" >nul', 'if errorlevel 1 fastboot %* erase nomatch'));
    expect(run(p, { x: '1' }).ops).toEqual([]);
    expect(run(p, { x: '2' }).ops).toEqual(['erase nomatch']);
  });
  it('internal commands leave errorlevel alone', () => {
    const p = plan(lines('@echo off', 'fastboot %* getvar product 2>&1 | findstr /c:"product: x" >nul', 'echo hi', 'set y=1', 'if %errorlevel% neq 0 fastboot %* erase notx'));
    expect(run(p, { product: 'x' }).ops).toEqual([]);
    expect(run(p, { product: 'y' }).ops).toEqual(['erase notx']);
  });
  it('&& binds tighter than ||: `A || echo M && exit /b 1` aborts only when A fails, with M', () => {
    const p = plan(lines('fastboot %* erase a || echo failed a && exit /b 1', 'fastboot %* erase b'));
    expect(run(p).ops).toEqual(['erase a', 'erase b']);
    expect(p.steps.find((s) => s.kind === 'erase' && s.partition === 'a')).toMatchObject({ onFailure: 'abort', message: 'failed a' });
  });
  it('call :label passes arguments (%1 keeps quotes, %~1 drops them); exit /b N sets errorlevel; goto :eof returns', () => {
    const p = plan(lines('@echo off', 'call :sub "x" z', 'if errorlevel 5 fastboot %* erase five', 'call :noop', 'fastboot %* reboot', 'goto :eof', ':sub', 'fastboot oem %~1 %2', 'fastboot erase p%1', 'exit /b 5', ':noop', 'goto :eof', 'fastboot %* erase never'));
    // %1 is "x" with its quotes: erase p"x" reaches fastboot as p + x (the quotes group, and go)
    expect(run(p).ops).toEqual(['oem x z', 'erase px', 'erase five', 'reboot']);
  });
  it('exit without /b ends the script from inside a call', () => {
    const p = plan(lines('call :f', 'fastboot %* erase after', 'goto :eof', ':f', 'echo bye', 'exit 3'));
    expect(run(p)).toMatchObject({ ops: [], stop: 'exit@6: bye' });
  });
});

describe('for /f', () => {
  it('tokens and delims pick the fields; * takes the rest of the line', () => {
    const p = plan(lines('for /f "tokens=2,3* delims=:, " %%a in ("k: v1, v2 rest of line") do fastboot %* oem %%a %%b %%c'));
    expect(run(p).ops).toEqual(['oem v1 v2 rest of line']);
  });
  it('a line without the requested token is skipped; lines starting with ; are skipped', () => {
    const o = parseForOptions('tokens=2 delims=:');
    expect(forFRuns('one\n;x:y\nk:v\n\nk2:v2\r\n', o)).toEqual([['v'], ['v2']]);
    expect(forFRuns('a b\n', parseForOptions('tokens=* delims= '))).toEqual([['a b']]);
    expect(forFRuns('a=b\n', parseForOptions('delims=='))).toEqual([['a']]);
  });
  it('a device value read with for /f compares as a number (10 > 3, although "10" < "3" as text)', () => {
    const p = plan(lines('for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar anti 2^>^&1 ^| findstr /r /c:"anti:"\') do set v=%%i', 'if [%v%] EQU [] set v=0', 'if %v% GTR 3 (echo too new& exit /b 1)', 'fastboot %* reboot'));
    expect(run(p, { anti: '10' })).toMatchObject({ ops: [], stop: 'exit@3: too new' });
    expect(run(p, { anti: '3' }).ops).toEqual(['reboot']);
    expect(run(p, {}).ops).toEqual(['reboot']);
  });
  it('usebackq: "file" is a ROM file, \'text\' a string; without it "text" is a string', () => {
    const text = lines('for /f "usebackq" %%a in ("%~dp0images\\anti_version.txt") do set A=%%a', 'for /f "delims==" %%a in ("%~dp0images\\anti_version.txt") do set B=%%~nxa', 'fastboot %* oem %A% %B%');
    const p = parseScript(text, { file: 'flash_all.bat', dialect: 'bat', readRomText: (f) => (f === 'images/anti_version.txt' ? '7\n' : undefined) });
    expect(run(p).ops).toEqual(['oem 7 anti_version.txt']);
  });
  it('%%~nxi of %cd% is the ROM folder name', () => {
    const p = parseScript('for /f "delims=" %%i in ("%cd%") do set folder=%%~nxi\nfastboot %* oem %folder%\n', { file: 'flash_all.bat', dialect: 'bat', folderName: 'land_images_china_8.0' });
    expect(run(p).ops).toEqual(['oem land_images_china_8.0']);
  });
  it('a powershell Get-Date conversion of a device date, compared with the package date', () => {
    const p = plan(
      lines(
        "for /f %%i in ('powershell -NoProfile -Command \"(Get-Date '2024-05-01').ToString('yyyyMMdd')\"') do set PKG=%%i",
        'for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar security-patch-level 2^>^&1 ^| findstr /r /c:"^security-patch-level:"\') do set DEV=%%i',
        "for /f %%i in ('powershell -Command \"(Get-Date '%DEV%').ToString('yyyyMMdd')\"') do set DEVN=%%i",
        'if %DEVN% GTR %PKG% (echo device is newer& exit /b 1)',
        'fastboot %* reboot',
      ),
    );
    expect(run(p, { 'security-patch-level': '2024-06-01' })).toMatchObject({ stop: 'exit@4: device is newer' });
    expect(run(p, { 'security-patch-level': '2024-01-05' }).ops).toEqual(['reboot']);
  });
});

describe('paths, input, set /a, loops and limits', () => {
  it('%~dp0 paths map into the ROM (doubled separators, / or \\); ..\\ out of it is refused', () => {
    const p = plan(lines('fastboot %* flash a "%~dp0images\\a.img"', 'fastboot %* flash b %~dp0\\images/b.img', 'fastboot %* flash c .\\images\\c.img'));
    expect(run(p).ops).toEqual(['flash a images/a.img', 'flash b images/b.img', 'flash c images/c.img']);
    expect(() => plan('fastboot %* flash a %~dp0..\\a.img\n')).toThrow(/outside the ROM folder/);
  });
  it('a ROM folder whose name has blanks or cmd specials still maps unquoted %~dp0 paths into the ROM', () => {
    const p = parseScript('fastboot %* flash boot %~dp0images\\boot.img\nfastboot %* oem %cd:~3%\n', { file: 'flash_all.bat', dialect: 'bat', folderName: 'my rom (1)&x' });
    expect(run(p).ops).toEqual(['flash boot images/boot.img', 'oem my_rom__1__x']);
  });
  it('`if exist` looks at the ROM; if /i compares without case', () => {
    const p = plan(lines('if exist "%~dp0images\\x.img" (fastboot %* flash x %~dp0images\\x.img) else (fastboot %* erase x)', 'if /i "ABC"=="abc" fastboot %* erase ci', 'if "ABC"=="abc" fastboot %* erase cs'), { files: ['images/x.img'] });
    expect(run(p).ops).toEqual(['flash x images/x.img', 'erase ci']);
  });
  it('set /p reads --input; nothing typed leaves the variable and sets errorlevel 1', () => {
    const text = lines('set ans=n', 'set /p ans=Continue? ', 'if /i "%ans%"=="y" fastboot %* reboot');
    expect(run(plan(text, { inputs: ['Y'] })).ops).toEqual(['reboot']);
    expect(run(plan(text, { inputs: [] })).ops).toEqual([]);
  });
  it('set /a: C precedence, shifts, assignment operators, 32-bit', () => {
    const vars = new Map<string, number>();
    const env = { get: (n: string) => vars.get(n) ?? 0, set: (n: string, v: number) => void vars.set(n, v) };
    expect(evalSetA('n=7/2*3+(1<<4)', env)).toBe(25);
    expect(evalSetA('n+=1, m=n%5', env)).toBe(1);
    expect(vars.get('n')).toBe(26);
    expect(evalSetA('2147483647+1', env)).toBe(-2147483648);
    expect(() => evalSetA('1/0', env)).toThrow(/Divide by zero/);
    expect(run(plan('set /a n=0x10+010\nfastboot %* oem %n%\n')).ops).toEqual(['oem 24']);
  });
  it('a goto loop runs as often as the script says (each turn its own steps)', () => {
    const p = plan(lines('set /a i=0', ':again', 'set /a i+=1', 'fastboot %* oem turn %i%', 'if %i% LSS 3 goto again'));
    expect(run(p).ops).toEqual(['oem turn 1', 'oem turn 2', 'oem turn 3']);
  });
  it('goto leaves the rest of its line, block and for loop at once (cmd reads on at the label)', () => {
    // & and && after a goto, the rest of a block, further turns of a for loop, and an if's block: none of it runs.
    const p = plan(
      lines(
        '@echo off',
        'goto one & fastboot %* erase no1',
        ':one',
        'goto two && fastboot %* erase no2 || fastboot %* erase no3',
        ':two',
        '(',
        '  fastboot %* erase yes1',
        '  goto three',
        '  fastboot %* erase no4',
        ')',
        ':three',
        'for %%k in (a b c) do (',
        '  fastboot %* oem turn %%k',
        '  if %%k==b goto four',
        ')',
        ':four',
        'for /l %%n in (1,1,3) do if %%n==2 (goto five) else fastboot %* oem n %%n',
        ':five',
        'fastboot %* reboot',
      ),
    );
    expect(run(p).ops).toEqual(['erase yes1', 'oem turn a', 'oem turn b', 'oem n 1', 'reboot']);
  });
  it('an endless goto loop and endless recursion end in typed limit errors', () => {
    const loop = (() => {
      try {
        plan(':top\necho x >nul\ngoto top\n', { maxSteps: 500 });
      } catch (e) {
        return e;
      }
    })();
    expect(loop).toBeInstanceOf(ScriptInterpretError);
    expect((loop as ScriptInterpretError).code).toBe('script.limit');
    expect(() => plan(':f\ncall :f\n')).toThrow(/calls nest deeper than/);
  });
  it('a script with the private-use characters the interpreter marks device answers with is refused', () => {
    expect(() => plan('set v=\ue000\nfastboot %* oem %v%\n')).toThrow(/private-use Unicode character/);
  });
  it('ping -n N localhost and timeout /t N are sleeps; pause prints its prompt', () => {
    const p = plan(lines('ping -n 5 127.0.0.1 >nul', 'timeout /t 3 /nobreak >nul', 'pause'));
    expect(p.steps.map((s) => (s.kind === 'sleep' ? `sleep ${s.seconds}` : s.kind === 'note' ? s.text : s.kind))).toEqual(['sleep 4', 'sleep 3', 'Press any key to continue . . . ']);
  });
});

describe('plans show cmd conditions in batch words', () => {
  it('an exit under a for /f token compared with GTR', () => {
    const p = plan(lines('for /f "tokens=2 delims=: " %%i in (\'fastboot %* getvar anti 2^>^&1 ^| findstr /r /c:"anti:"\') do set v=%%i', 'if %v% GTR 3 (echo too new& exit /b 1)', 'fastboot %* reboot'));
    const exit = p.steps.find((s) => s.kind === 'exit' && s.status === 1)!;
    const text = predText(exit.when!, planQueries(p.steps));
    expect(text).toContain('for /f "tokens=2 delims=: ": line 1 of (fastboot getvar anti 2>&1 | findstr /r /c:anti:) exists');
    expect(text).toContain('if (for /f "tokens=2 delims=: ": token 1 of line 1 of (fastboot getvar anti 2>&1 | findstr /r /c:anti:)) GTR 3');
  });
});

describe('the pure pieces', () => {
  it('cmd comparisons: numbers when both are numbers (hex, octal), text otherwise, == always text', () => {
    expect(cmdCompare('GTR', '10', '9', false)).toBe(true);
    expect(cmdCompare('GTR', '0x10', '15', false)).toBe(true);
    expect(cmdCompare('EQU', '010', '8', false)).toBe(true);
    expect(cmdCompare('GTR', '2024-06-01', '2024-05-01', false)).toBe(true);
    expect(cmdCompare('LSS', 'abc', 'abd', false)).toBe(true);
    expect(cmdCompare('==', '01', '1', false)).toBe(false);
    expect(cmdCompare('EQU', '01', '1', false)).toBe(true);
    expect(cmdCompare('==', 'A', 'a', true)).toBe(true);
  });
  it('Windows argument splitting', () => {
    expect(splitArgs('/c:"product: *land"$ a\\"b "c d"')).toEqual(['/c:product: *land$', 'a"b', 'c d']);
    expect(splitArgs('/r /x /c:"product: *"land"$"')).toEqual(['/r', '/x', '/c:product: *land$']);
  });
  it('Get-Date forms', () => {
    expect(getDateConversion("(Get-Date '2024-05-01').ToString('yyyyMMdd')")).toEqual({ date: '2024-05-01', format: '%Y%m%d' });
    expect(getDateConversion('Get-Date -Date "2024-05-01" -UFormat %s')).toEqual({ date: '2024-05-01', format: '%s' });
    expect(getDateConversion("[int](Get-Date '2024-05-01' -UFormat %s)")).toEqual({ date: '2024-05-01', format: '%s' });
    expect(getDateConversion('Get-Process')).toBeUndefined();
  });
});
