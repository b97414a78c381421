// `miflash sparse ...` end to end: spawns the built CLI (run `npx tsc -p .` first).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../helpers/peers.js';
import { buildRaw, buildSparse, img2simg, padTo, simg2img, tempDir, write } from './helpers.js';

const bin = fileURLToPath(new URL('../../bin/miflash.js', import.meta.url));
const tmp = tempDir();
afterAll(() => tmp.cleanup());

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [bin, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

let raw: Buffer;
let rawPath: string;
let simg: string | undefined;
/** img2simg's sparse image of `raw`, made on first use (by tests that need('img2simg')). */
function aospSimg(): string {
  if (simg === undefined) {
    simg = join(tmp.dir, 'system.aosp.simg');
    img2simg(rawPath, simg);
  }
  return simg;
}

beforeAll(() => {
  expect(existsSync(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)))).toBe(true);
  raw = buildRaw([
    { kind: 'data', bytes: 300_000, seed: 7 },
    { kind: 'fill', bytes: 200_000, value: 0 },
    { kind: 'fill', bytes: 40_960, value: 0xabcdef01 },
    { kind: 'data', bytes: 123_457, seed: 8 },
  ]);
  rawPath = write(tmp.dir, 'system.raw', raw);
});

describe('miflash sparse', () => {
  it('info summarises header and chunks, readable and --json', needs('img2simg'), async () => {
    const simgPath = aospSimg();
    const text = await run('sparse', 'info', simgPath);
    expect(text.code).toBe(0);
    const blocks = Math.ceil(raw.length / 4096);
    expect(text.stdout).toContain(`expanded: ${blocks * 4096} bytes`);
    expect(text.stdout).toContain(`${blocks} blocks of 4096 bytes`);
    expect(text.stdout).toMatch(/chunks: \d+ = RAW \d+ \(\d+ blocks\), FILL \d+ \(\d+ blocks\)/);

    const json = await run('--json', 'sparse', 'info', '--chunks', simgPath);
    expect(json.code).toBe(0);
    const j = JSON.parse(json.stdout) as { format: string; header: { totalBlocks: number }; summary: Record<string, { blocks: number }>; chunks: unknown[] };
    expect(j.format).toBe('sparse');
    expect(j.header.totalBlocks).toBe(blocks);
    expect(j.summary.raw!.blocks + j.summary.fill!.blocks).toBe(blocks);
    expect(j.chunks.length).toBeGreaterThan(2);
  });

  it('info on a raw file says so', async () => {
    const r = await run('sparse', 'info', rawPath);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`not a sparse image (raw data, ${raw.length} bytes`);
  });

  it('from-raw writes what img2simg writes; to-raw writes what simg2img writes', needs('img2simg', 'simg2img'), async () => {
    const simgPath = aospSimg();
    const out = join(tmp.dir, 'system.ours.simg');
    const r = await run('sparse', 'from-raw', rawPath, out);
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(simgPath))).toBe(true);

    const back = join(tmp.dir, 'system.back.raw');
    expect((await run('--json', 'sparse', 'to-raw', out, back)).code).toBe(0);
    expect(readFileSync(back).equals(simg2img([simgPath], join(tmp.dir, 'aosp.back.raw')))).toBe(true);
    expect(readFileSync(back).equals(padTo(raw))).toBe(true);
  });

  it('split writes pieces simg2img reassembles; count agrees with split', needs('img2simg', 'simg2img'), async () => {
    const dir = join(tmp.dir, 'pieces');
    const r = await run('--json', 'sparse', 'split', rawPath, '--limit', '128K', '--out', dir);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { pieces: { path: string; size: number }[] };
    expect(j.pieces.length).toBeGreaterThan(3);
    for (const p of j.pieces) expect(p.size).toBeLessThanOrEqual(128 * 1024);
    expect(readdirSync(dir).sort()).toEqual(j.pieces.map((p) => p.path.slice(dir.length + 1)).sort());
    expect(simg2img(j.pieces.map((p) => p.path), join(tmp.dir, 'split.back.raw')).equals(padTo(raw))).toBe(true);

    const c = await run('sparse', 'count', rawPath, '--limit', '128K');
    expect(c).toMatchObject({ code: 0, stdout: `${j.pieces.length}\n` });
    const g = await run('-S', '128K', '--json', 'sparse', 'count', aospSimg());
    expect(JSON.parse(g.stdout)).toMatchObject({ event: 'sparse.count', limit: 131072 });
    const whole = await run('sparse', 'count', rawPath, '--limit', '1G');
    expect(whole.stdout).toBe('1\n');
  });

  it('crc prints the sparsecrclist CRC', needs('img2simg'), async () => {
    const r = await run('sparse', 'crc', aospSimg());
    expect(r.code).toBe(0);
    // No DONT_CARE chunks here, so the CRC is that of the expanded image.
    const { crc32 } = await import('node:zlib');
    expect(r.stdout.trim()).toBe(`0x${crc32(padTo(raw)).toString(16)}`);
  });

  it('corrupt input: exit code 2 and a message naming file, chunk and offset', async () => {
    const img = buildSparse([
      { type: 'raw', blocks: 2, seed: 1 },
      { type: 'fill', blocks: 1, value: 3 },
    ]);
    const bad = write(tmp.dir, 'bad.simg', img.subarray(0, 1000));
    const r = await run('sparse', 'info', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`sparse image ${bad}, chunk 0, offset 28 (0x1c): chunk runs past the end of the file`);
    const j = await run('--json', 'sparse', 'to-raw', bad, join(tmp.dir, 'x.raw'));
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ event: 'error', code: 'sparse.invalid', exitCode: 2 });
    expect(existsSync(join(tmp.dir, 'x.raw'))).toBe(false);
  });

  it('bad sizes and missing limits are usage errors', async () => {
    expect((await run('sparse', 'count', rawPath, '--limit', '12Q')).stderr).toMatch(/invalid --limit '12Q'/);
    expect((await run('sparse', 'count', rawPath)).stderr).toMatch(/missing --limit SIZE/);
    expect((await run('sparse', 'count', rawPath)).code).toBe(2);
  });
});
