// GPT decoding, checking and building (src/edl/gpt.ts), pure.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildGpt, checkGpt, decodeEntries, decodeGptHeader, decodeGuid, encodeGuid, type BuiltGpt, type GptCopy } from '../../src/edl/gpt.js';

/** A LUN image holding `gpt` at its start and end. */
function lunWith(gpt: BuiltGpt, ss: number, sectors: number): Buffer {
  const lun = Buffer.alloc(ss * sectors);
  gpt.primary.copy(lun, 0);
  gpt.backup.copy(lun, lun.length - gpt.backup.length);
  return lun;
}

/** Read both copies from a LUN image the way the device code does (header, then its array). */
function copies(lun: Buffer, ss: number): { primary: GptCopy; backup: GptCopy; sectors: number } {
  const sectors = lun.length / ss;
  const at = (lba: number): GptCopy => {
    const header = decodeGptHeader(lun.subarray(lba * ss, (lba + 1) * ss));
    if (!header) return { lba };
    return { lba, header, entries: lun.subarray(header.entriesLba * ss, header.entriesLba * ss + header.entryCount * header.entrySize) };
  };
  return { primary: at(1), backup: at(sectors - 1), sectors };
}

const LAYOUT = [
  { name: 'xbl_a', firstLba: 6, sectors: 100 },
  { name: 'persist', firstLba: 106, sectors: 50 },
  { name: 'userdata', firstLba: 200, sectors: 0 },
];

describe('GUIDs', () => {
  it('use the mixed-endian on-disk layout of the UEFI spec', () => {
    // Basic data type GUID EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 is stored as A2 A0 D0 EB E5 B9 33 44 87 C0 68 B6 B7 26 99 C7.
    const b = Buffer.alloc(16);
    encodeGuid('EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', b, 0);
    expect(b.toString('hex')).toBe('a2a0d0ebe5b9334487c068b6b72699c7');
    expect(decodeGuid(b)).toBe('EBD0A0A2-B9E5-4433-87C0-68B6B72699C7');
  });
});

describe('buildGpt + checkGpt', () => {
  it('4096-byte sectors: 32 entries, usable from LBA 6 to N-6 (as Qualcomm ptool), grow partition to the end', () => {
    const n = 4096;
    const gpt = buildGpt({ sectorSize: 4096, diskSectors: n, partitions: LAYOUT });
    expect(gpt.primary.length).toBe(6 * 4096);
    expect(gpt.backup.length).toBe(5 * 4096);
    expect([gpt.firstUsableLba, gpt.lastUsableLba, gpt.entryCount]).toEqual([6, n - 6, 32]);
    const c = copies(lunWith(gpt, 4096, n), 4096);
    const r = checkGpt(c.primary, c.backup, n);
    expect(r.status).toBe('ok');
    expect(r.problems).toEqual([]);
    expect(r.partitions.map((p) => [p.index, p.name, p.firstLba, p.lastLba])).toEqual([
      [0, 'xbl_a', 6, 105],
      [1, 'persist', 106, 155],
      [2, 'userdata', 200, n - 6],
    ]);
    expect(c.primary.header).toMatchObject({ myLba: 1, alternateLba: n - 1, entriesLba: 2, entryCount: 32, entrySize: 128 });
    expect(c.backup.header).toMatchObject({ myLba: n - 1, alternateLba: 1, entriesLba: n - 5 });
    // The protective MBR: one 0xEE partition, 0x55AA signature.
    expect(gpt.primary[446 + 4]).toBe(0xee);
    expect(gpt.primary.readUInt16LE(510)).toBe(0xaa55);
  });

  it('512-byte sectors: 128 entries in 32 sectors (first usable LBA 34), names round-trip as UTF-16', () => {
    const gpt = buildGpt({ sectorSize: 512, diskSectors: 100_000, partitions: [{ name: 'système_α', firstLba: 34, sectors: 10 }] });
    expect([gpt.firstUsableLba, gpt.entryCount]).toEqual([34, 128]);
    const c = copies(lunWith(gpt, 512, 100_000), 512);
    const r = checkGpt(c.primary, c.backup, 100_000);
    expect(r.status).toBe('ok');
    expect(r.partitions[0]!.name).toBe('système_α');
  });

  it('more partitions than 32 grow the array in whole sectors', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `p${i}`, firstLba: 6 + i, sectors: 1 }));
    const gpt = buildGpt({ sectorSize: 4096, diskSectors: 10_000, partitions: many });
    expect(gpt.entryCount).toBe(64);
    const c = copies(lunWith(gpt, 4096, 10_000), 4096);
    expect(checkGpt(c.primary, c.backup, 10_000).partitions).toHaveLength(40);
  });

  it('refuses partitions outside the usable range', () => {
    expect(() => buildGpt({ sectorSize: 4096, diskSectors: 1000, partitions: [{ name: 'x', firstLba: 3, sectors: 1 }] })).toThrow(/outside the usable range 6\.\.994/);
  });
});

describe('checkGpt finds what is wrong', () => {
  const n = 2048;
  const fresh = (): Buffer => lunWith(buildGpt({ sectorSize: 4096, diskSectors: n, partitions: LAYOUT }), 4096, n);

  it('a damaged primary array: degraded, partitions from the backup', () => {
    const lun = fresh();
    lun[2 * 4096 + 60] ^= 0xff; // a byte of the first entry's name
    const c = copies(lun, 4096);
    const r = checkGpt(c.primary, c.backup, n);
    expect(r.status).toBe('degraded');
    expect(r.source).toBe('backup');
    expect(r.problems.join('\n')).toMatch(/primary partition array CRC 0x[0-9a-f]{8} does not match the array at LBA 2/);
    expect(r.partitions.map((p) => p.name)).toEqual(['xbl_a', 'persist', 'userdata']);
  });

  it('a damaged primary header: its CRC is reported', () => {
    const lun = fresh();
    lun.writeBigUInt64LE(7n, 4096 + 40); // first usable LBA changed, CRC not updated
    const c = copies(lun, 4096);
    const r = checkGpt(c.primary, c.backup, n);
    expect(r.status).toBe('degraded');
    expect(r.primary.headerCrcOk).toBe(false);
    expect(r.problems.join('\n')).toMatch(/primary header CRC 0x[0-9a-f]{8} does not match its content/);
  });

  it('both copies damaged: corrupt, no partitions; no signature at all: none', () => {
    const lun = fresh();
    lun[2 * 4096] ^= 1;
    lun[(n - 5) * 4096] ^= 1;
    let c = copies(lun, 4096);
    expect(checkGpt(c.primary, c.backup, n)).toMatchObject({ status: 'corrupt', partitions: [] });
    c = copies(Buffer.alloc(4096 * 64), 4096);
    expect(checkGpt(c.primary, c.backup, 64).status).toBe('none');
  });

  it('a table written for another disk size: the backup is not at the last sector', () => {
    const small = buildGpt({ sectorSize: 4096, diskSectors: 1000, partitions: LAYOUT.slice(0, 2) });
    const lun = Buffer.alloc(4096 * n);
    small.primary.copy(lun, 0);
    small.backup.copy(lun, 1000 * 4096 - small.backup.length);
    const c = copies(lun, 4096);
    const r = checkGpt(c.primary, c.backup, n);
    expect(r.status).toBe('degraded');
    expect(r.problems).toContain(`primary header points to the other copy at LBA 999, expected ${n - 1}`);
    expect(r.problems).toContain(`backup header: no "EFI PART" signature at LBA ${n - 1}`);
  });

  it('copies that are each valid but differ, and overlapping partitions, are reported', () => {
    const a = buildGpt({ sectorSize: 4096, diskSectors: n, partitions: LAYOUT });
    const b = buildGpt({ sectorSize: 4096, diskSectors: n, partitions: [...LAYOUT.slice(0, 2), { name: 'userdata', firstLba: 300, sectors: 0 }] });
    const lun = lunWith(a, 4096, n);
    b.backup.copy(lun, lun.length - b.backup.length);
    let c = copies(lun, 4096);
    let r = checkGpt(c.primary, c.backup, n);
    expect(r.status).toBe('degraded');
    expect(r.problems).toContain('primary and backup partition arrays differ');

    // Overlap: rewrite persist to start inside xbl_a, with valid CRCs (the checker must look at the layout, not only CRCs).
    const entries = Buffer.from(c.primary.entries!);
    entries.writeBigUInt64LE(50n, 128 + 32);
    const hdr = Buffer.from(lun.subarray(4096, 4096 + 92));
    hdr.writeUInt32LE(crc32(entries), 88);
    hdr.writeUInt32LE(0, 16);
    hdr.writeUInt32LE(crc32(hdr), 16);
    c = { ...c, primary: { lba: 1, header: decodeGptHeader(Buffer.concat([hdr, Buffer.alloc(4096 - 92)])), entries }, backup: { lba: n - 1 } };
    r = checkGpt(c.primary, c.backup, n);
    expect(r.problems).toContain('partitions "xbl_a" and "persist" overlap');
    expect(decodeEntries(entries, 32, 128)[1]!.firstLba).toBe(50);
  });
});
