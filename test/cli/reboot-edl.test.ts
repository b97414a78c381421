// `miflash reboot edl`: `oem edl` first, `reboot-edl` when the bootloader refuses it
// (both-refused is covered at the unit level in test/edl).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, withEmulator } from '../helpers/emulator.js';

/** Async spawn: the emulator runs in this process, so its event loop must keep turning. */
function miflash(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('miflash reboot edl', () => {
  it('asks with oem edl and stops there when the bootloader accepts it', async () => {
    await withEmulator({}, async (emu) => {
      const r = await miflash(['-s', emu.address, 'reboot', 'edl']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("rebooted into EDL with 'oem edl'");
      expect(emu.log).toEqual(['oem edl']);
    });
  });

  it('falls back to reboot-edl when oem edl is refused', async () => {
    await withEmulator({ faults: { failOn: 'oem edl', failMessage: 'unknown command' } }, async (emu) => {
      const r = await miflash(['-s', emu.address, 'reboot', 'edl']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("rebooted into EDL with 'reboot-edl'");
      expect(emu.log).toEqual(['oem edl', 'reboot-edl']);
    });
  });
});
