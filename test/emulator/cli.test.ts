// `miflash emulate` argument handling (the CLI runs as a child process; needs dist/).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runAospFastboot, spawnCliEmulator, tempDir } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';

const bin = path.join(REPO_ROOT, 'bin/miflash.js');
const emulate = (...args: string[]) =>
  spawnSync(process.execPath, [bin, 'emulate', '--listen', 'tcp:127.0.0.1:0', ...args], { encoding: 'utf8', timeout: 10_000 });

describe('miflash emulate (CLI)', () => {
  it('refuses to start without --store or --discard, and with bad values (exit 2)', () => {
    const none = emulate();
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('--store DIR');
    const badPart = emulate('--discard', '--partition', 'boot');
    expect(badPart.status).toBe(2);
    expect(badPart.stderr).toContain('bad --partition "boot": expected KEY=VALUE');
    const badSize = emulate('--discard', '--max-download-size', '8G');
    expect(badSize.status).toBe(2);
  });

  it('--slots, --var, --serial, --product and --partition shape what the AOSP client sees', needs('fastboot'), async () => {
    const tmp = tempDir();
    const emu = await spawnCliEmulator([
      '--store', path.join(tmp.dir, 's'), '--slots', 'a,b', '--var', 'anti=3', '--serial', 'SER42',
      '--product', 'umi', '--partition', 'cust=3M', '--max-download-size', '0x100000',
    ]);
    try {
      const r = await runAospFastboot(emu.port, ['getvar', 'all']);
      expect(r.code).toBe(0);
      for (const line of ['product:umi', 'serialno:SER42', 'anti:3', 'current-slot:a', 'slot-count:2', 'max-download-size:0x00100000', 'partition-size:cust:0x300000', 'has-slot:boot:yes']) {
        expect(r.stderr).toContain(`(bootloader) ${line}`);
      }
      expect(existsSync(path.join(tmp.dir, 's', 'boot_b.img'))).toBe(true);
      expect(existsSync(path.join(tmp.dir, 's', 'recovery.img'))).toBe(false);
    } finally {
      expect(await emu.stop()).toBe(0);
      tmp.cleanup();
    }
  });
});
