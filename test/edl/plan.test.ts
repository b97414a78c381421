// ROM layout -> EDL plan: file discovery (rawprogram0..N, patches, unsparse),
// skipped entries, missing files, programmer discovery, memory type, guards.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildEdlPlan } from '../../src/edl/rom-plan.js';
import { discoverProgrammer, loadSaharaImages, memoryFromName, parseSaharaConfig, programmerWarnings } from '../../src/edl/programmer.js';
import { prepareProgram, streamSource } from '../../src/edl/program.js';
import { parseEdlXml, type ProgramEntry } from '../../src/edl/rawprogram-xml.js';
import { BadInputError } from '../../src/errors.js';
import { RAPHAELIN_PATCH, RAPHAELIN_RAWPROGRAM, SMARTISAN_RAWPROGRAM, bytes, makeElf, makeRaphaelinRom, makeSparse, tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function temp(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

const prog = (lun: number, label: string, file: string, start: string, extra = ''): string =>
  `  <program SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="${file}" label="${label}" num_partition_sectors="16" physical_partition_number="${lun}" start_sector="${start}" ${extra}/>\n`;

describe('EDL plan from a ROM folder', () => {
  it('raphaelin ROM: 11 programs with files in XML order, 22 skipped, 13 DISK patches, programmer and memory from its name', async () => {
    const r = makeRaphaelinRom(path.join(temp(), 'rom'));
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    expect(plan.imagesDir).toBe(r.images);
    expect(plan.programs.map((p) => p.label)).toEqual(['switch', 'misc', 'vm-data', 'logfs', 'metadata', 'recovery', 'cache', 'cust', 'userdata', 'PrimaryGPT', 'BackupGPT']);
    expect(plan.skipped.map((e) => e.label)).toContain('frp');
    expect(plan.patches).toHaveLength(13);
    expect(plan.hostPatches).toBe(13);
    expect(plan.memory).toBe('ufs');
    expect(plan.memorySource).toBe('programmer-name');
    expect(plan.programmer!.main).toBe(r.programmer);
    // sparse: sectors = expanded span; commands = RAW + FILL chunks only
    const userdata = plan.programs.find((p) => p.label === 'userdata')!;
    expect(userdata.sectors).toBe(2004);
    expect(userdata.prepared!.commands.map((c) => [c.startSector, c.sectors, c.source.kind])).toEqual([
      ['507904', 1, 'file'],
      ['509905', 3, 'fill'],
    ]);
    expect(plan.programs.find((p) => p.label === 'switch')!.sectors).toBe(2); // 5000 bytes -> 2 sectors
  });

  it('several LUNs: rawprogram0..5 sorted numerically (gaps allowed), patchN, bootable LUN from xbl; unsparse ignored', async () => {
    const dir = path.join(temp(), 'images');
    mkdirSync(dir, { recursive: true });
    for (const n of [0, 1, 2, 4, 5, 10]) {
      writeFileSync(path.join(dir, `rawprogram${n}.xml`), `<data>\n${prog(n, n === 1 ? 'xbl' : `p${n}`, `f${n}.img`, '8')}${prog(n, `empty${n}`, '', '32')}</data>\n`);
      writeFileSync(path.join(dir, `f${n}.img`), bytes(100, n));
    }
    writeFileSync(path.join(dir, 'rawprogram_unsparse.xml'), `<data>\n${prog(0, 'x', 'nope.img', '1')}</data>\n`);
    writeFileSync(path.join(dir, 'patch4.xml'), '<patches><patch SECTOR_SIZE_IN_BYTES="4096" byte_offset="0" filename="DISK" physical_partition_number="4" size_in_bytes="4" start_sector="1" value="CRC32(2,8192)"/></patches>');
    writeFileSync(path.join(dir, 'prog_firehose_ddr.elf'), makeElf());
    const plan = await buildEdlPlan([dir]);
    expect(plan.programs.map((p) => [p.lun, p.label])).toEqual([[0, 'p0'], [1, 'xbl'], [2, 'p2'], [4, 'p4'], [5, 'p5'], [10, 'p10']]);
    expect(plan.rawprogramFiles.map((f) => path.basename(f))).toEqual(['rawprogram0.xml', 'rawprogram1.xml', 'rawprogram2.xml', 'rawprogram4.xml', 'rawprogram5.xml', 'rawprogram10.xml']);
    expect(plan.patches.map((p) => p.lun)).toEqual([4]);
    expect(plan.bootableLun).toBe(1);
    expect(plan.memory).toBe('ufs');
    expect(plan.memorySource).toBe('sector-size');
    expect(plan.warnings.join('\n')).toMatch(/rawprogram_unsparse\.xml ignored/);
  });

  it('an eMMC package with only rawprogram_unsparse.xml uses it; --memory overrides', async () => {
    const dir = temp();
    copyFileSync(SMARTISAN_RAWPROGRAM, path.join(dir, 'rawprogram_unsparse.xml'));
    const plan = await buildEdlPlan([dir], { memory: 'ufs' });
    expect(plan.programs.map((p) => p.label)).toEqual(['sbl1', 'aboot', 'recovery']);
    expect(plan.programs.every((p) => p.missing)).toBe(true);
    expect(plan.memory).toBe('ufs');
    expect(plan.memorySource).toBe('flag');
    expect(plan.bootableLun).toBe(0); // sbl1
    expect(plan.warnings.join('\n')).toMatch(/no Firehose programmer found/);
  });

  it('plan reports missing files; flash preparation refuses them before any I/O', async () => {
    const plan = await buildEdlPlan([RAPHAELIN_RAWPROGRAM, RAPHAELIN_PATCH]);
    expect(plan.programs.every((p) => p.missing && p.prepared === undefined)).toBe(true);
    expect(plan.programs[1]!.sectors).toBe(1024);
    await expect(buildEdlPlan([RAPHAELIN_RAWPROGRAM], { requireFiles: true })).rejects.toThrow(/xiaomi-raphaelin-v12-edl-rawprogram0\.xml:5: <program label="switch" filename="dummy\.img">: image file .*dummy\.img is missing/);
  });

  const failing: [string, (dir: string) => void, RegExp][] = [
    ['no rawprogram', () => undefined, /no rawprogram\*\.xml in/],
    ['image larger than its partition', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'boot', 'boot.img', '8')}</data>`);
      writeFileSync(path.join(d, 'boot.img'), bytes(17 * 4096, 1));
    }, /rawprogram0\.xml:2: .*needs 17 sectors of 4096 bytes .* the partition has 16/],
    ['secdata with a file', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'secdata', 'secdata.img', '8')}</data>`);
      writeFileSync(path.join(d, 'secdata.img'), bytes(10, 1));
    }, /refusing to flash "secdata"/],
    ['erase of persist', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n<erase SECTOR_SIZE_IN_BYTES="4096" num_partition_sectors="4" physical_partition_number="0" start_sector="16" label="persist"/></data>`);
    }, /refusing to erase "persist"/],
    ['mixed sector sizes', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', '', '8')}${prog(1, 'b', '', '8').replace('4096', '512')}</data>`);
    }, /mix sector sizes \(4096, 512\)/],
    ['sparse image with an expression start', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', 's.img', 'NUM_DISK_SECTORS-16', 'sparse="true"')}</data>`);
      writeFileSync(path.join(d, 's.img'), makeSparse(4096, [{ raw: bytes(4096, 1) }]).sparse);
    }, /sparse image needs a numeric start_sector/],
    ['sparse image expanding past the partition', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', 's.img', '8', 'sparse="true"')}</data>`);
      writeFileSync(path.join(d, 's.img'), makeSparse(4096, [{ raw: bytes(4096, 1) }, { skip: 16 }]).sparse);
    }, /expands to 17 sectors but the partition has 16/],
    ['corrupt sparse image', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', 's.img', '8', 'sparse="true"')}</data>`);
      writeFileSync(path.join(d, 's.img'), makeSparse(4096, [{ raw: bytes(4096, 1) }]).sparse.subarray(0, 100));
    }, /sparse image .*s\.img/],
    ['explicit programmer missing', (d) => {
      writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', '', '8')}</data>`);
    }, /programmer .*nope\.elf is missing/],
  ];
  for (const [name, setup, message] of failing) {
    it(`refuses: ${name}`, async () => {
      const d = temp();
      setup(d);
      const err = await buildEdlPlan([d], { requireFiles: true, programmer: name.startsWith('explicit') ? path.join(d, 'nope.elf') : undefined }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadInputError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('--strict turns unknown attributes into errors', async () => {
    const d = temp();
    writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', '', '8', 'GUID="x"')}</data>`);
    expect((await buildEdlPlan([d])).warnings.join()).toMatch(/unknown attribute GUID="x" ignored/);
    await expect(buildEdlPlan([d], { strict: true })).rejects.toThrow(/rawprogram0\.xml:2: <program label="a">: unknown attribute GUID="x" \(--strict\)/);
  });

  it('sparse="true" on a raw file of the right size is flashed raw (with a warning)', async () => {
    const d = temp();
    writeFileSync(path.join(d, 'rawprogram0.xml'), `<data>\n${prog(0, 'a', 'r.img', '8', 'sparse="true"')}</data>`);
    writeFileSync(path.join(d, 'r.img'), bytes(4096 * 2, 1));
    const plan = await buildEdlPlan([d], { requireFiles: true });
    expect(plan.programs[0]!.prepared!.sparse).toBe(false);
    expect(plan.warnings.join('\n')).toMatch(/no sparse header; flashing it as a raw image/);
  });
});

describe('programmer discovery', () => {
  it('prefers prog_*firehose* matching the memory, ddr over lite; warns on a non-ELF magic', async () => {
    const d = temp();
    for (const n of ['xbl.elf', 'tz.mbn', 'prog_firehose_lite.elf', 'prog_firehose_ddr.elf', 'prog_emmc_firehose_8953_ddr.mbn', 'prog_ufs_firehose_sm8150_ddr.elf']) writeFileSync(path.join(d, n), n === 'prog_firehose_ddr.elf' ? Buffer.from('ELE\x01junk') : makeElf());
    expect(path.basename((await discoverProgrammer(d, 'emmc'))!.main)).toBe('prog_emmc_firehose_8953_ddr.mbn');
    expect(path.basename((await discoverProgrammer(d, 'ufs'))!.main)).toBe('prog_ufs_firehose_sm8150_ddr.elf');
    rmSync(path.join(d, 'prog_emmc_firehose_8953_ddr.mbn'));
    rmSync(path.join(d, 'prog_ufs_firehose_sm8150_ddr.elf'));
    const set = (await discoverProgrammer(d))!;
    expect(path.basename(set.main)).toBe('prog_firehose_ddr.elf');
    expect(set.alternatives.map((p) => path.basename(p))).toEqual(['prog_firehose_lite.elf']);
    expect(programmerWarnings(await loadSaharaImages(set))).toEqual(['prog_firehose_ddr.elf: does not start with the ELF magic; the boot ROM may refuse it']);
    expect(await discoverProgrammer(temp())).toBeUndefined();
    expect(memoryFromName('prog_emmc_firehose_8937_ddr.mbn')).toBe('emmc');
    expect(memoryFromName('prog_firehose_ddr.elf')).toBeUndefined();
  });

  it('finds the multi-image list (qsahara_device_programmer.xml) and loads every image by id', async () => {
    const d = temp();
    const ids: [number, string][] = [[36, 'multi_image_qti.mbn'], [37, 'multi_image.mbn'], [13, 'prog_firehose_ddr.elf'], [38, 'xbl_config_devprg.elf']];
    writeFileSync(
      path.join(d, 'qsahara_device_programmer.xml'),
      `<?xml version="1.0" ?>\n<sahara_config>\n  <chipset>molokai</chipset>\n  <images>\n${ids.map(([id, f]) => `    <image image_id="${id}" image_path="${f}"/>`).join('\n')}\n  </images>\n</sahara_config>\n`,
    );
    ids.forEach(([id, f]) => writeFileSync(path.join(d, f), makeElf({ seed: id })));
    const set = (await discoverProgrammer(d))!;
    expect(set.kind).toBe('multi');
    expect(path.basename(set.main)).toBe('prog_firehose_ddr.elf');
    const images = await loadSaharaImages(set);
    expect([...images.keys()]).toEqual([36, 37, 13, 38]);
    expect(images.get(37)!.data.equals(makeElf({ seed: 37 }))).toBe(true);
    rmSync(path.join(d, 'multi_image.mbn'));
    await expect(loadSaharaImages(set)).rejects.toThrow(/Sahara image 37 \(listed in .*qsahara_device_programmer\.xml\) .*multi_image\.mbn is missing/);
  });

  it('rejects bad image lists', () => {
    expect(() => parseSaharaConfig('<sahara_config><images><image image_id="x" image_path="a"/></images></sahara_config>', 'l.xml')).toThrow(/image_id must be a number/);
    expect(() => parseSaharaConfig('<sahara_config><images><image image_id="36" image_path="a"/></images></sahara_config>', 'l.xml')).not.toThrow();
    expect(() => parseSaharaConfig('<sahara_config><images><image image_id="36" image_path="a"/><image image_id="36" image_path="b"/></images></sahara_config>', 'l.xml')).toThrow(/listed twice/);
    expect(() => parseSaharaConfig('<sahara_config><images>', 'l.xml')).toThrow(/malformed XML/);
  });
});

describe('program data streaming', () => {
  it('streams a file range and FILL patterns in bounded pieces', async () => {
    const d = temp();
    const f = path.join(d, 'x.bin');
    const data = bytes(10_000, 3);
    writeFileSync(f, data);
    const pieces: Uint8Array[] = [];
    for await (const p of streamSource({ kind: 'file', path: f, offset: 1000, length: 9000 }, 4096)) pieces.push(p);
    expect(pieces.map((p) => p.length)).toEqual([4096, 4096, 808]);
    expect(Buffer.concat(pieces).equals(data.subarray(1000))).toBe(true);
    const fill: Uint8Array[] = [];
    for await (const p of streamSource({ kind: 'fill', value: 0x11223344, length: 8192 }, 4096)) fill.push(Buffer.from(p));
    const all = Buffer.concat(fill);
    expect(all.length).toBe(8192);
    expect(all.readUInt32LE(0)).toBe(0x11223344);
    expect(all.readUInt32LE(8188)).toBe(0x11223344);
  });

  it('file_sector_offset skips whole sectors of the file', async () => {
    const d = temp();
    writeFileSync(path.join(d, 'r.xml'), `<data>\n${prog(0, 'a', 'a.img', '8', '').replace('file_sector_offset="0"', 'file_sector_offset="2"')}</data>`);
    writeFileSync(path.join(d, 'a.img'), bytes(4096 * 3 + 10, 2));
    const doc = parseEdlXml(`<data>\n${prog(0, 'a', 'a.img', '8').replace('file_sector_offset="0"', 'file_sector_offset="2"')}</data>`, path.join(d, 'r.xml'));
    const p = await prepareProgram(doc.type === 'rawprogram' ? (doc.entries[0] as ProgramEntry) : (undefined as never));
    expect(p.commands[0]!.source).toEqual({ kind: 'file', path: path.join(d, 'a.img'), offset: 8192, length: 4096 + 10 });
    expect(p.sectors).toBe(2);
  });
});
