// The download payloads of the real AOSP fastboot client (v29, `fastboot`
// -S LIMIT flash) captured by the emulated device, against prepareForDownload.
import fc from 'fast-check';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFastbootEmulator, type RunningFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import type { PreparedImage } from '../../src/sparse/descriptor.js';
import { parseSparseBuffer } from '../../src/sparse/parse.js';
import { payloadChunks, hashPayload } from '../../src/sparse/payload-io.js';
import { prepareForDownload } from '../../src/sparse/prepare.js';
import { blocksFromRawFile } from '../../src/sparse/raw-scan.js';
import { rawFromRegions, rawRegions, readSizes, sparseLayout, sparseSpecs } from './arbitraries.js';
import { needs, peerPath } from '../helpers/peers.js';
import { buildRaw, buildSparse, execFileAsync, tempDir, write } from './helpers.js';

const tmp = tempDir();
let emu: RunningFastbootEmulator;
let seq = 0;

beforeAll(async () => {
  emu = await startFastbootEmulator('tcp:127.0.0.1:0', { store: null, partitions: { system: 8 * 1024 ** 3 } });
});
afterAll(async () => {
  await emu?.close();
  tmp.cleanup();
});

/** (size, sha256) of every download fastboot makes for `flash system IMAGE` with -S limit. */
async function fastbootDownloads(image: string, limit: number): Promise<string[]> {
  const before = emu.log.length;
  await execFileAsync(peerPath('fastboot'), ['-s', emu.address, '-S', String(limit), 'flash', 'system', image], { timeout: 30_000 });
  return emu.log
    .slice(before)
    .filter((l) => l.startsWith('download '))
    .map((l) => l.slice('download '.length));
}

async function ourDownloads(p: PreparedImage): Promise<string[]> {
  return Promise.all(p.pieces.map(async (piece) => `${piece.size} ${await hashPayload(p.path, piece)}`));
}

async function bytesOf(p: PreparedImage, i: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of payloadChunks(p.path, p.pieces[i]!)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Limits within a few bytes of where a piece fills up (prefix sums of the encoded runs). */
async function edgeLimits(rawPath: string): Promise<number[]> {
  const image = await blocksFromRawFile(rawPath);
  const out: number[] = [];
  let len = 56;
  let last = 0;
  for (const bb of image.blocks) {
    len += (bb.block > last ? 12 : 0) + 12 + (bb.kind === 'fill' ? 4 : Math.ceil(bb.len / 4096) * 4096);
    last = bb.block + Math.ceil(bb.len / 4096);
    if (len >= 64 * 1024) out.push(len);
  }
  return out;
}

describe('download payloads are byte-identical to AOSP fastboot -S', needs('fastboot'), () => {
  it('raw images (sizes not multiples of 4096 included)', async () => {
    await fc.assert(
      fc.asyncProperty(rawRegions, fc.double({ min: 0.05, max: 1.3, noNaN: true }), fc.integer({ min: -16, max: 16 }), fc.nat(), readSizes, async (regions, frac, delta, pick, readSize) => {
        const raw = rawFromRegions(regions, buildRaw);
        const path = write(tmp.dir, `raw${++seq}.img`, raw);
        const edges = await edgeLimits(path);
        const limit = Math.max(64 * 1024, pick % 2 === 0 && edges.length > 0 ? edges[pick % edges.length]! + delta : Math.floor(raw.length * frac));

        const aosp = await fastbootDownloads(path, limit);
        const compat = await prepareForDownload(path, limit, { aospQuirks: true, readSize });
        expect(await ourDownloads(compat)).toEqual(aosp);

        // Default mode differs only where libsparse writes malformed pieces:
        // a non-final piece of an image whose length is not a block multiple
        // lacks its trailing DONT_CARE (12 bytes). Ours have it and parse.
        const fixed = await prepareForDownload(path, limit, { readSize });
        expect(fixed.pieces.length).toBe(compat.pieces.length);
        const quirky = compat.format === 'sparse' && raw.length % 4096 !== 0;
        for (const [i, piece] of fixed.pieces.entries()) {
          const last = i === fixed.pieces.length - 1;
          expect(piece.size).toBe(compat.pieces[i]!.size + (quirky && !last ? 12 : 0));
          if (fixed.format === 'sparse') {
            expect(piece.size).toBeLessThanOrEqual(limit);
            expect(parseSparseBuffer(await bytesOf(fixed, i)).header.totalBlocks).toBe(Math.ceil(raw.length / 4096));
          }
        }
        if (!quirky) expect(await ourDownloads(fixed)).toEqual(aosp);
      }),
      { numRuns: 40 },
    );
  });

  it('sparse images (gaps, fills, CRC chunks, other block sizes, wide headers)', async () => {
    await fc.assert(
      fc.asyncProperty(sparseSpecs, sparseLayout, fc.double({ min: 0.05, max: 1.3, noNaN: true }), async (specs, layout, frac) => {
        const img = buildSparse(specs, {
          blockSize: layout.blockSize,
          ...(layout.wideHeaders ? { fileHeaderSize: 32, chunkHeaderSize: 16 } : {}),
        });
        const path = write(tmp.dir, `sparse${++seq}.img`, img);
        const limit = Math.max(64 * 1024, Math.floor(img.length * frac));
        const aosp = await fastbootDownloads(path, limit);
        const ours = await prepareForDownload(path, limit);
        expect(ours.format).toBe('sparse');
        expect(await ourDownloads(ours)).toEqual(aosp);
      }),
      { numRuns: 30 },
    );
  });

  it('the worked example: 125480-byte raw image at -S 64K (libsparse prints a skip-chunk error and omits the chunk)', async () => {
    const raw = buildRaw([
      { kind: 'data', bytes: 100000, seed: 1 },
      { kind: 'fill', bytes: 20480, value: 0 },
      { kind: 'data', bytes: 5000, seed: 2 },
    ]);
    const path = write(tmp.dir, 'example.img', raw);
    const aosp = await fastbootDownloads(path, 65536);
    expect(aosp.map((d) => Number(d.split(' ')[0]))).toEqual([61480, 49232]);
    const compat = await prepareForDownload(path, 65536, { aospQuirks: true });
    expect(await ourDownloads(compat)).toEqual(aosp);
    // AOSP's first piece declares 2 chunks but carries 1: a strict parser rejects it.
    const first = await bytesOf(compat, 0);
    expect(() => parseSparseBuffer(first)).toThrow(/chunk 1, offset 61480 .*truncated chunk header/);
    const fixed = await prepareForDownload(path, 65536);
    expect(parseSparseBuffer(await bytesOf(fixed, 0)).chunks.at(-1)).toMatchObject({ type: 'dont-care', startBlock: 15, blocks: 16 });
  });

  it('unlimited or large enough limits send the file as is', async () => {
    const raw = buildRaw([{ kind: 'data', bytes: 70000, seed: 3 }]);
    const path = write(tmp.dir, join('whole.img'), raw);
    const aosp = await fastbootDownloads(path, 1 << 20);
    const ours = await prepareForDownload(path, 1 << 20);
    expect(ours.format).toBe('raw');
    expect(await ourDownloads(ours)).toEqual(aosp);
    expect(aosp).toHaveLength(1);
  });
});
