import { mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { RomChecksumError, RomImageError, checkRomImages, planImages } from '../../src/plan/preflight.js';
import { openRom, planForRom } from '../../src/rom/index.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { SparseFormatError } from '../../src/sparse/index.js';

const LIMIT = 16 * 1024;
let work: string;
let n = 0;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'miflash-preflight-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function fresh(from = 'raphaelin'): Promise<SyntheticRom> {
  return buildSyntheticRom(join(work, `${from}-${n++}`), { from, pieceLimit: LIMIT, seed: 7 });
}

async function refusal(rom: SyntheticRom, limit = LIMIT): Promise<Error> {
  const r = await openRom(rom.root);
  const plan = await planForRom(r, { mode: 'clean' });
  let err: Error | undefined;
  await checkRomImages(r, plan, { limit }).catch((e: Error) => (err = e));
  expect(err, 'expected a refusal').toBeDefined();
  return err!;
}

/** Flip one byte in the middle of a file (size unchanged). */
function corrupt(path: string): void {
  const b = readFileSync(path);
  b[b.length >> 1] ^= 0xff;
  writeFileSync(path, b);
}

describe('preflight image checks', () => {
  it('a large image is digested in two halves (MD5 and CRCs on two workers): both are checked', async () => {
    const syn = await fresh('oxygen');
    const r0 = await openRom(syn.root);
    const plan = await planForRom(r0, { mode: 'clean' });
    const big = join(syn.root, 'images/NON-HLOS.bin');
    const data = Buffer.alloc(70 << 20);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(big, data);
    const { createHash } = await import('node:crypto');
    const { crc32 } = await import('node:zlib');
    const md5 = createHash('md5').update(data).digest('hex');
    const crc = (crc32(data) >>> 0).toString(16);
    const lists = (crcValue: string) => {
      const crcs = readFileSync(join(syn.root, 'images/crclist.txt'), 'utf8').replace(/^(modem\S*) 0x[0-9a-f]+$/gm, `$1 0x${crcValue}`);
      writeFileSync(join(syn.root, 'images/crclist.txt'), crcs);
      const listMd5 = createHash('md5').update(crcs).digest('hex');
      const xml = readFileSync(join(syn.root, 'md5sum.xml'), 'utf8')
        .replace(/(name="NON-HLOS\.bin">)[0-9a-f]+/, `$1${md5}`)
        .replace(/(name="crclist\.txt">)[0-9a-f]+/, `$1${listMd5}`);
      writeFileSync(join(syn.root, 'md5sum.xml'), xml);
    };
    lists(crc);
    const ok = await checkRomImages(await openRom(syn.root), plan, { limit: LIMIT });
    expect(ok.images.find((i) => i.file === 'images/NON-HLOS.bin')).toMatchObject({ md5: 'ok', crc: 'ok', size: 70 << 20 });
    lists('12345678');
    await expect(checkRomImages(await openRom(syn.root), plan, { limit: LIMIT })).rejects.toThrow(/NON-HLOS\.bin.*CRC-32.*expected 0x12345678, found 0x/);
  });

  it('a consistent synthetic ROM passes: md5, crc and sparse crc/piece counts all verified', async () => {
    const syn = await fresh();
    const r = await openRom(syn.root);
    const plan = await planForRom(r, { mode: 'clean' });
    const res = await checkRomImages(r, plan, { limit: LIMIT });
    expect(res.images.length).toBe(planImages(plan).size);
    expect(res.images.every((i) => i.md5 === 'ok')).toBe(true);
    const sparse = res.images.filter((i) => i.sparse);
    expect(sparse.map((i) => i.file).sort()).toEqual(['images/cache.img', 'images/cust.img', 'images/system.img', 'images/userdata.img', 'images/vendor.img']);
    expect(sparse.every((i) => i.sparseCrc === 'ok' && i.pieces! >= 1)).toBe(true);
    expect(sparse.some((i) => i.pieces! > 1)).toBe(true);
    expect(res.images.find((i) => i.file === 'images/xbl.elf')).toMatchObject({ crc: 'ok', partitions: ['xbl', 'xblbak'] });
  });

  it('md5 mismatch → RomChecksumError (exit 3) naming file, expected and found', async () => {
    const syn = await fresh();
    corrupt(join(syn.root, 'images/tz.mbn'));
    const err = await refusal(syn);
    expect(err).toBeInstanceOf(RomChecksumError);
    const e = err as RomChecksumError;
    expect(e.exitCode).toBe(ExitCode.GATE_REFUSED);
    expect(e.code).toBe('rom.md5-mismatch');
    expect(e.file).toBe('images/tz.mbn');
    expect(e.message).toMatch(/images\/tz\.mbn \(partition tz\): MD5 \(md5sum\.xml\) mismatch: expected [0-9a-f]{32}, found [0-9a-f]{32}/);
    expect(e.expected).not.toBe(e.found);
  });

  it('crc mismatch (file absent from md5sum.xml) → rom.crc-mismatch with both CRCs', async () => {
    const syn = await fresh();
    const md5 = join(syn.root, 'md5sum.xml');
    writeFileSync(md5, readFileSync(md5, 'utf8').replace(/\s*<digest hash="md5" name="abl\.elf">[0-9a-f]+<\/digest>/, ''));
    corrupt(join(syn.root, 'images/abl.elf'));
    const e = (await refusal(syn)) as RomChecksumError;
    expect(e).toBeInstanceOf(RomChecksumError);
    expect(e.code).toBe('rom.crc-mismatch');
    expect(e.partition).toBe('abl');
    expect(e.message).toMatch(/CRC-32 \(images\/crclist\.txt\) mismatch: expected 0x[0-9a-f]+, found 0x[0-9a-f]+/);
  });

  it('missing image → RomImageError (exit 2)', async () => {
    const syn = await fresh();
    unlinkSync(join(syn.root, 'images/dtbo.img'));
    const e = (await refusal(syn)) as RomImageError;
    expect(e).toBeInstanceOf(RomImageError);
    expect(e.exitCode).toBe(ExitCode.BAD_INPUT);
    expect(e.message).toBe('images/dtbo.img (partition dtbo): missing from the ROM');
  });

  it('corrupt sparse image → SparseFormatError (exit 2) naming the file', async () => {
    const syn = await fresh();
    const p = join(syn.root, 'images/system.img');
    truncateSync(p, readFileSync(p).length - 100);
    const e = await refusal(syn);
    expect(e).toBeInstanceOf(SparseFormatError);
    expect((e as SparseFormatError).exitCode).toBe(ExitCode.BAD_INPUT);
    expect(e.message).toContain('system.img');
  });

  it('piece count at another download limit → rom.piece-count-mismatch', async () => {
    const syn = await fresh();
    const e = (await refusal(syn, 512 * 1024 * 1024)) as RomChecksumError;
    expect(e).toBeInstanceOf(RomChecksumError);
    expect(e.code).toBe('rom.piece-count-mismatch');
    expect(Number(e.expected)).toBeGreaterThan(1);
    expect(e.found).toBe('1');
    expect(e.message).toContain('536870912-byte download limit');
  });

  it('sparse CRC mismatch → rom.sparse-crc-mismatch', async () => {
    const syn = await fresh();
    const list = join(syn.root, 'images/sparsecrclist.txt');
    writeFileSync(list, readFileSync(list, 'utf8').replace(/^(vendor) 0x[0-9a-f]+/m, '$1 0x1234'));
    const md5 = join(syn.root, 'md5sum.xml');
    writeFileSync(md5, readFileSync(md5, 'utf8').replace(/\s*<digest hash="md5" name="sparsecrclist\.txt">[0-9a-f]+<\/digest>/, ''));
    const e = (await refusal(syn)) as RomChecksumError;
    expect(e.code).toBe('rom.sparse-crc-mismatch');
    expect(e.expected).toBe('0x1234');
  });

  it('foreign steps are not checked unless opted in', async () => {
    const syn = await fresh('surya');
    const r = await openRom(syn.root);
    const plan = await planForRom(r, { mode: 'clean' });
    await expect(checkRomImages(r, plan, { limit: LIMIT })).resolves.toBeDefined();
    await expect(checkRomImages(r, plan, { limit: LIMIT, includeForeign: true })).rejects.toThrow(/twrp\.img \(partition recovery\): missing/);
  });
});
