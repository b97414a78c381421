// A probe of a device operation's failure side re-runs the statement from the
// interpreter's state before it. That state is shared with the main run, not
// copied (sh: variables copied on write; bat: setlocal scopes shared), so a
// change the main run makes must never reach it: a counter incremented in the
// statement itself shows the probe's message off by one otherwise.
import { describe, expect, it } from 'vitest';
import { parseScript } from '../../../src/rom/script/index.js';

function abortMessage(text: string, dialect: 'sh' | 'bat'): string | undefined {
  const plan = parseScript(text, { file: dialect === 'sh' ? 'flash_all.sh' : 'flash_all.bat', dialect, listRomFiles: () => ['images/boot.img'] });
  const flash = plan.steps.find((s) => s.kind === 'flash');
  expect(flash?.onFailure).toBe('abort');
  return flash?.message;
}

describe('failure probes start from the state before the statement', () => {
  it('sh: a variable changed by the statement itself', () => {
    const text = ['n=1', 'n=$((n+1)) && fastboot flash boot images/boot.img || { echo "failed at $n"; exit 1; }', ''].join('\n');
    expect(abortMessage(text, 'sh')).toBe('failed at 2');
  });

  it('bat: a variable changed after setlocal/endlocal in the statement', () => {
    const bat = ['@echo off', 'setlocal enabledelayedexpansion', 'set n=1', 'setlocal', '(endlocal', 'set /a n=n+1 >nul', 'fastboot %* flash boot %~dp0images\\boot.img || (echo failed at !n!& exit /b 1)', ')', ''].join('\r\n');
    expect(abortMessage(bat, 'bat')).toBe('failed at 2');
  });
});
