// `miflash flash PARTITION IMAGE` with a corrupt sparse image: a clear error, exit 2,
// and nothing but getvars reaches the device (validation happens before any download).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runTool, tempDir, withEmulator } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';

function miflash(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

const tmp = tempDir('miflash-corrupt-');
let good: Buffer;

beforeAll(async () => {
  const raw = Buffer.concat([randomBytes(64 * 1024), Buffer.alloc(64 * 1024), randomBytes(40 * 1024)]);
  writeFileSync(path.join(tmp.dir, 'raw.img'), raw);
  await runTool('img2simg', [path.join(tmp.dir, 'raw.img'), path.join(tmp.dir, 'good.img')]);
  good = readFileSync(path.join(tmp.dir, 'good.img'));
});
afterAll(() => tmp.cleanup());

/** Each corruption as a function of the valid image; the expected error names what is wrong. */
const corruptions: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
  ['truncated', (b) => b.subarray(0, b.length - 1000), /past the end of the file/],
  ['wrong total_blks', (b) => withU32(b, 16, b.readUInt32LE(16) + 3), /total_blks/],
  ['zero block size', (b) => withU32(b, 12, 0), /block size/],
  ['absurd chunk size', (b) => withU32(b, 28 + 4, 0x7fffffff), /chunk 0/],
  ['bad major version', (b) => withU16(b, 4, 2), /version/],
];

function withU32(b: Buffer, at: number, v: number): Buffer {
  const c = Buffer.from(b);
  c.writeUInt32LE(v >>> 0, at);
  return c;
}
function withU16(b: Buffer, at: number, v: number): Buffer {
  const c = Buffer.from(b);
  c.writeUInt16LE(v, at);
  return c;
}

// The valid image is img2simg's (a sparse file nobody here wrote), so the whole file needs it.
describe('flash PARTITION IMAGE refuses corrupt sparse images before sending anything', needs('img2simg'), () => {
  for (const [name, corrupt, message] of corruptions) {
    it(name, async () => {
      const file = path.join(tmp.dir, `${name.replace(/ /g, '_')}.img`);
      writeFileSync(file, corrupt(good));
      await withEmulator({ partitions: { boot: 1 << 20 } }, async (emu) => {
        const r = await miflash(['-s', emu.address, 'flash', 'boot', file]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).toContain(path.basename(file));
        expect(emu.log.filter((l) => !l.startsWith('getvar:'))).toEqual([]);
      });
    });
  }

  it('the valid image itself flashes (the corruptions above are what make the difference)', async () => {
    await withEmulator({ partitions: { boot: 1 << 20 } }, async (emu) => {
      const r = await miflash(['-s', emu.address, 'flash', 'boot', path.join(tmp.dir, 'good.img')]);
      expect(r.code, r.stderr).toBe(0);
      expect(emu.log.some((l) => l.startsWith('download '))).toBe(true);
    });
  });
});
