// `miflash lp dump` end to end on hand-built images: super_empty, a raw super
// image, the same image sparse (as Xiaomi ships super.img), --json, --slot, --all.
// Spawns the built CLI (npm run build first).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawToSparse } from '../../src/sparse/index.js';
import { tempDir } from '../helpers/emulator.js';
import { exampleEmptyImage, exampleSuperImage } from './fixtures.js';

const bin = fileURLToPath(new URL('../../bin/miflash.js', import.meta.url));
const tmp = tempDir('miflash-lp-cli-');
const file = (name: string): string => path.join(tmp.dir, name);
afterAll(() => tmp.cleanup());

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [bin, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  writeFileSync(file('super_empty.img'), exampleEmptyImage());
  writeFileSync(file('super.raw'), exampleSuperImage());
  await rawToSparse(file('super.raw'), file('super.simg'));
});

describe('miflash lp dump', () => {
  it('super_empty.img: one metadata copy, no slot heading', async () => {
    const r = await run('lp', 'dump', file('super_empty.img'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith('Metadata version: 10.0\nMetadata size: 464 bytes\n')).toBe(true);
    expect(r.stdout).toContain('    0 .. 6143 linear super 2048\n');
  });

  it('a super image, raw or sparse: "Slot 0:" then the same dump; --slot b and --all', async () => {
    const raw = await run('lp', 'dump', file('super.raw'));
    expect(raw.code, raw.stderr).toBe(0);
    expect(raw.stdout.startsWith('Slot 0:\nMetadata version: 10.0\n')).toBe(true);
    const sparse = await run('lp', 'dump', file('super.simg'));
    expect(sparse.stdout).toBe(raw.stdout);
    expect((await run('lp', 'dump', file('super.raw'), '--slot', 'b')).stdout.startsWith('Slot 1:\n')).toBe(true);
    const all = await run('lp', 'dump', file('super.raw'), '--all');
    expect(all.stdout.match(/^Slot \d:$/gm)).toEqual(['Slot 0:', 'Slot 1:']);
    expect((await run('lp', 'dump', file('super.raw'), '-d')).stdout).toBe('1048576\n');
  });

  it('--json prints lpdump --json', async () => {
    const r = await run('lp', 'dump', file('super.simg'), '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith('{\n "partitions": [\n  {\n   "name": "system_a",\n')).toBe(true);
    expect(JSON.parse(r.stdout).block_devices).toEqual([{ name: 'super', size: '16777216', block_size: '4096', alignment: '1048576' }]);
  });

  it('a file without LP metadata is bad input (exit 2) naming the file and the check', async () => {
    writeFileSync(file('junk.img'), Buffer.alloc(65536, 7));
    const r = await run('lp', 'dump', file('junk.img'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('junk.img: no valid LP geometry: primary geometry at offset 4096: invalid geometry magic 0x07070707');
    expect((await run('lp', 'dump', file('super.raw'), '--slot', 'c')).code).toBe(2);
  });
});
