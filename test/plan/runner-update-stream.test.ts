// The phase-1 image check of update zips sees each entry as a stream of
// arbitrary pieces (inflate output): the sparse parser must get the same
// answer whatever the piece boundaries, and CRC/size mismatches must be caught.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { StreamCheck } from '../../src/plan/update-zip.js';
import { crc32 } from '../../src/rom/hash.js';
import { sparseImage } from './runner-google-rom.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-zipstream-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function check(data: Buffer, cuts: number[], crc = crc32(data)): Promise<StreamCheck> {
  const pieces: Buffer[] = [];
  let at = 0;
  for (const c of cuts) {
    if (at >= data.length) break;
    pieces.push(data.subarray(at, Math.min(data.length, at + c)));
    at += c;
  }
  if (at < data.length) pieces.push(data.subarray(at));
  const sc = new StreamCheck('z.zip/x.img', data.length);
  await pipeline(Readable.from(pieces), sc.transform(() => {}), new Writable({ write: (_c, _e, cb) => cb() }));
  sc.finish(crc);
  return sc;
}

describe('StreamCheck', () => {
  it('a valid sparse image passes however it is cut; a truncated chunk table fails however it is cut', async () => {
    const { sparse } = await sparseImage(work, 'img', 24);
    const broken = Buffer.from(sparse);
    broken.writeUInt32LE(broken.readUInt32LE(20) + 1, 20); // one chunk more than the file holds
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 400 }), async (cuts) => {
        const ok = await check(sparse, cuts);
        expect(ok.sparse).toBe(true);
        await expect(check(broken, cuts)).rejects.toThrow(/x\.img/);
      }),
      { numRuns: 40 },
    );
  });

  it('raw data is not parsed as sparse; a CRC or size mismatch is reported with both values', async () => {
    const raw = Buffer.alloc(5000, 3);
    expect((await check(raw, [1, 2, 3])).sparse).toBe(false);
    await expect(check(raw, [100], 0x1234)).rejects.toThrow(/x\.img: CRC-32 mismatch: the zip says 0x1234, the data gives 0x[0-9a-f]+/);
    const sc = new StreamCheck('z.zip/x.img', 6000);
    await pipeline(Readable.from([raw]), sc.transform(() => {}), new Writable({ write: (_c, _e, cb) => cb() }));
    expect(() => sc.finish(crc32(raw))).toThrow(/5000 bytes read, the zip says 6000/);
  });
});
