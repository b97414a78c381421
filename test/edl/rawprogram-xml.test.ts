import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEdlXml, type ProgramEntry } from '../../src/edl/rawprogram-xml.js';
import { BadInputError } from '../../src/errors.js';
import { RAPHAELIN_PATCH, RAPHAELIN_RAWPROGRAM, SMARTISAN_RAWPROGRAM } from './helpers.js';

const read = (p: string): string => readFileSync(p, 'utf8');

function programXml(attrs: string, extra = ''): string {
  return `<?xml version="1.0" ?>\n<data>\n  <!-- a comment with <program> inside -->\n  <program ${attrs}/>\n${extra}</data>\n`;
}
const OK = 'SECTOR_SIZE_IN_BYTES="4096" file_sector_offset="0" filename="a.img" label="a" num_partition_sectors="8" physical_partition_number="1" start_sector="8" sparse="false"';

describe('rawprogram*.xml reader', () => {
  it('reads every program of the raphaelin rawprogram0.xml with its attributes and line', () => {
    const doc = parseEdlXml(read(RAPHAELIN_RAWPROGRAM), 'rawprogram0.xml');
    expect(doc.type).toBe('rawprogram');
    if (doc.type !== 'rawprogram') return;
    const programs = doc.entries as ProgramEntry[];
    expect(programs).toHaveLength(33);
    expect(programs.filter((p) => p.filename !== '')).toHaveLength(11);
    expect(programs.filter((p) => p.filename === '').map((p) => p.label)).toContain('persist');
    const first = programs[0]!;
    expect(first).toMatchObject({ label: 'switch', filename: 'dummy.img', lun: 0, startSector: '6', sectorSize: 4096, numPartitionSectors: 2, sparse: false, line: 5, sizeInKB: 8, startByteHex: '0x6000' });
    const userdata = programs.find((p) => p.label === 'userdata')!;
    expect(userdata).toMatchObject({ sparse: true, numPartitionSectors: 0, startSector: '507904' });
    const backup = programs.at(-1)!;
    expect(backup).toMatchObject({ label: 'BackupGPT', startSector: 'NUM_DISK_SECTORS-5.', partOfSingleImage: true, line: 37 });
    expect(doc.warnings).toEqual([]);
  });

  it('reads the raphaelin patch0.xml: 26 patches, DISK and host-file ones, in order', () => {
    const doc = parseEdlXml(read(RAPHAELIN_PATCH), 'patch0.xml');
    expect(doc.type).toBe('patch');
    if (doc.type !== 'patch') return;
    expect(doc.patches).toHaveLength(26);
    expect(doc.patches.filter((p) => p.filename === 'DISK')).toHaveLength(13);
    expect(doc.patches[3]).toMatchObject({ filename: 'DISK', startSector: 'NUM_DISK_SECTORS-5.', byteOffset: 3880, sizeInBytes: 8, value: 'NUM_DISK_SECTORS-6.', line: 9 });
    expect(doc.patches[17]!.valueParsed.kind).toBe('crc32');
  });

  it('reads the smartisan eMMC file (no partofsingleimage/readbackverify attributes)', () => {
    const doc = parseEdlXml(read(SMARTISAN_RAWPROGRAM), 'rawprogram_unsparse.xml');
    if (doc.type !== 'rawprogram') throw new Error('type');
    expect(doc.entries.map((e) => [e.kind === 'program' && e.filename, e.startSector, e.sectorSize])).toEqual([
      ['sbl1.mbn', '52', 512],
      ['emmc_appsboot.mbn', '393216', 512],
      ['recovery.img', '528384', 512],
    ]);
  });

  it('unknown attributes are kept and warned about; erase entries are read', () => {
    const doc = parseEdlXml(programXml(`${OK} vendor_extra="x"`, '  <erase SECTOR_SIZE_IN_BYTES="4096" num_partition_sectors="4" physical_partition_number="0" start_sector="16"/>\n'), 'r.xml');
    if (doc.type !== 'rawprogram') throw new Error('type');
    expect(doc.warnings).toEqual(['r.xml:4: <program label="a">: unknown attribute vendor_extra="x" ignored']);
    expect(doc.entries[0]!.attributes.vendor_extra).toBe('x');
    expect(doc.entries[1]).toMatchObject({ kind: 'erase', lun: 0, startSector: '16', numPartitionSectors: 4, line: 5 });
  });

  const bad: [string, string, RegExp][] = [
    ['malformed', '<data><program a="1"></data>', /r\.xml:1: malformed XML/],
    ['bad sector size', programXml(OK.replace('"4096"', '"1000"')), /r\.xml:4: <program label="a">: attribute SECTOR_SIZE_IN_BYTES="1000": expected a power of two/],
    ['non-numeric LUN', programXml(OK.replace('physical_partition_number="1"', 'physical_partition_number="one"')), /attribute physical_partition_number="one": expected an unsigned integer/],
    ['bad sparse flag', programXml(OK.replace('sparse="false"', 'sparse="maybe"')), /attribute sparse="maybe": expected "true" or "false"/],
    ['missing attribute', programXml(OK.replace(' label="a"', '')), /required attribute label is missing/],
    ['expression outside the grammar', programXml(OK.replace('start_sector="8"', 'start_sector="NUM_DISK_SECTORS**2"')), /attribute start_sector="NUM_DISK_SECTORS\*\*2": bad expression/],
    ['bad start_byte_hex', programXml(`${OK} start_byte_hex="0xZZ"`), /attribute start_byte_hex="0xZZ"/],
    ['unknown element', programXml(OK, '  <provision x="1"/>\n'), /r\.xml:5: unexpected element <provision>/],
    ['provisioning', '<data><ufs bNumberLU="6"/></data>', /UFS provisioning file/],
    ['wrong root', '<foo/>', /root element <foo>/],
    ['patch with bad size', '<patches><patch SECTOR_SIZE_IN_BYTES="4096" byte_offset="1" filename="DISK" physical_partition_number="0" size_in_bytes="9" start_sector="1" value="0"/></patches>', /size_in_bytes="9": expected 1 to 8 bytes/],
    ['patch with bad value', '<patches><patch SECTOR_SIZE_IN_BYTES="4096" byte_offset="1" filename="DISK" physical_partition_number="0" size_in_bytes="4" start_sector="1" value="CRC64(1,2)"/></patches>', /value="CRC64\(1,2\)": bad expression/],
    ['erase without size', '<data><erase SECTOR_SIZE_IN_BYTES="4096" num_partition_sectors="0" physical_partition_number="0" start_sector="1"/></data>', /non-zero number of sectors/],
  ];
  for (const [name, xml, message] of bad) {
    it(`refuses ${name} with a BadInputError naming file and line`, () => {
      expect(() => parseEdlXml(xml, 'r.xml')).toThrow(BadInputError);
      expect(() => parseEdlXml(xml, 'r.xml')).toThrow(message);
    });
  }
});
