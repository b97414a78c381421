// The LP parser/serialiser against images built by hand from the documented
// layout (test/lp/fixtures.ts): fields, checksums, slot copies, super_empty,
// the checks liblp makes, and the lpdump text / JSON output.
import { describe, expect, it } from 'vitest';
import {
  LpFormatError,
  MetadataBuilder,
  adjustForSlot,
  applyWrites,
  bufferReader,
  emptyImage,
  flashPartitionTable,
  formatJson,
  formatMetadata,
  isEmptySuperImage,
  parseGeometry,
  parseMetadata,
  readEmptyImage,
  readSuperMetadata,
  serializeGeometry,
  serializeMetadata,
  updatePartitionTable,
} from '../../src/lp/index.js';
import { EXAMPLE_SUPER_SIZE, exampleBlob, exampleEmptyImage, exampleSuperImage, geometryBlock, metadataBlob, sha256 } from './fixtures.js';

const GEOMETRY = { metadataMaxSize: 65536, metadataSlotCount: 2, logicalBlockSize: 4096 };

describe('geometry', () => {
  it('parses the documented fields and serialises to the same 4096 bytes', () => {
    const block = geometryBlock(65536, 2, 4096);
    expect(parseGeometry(block)).toEqual(GEOMETRY);
    expect(serializeGeometry(GEOMETRY).equals(block)).toBe(true);
  });

  it('refuses a wrong magic, a bad checksum, an unknown struct size and a misaligned max size', () => {
    const bad = (mutate: (b: Buffer) => void): (() => unknown) => {
      const b = geometryBlock(65536, 2, 4096);
      mutate(b);
      return () => parseGeometry(b);
    };
    expect(bad((b) => b.writeUInt32LE(0, 0))).toThrow(/invalid geometry magic/);
    expect(bad((b) => (b[45] = 9))).toThrow(/invalid geometry checksum/);
    expect(bad((b) => b.writeUInt32LE(60, 4))).toThrow(/unrecognized fields/);
    expect(bad((b) => b.writeUInt32LE(0, 4))).toThrow(/invalid geometry checksum/); // struct_size below the checksum field (was a RangeError)
    const misaligned = geometryBlock(65537, 2, 4096);
    expect(() => parseGeometry(misaligned)).toThrow(/not a multiple of 512/);
    expect(() => parseGeometry(geometryBlock(65536, 0, 4096))).toThrow(/slot count 0/);
  });
});

describe('metadata', () => {
  it('decodes every table of a hand-built copy', () => {
    const m = parseMetadata(GEOMETRY, exampleBlob());
    expect(m.header).toEqual({ majorVersion: 10, minorVersion: 0, headerSize: 128, flags: 0 });
    expect(m.partitions).toEqual([
      { name: 'system_a', attributes: 1, firstExtentIndex: 0, numExtents: 1, groupIndex: 1 },
      { name: 'system_b', attributes: 1, firstExtentIndex: 1, numExtents: 0, groupIndex: 2 },
    ]);
    expect(m.extents).toEqual([{ numSectors: 6144, targetType: 0, targetData: 2048, targetSource: 0 }]);
    expect(m.groups.map((g) => [g.name, g.maximumSize])).toEqual([['default', 0], ['main_a', 8388608], ['main_b', 8388608]]);
    expect(m.blockDevices).toEqual([{ firstLogicalSector: 2048, alignment: 1048576, alignmentOffset: 0, size: EXAMPLE_SUPER_SIZE, partitionName: 'super', flags: 0 }]);
  });

  it('serialises back to the identical bytes, checksums included', () => {
    const blob = exampleBlob();
    expect(serializeMetadata(parseMetadata(GEOMETRY, blob)).equals(blob)).toBe(true);
    // the header checksum is the SHA-256 of the header with the field zeroed
    const h = Buffer.from(blob.subarray(0, 128));
    h.fill(0, 12, 44);
    expect(sha256(h).equals(blob.subarray(12, 44))).toBe(true);
  });

  it('reads the v10.2 header flags and writes a 256-byte header', () => {
    const blob = metadataBlob(2, [], [{ name: 'default', flags: 0, max: 0 }], [{ first: 2048, alignment: 0, offset: 0, size: 1 << 24, name: 'super', flags: 0 }], 1);
    const m = parseMetadata(GEOMETRY, blob);
    expect(m.header).toEqual({ majorVersion: 10, minorVersion: 2, headerSize: 256, flags: 1 });
    expect(serializeMetadata(m).equals(blob)).toBe(true);
    expect(formatMetadata(m)).toContain('Header flags: virtual_ab_device\n');
  });

  it('reports each damage liblp checks for', () => {
    const damaged = (at: number, value: number, fixHeader = true): Buffer => {
      const b = exampleBlob();
      b.writeUInt32LE(value, at);
      if (fixHeader) {
        b.fill(0, 12, 44);
        sha256(b.subarray(0, 128)).copy(b, 12);
      }
      return b;
    };
    expect(() => parseMetadata(GEOMETRY, damaged(0, 0, false))).toThrow(/invalid metadata header magic/);
    expect(() => parseMetadata(GEOMETRY, damaged(44, 999, false))).toThrow(/invalid metadata header checksum/);
    expect(() => parseMetadata(GEOMETRY, damaged(4, 11))).toThrow(/incompatible metadata version 11\.0/);
    expect(() => parseMetadata(GEOMETRY, damaged(88, 50))).toThrow(/outside the|entry size/);
    const tables = exampleBlob();
    tables[128 + 36] = 0x40; // an attribute bit no version defines
    expect(() => parseMetadata(GEOMETRY, tables)).toThrow(/invalid metadata tables checksum/);
    expect(() => parseMetadata(GEOMETRY, exampleBlob().subarray(0, 300))).toThrow(/truncated/);
    expect(() => parseMetadata({ ...GEOMETRY, metadataMaxSize: 1 << 20 }, exampleBlob())).toThrow(/overlaps logical partition contents/);
  });

  it('refuses attribute bits the version does not define, even with valid checksums', () => {
    const blob = metadataBlob(0, [{ name: 'x', attrs: 4, extents: [], group: 0 }], [{ name: 'default', flags: 0, max: 0 }], [
      { first: 2048, alignment: 0, offset: 0, size: 1 << 24, name: 'super', flags: 0 },
    ]);
    expect(() => parseMetadata(GEOMETRY, blob)).toThrow(LpFormatError);
    expect(() => parseMetadata(GEOMETRY, blob)).toThrow(/invalid attributes 0x4 for version 10\.0/);
    const v1 = metadataBlob(1, [{ name: 'x', attrs: 4, extents: [], group: 0 }], [{ name: 'default', flags: 0, max: 0 }], [
      { first: 2048, alignment: 0, offset: 0, size: 1 << 24, name: 'super', flags: 0 },
    ]);
    expect(parseMetadata(GEOMETRY, v1).partitions[0]!.attributes).toBe(4);
  });
});

describe('super partition and super_empty images', () => {
  it('reads a super image: geometry at 4096, slot copies at 12288 + n x max size', () => {
    const img = exampleSuperImage();
    expect(isEmptySuperImage(bufferReader(img))).toBe(false);
    const m = readSuperMetadata(bufferReader(img), 1);
    expect(m.partitions.map((p) => p.name)).toEqual(['system_a', 'system_b']);
  });

  it('falls back to the backup geometry and the backup metadata copy', () => {
    const img = exampleSuperImage();
    img.fill(0xff, 4096, 4096 + 64); // primary geometry
    img.fill(0xff, 12288, 12288 + 64); // slot 0 primary
    expect(readSuperMetadata(bufferReader(img), 0).partitions[0]!.name).toBe('system_a');
    img.fill(0xff, 12288 + 2 * 65536, 12288 + 2 * 65536 + 64); // slot 0 backup
    expect(() => readSuperMetadata(bufferReader(img), 0)).toThrow(/no valid metadata for slot 0/);
    expect(() => readSuperMetadata(bufferReader(img), 2)).toThrow(/slot 2 does not exist/);
  });

  it('super_empty: geometry at 0 and one copy; emptyImage writes the same bytes', () => {
    const file = exampleEmptyImage();
    expect(isEmptySuperImage(bufferReader(file))).toBe(true);
    const m = readEmptyImage(bufferReader(file));
    expect(emptyImage(m).equals(file)).toBe(true);
    expect(() => readEmptyImage(bufferReader(file.subarray(0, 4000)))).toThrow(/smaller than the 4096-byte geometry/);
  });

  it('flashPartitionTable writes what a hand-built super image holds', () => {
    const m = readEmptyImage(bufferReader(exampleEmptyImage()));
    const img = Buffer.alloc(EXAMPLE_SUPER_SIZE, 0xaa);
    applyWrites(img, flashPartitionTable(m, { deviceSize: EXAMPLE_SUPER_SIZE }));
    const want = exampleSuperImage();
    const metaEnd = 12288 + 4 * 65536;
    // every byte liblp writes matches; the rest of each metadata slot is left as it was
    for (const [from, len] of [[0, 12288], [12288, 464], [12288 + 65536, 464], [12288 + 131072, 464], [12288 + 196608, 464]] as const) {
      expect(img.subarray(from, from + len).equals(want.subarray(from, from + len))).toBe(true);
    }
    expect(img[metaEnd]).toBe(0xaa);
    expect(() => flashPartitionTable(m, { deviceSize: EXAMPLE_SUPER_SIZE * 2 })).toThrow(/size mismatch/);
  });

  it('updatePartitionTable rewrites one slot and refuses a different geometry', () => {
    const img = exampleSuperImage();
    const b = MetadataBuilder.fromMetadata(readSuperMetadata(bufferReader(img), 1));
    b.resizePartition(b.findPartition('system_b')!, 1 << 20);
    const next = b.export();
    applyWrites(img, updatePartitionTable(bufferReader(img), next, 1));
    expect(readSuperMetadata(bufferReader(img), 1).extents).toHaveLength(2);
    expect(readSuperMetadata(bufferReader(img), 0).extents).toHaveLength(1);
    expect(() => updatePartitionTable(bufferReader(img), { ...next, geometry: { ...next.geometry, metadataSlotCount: 3 } }, 0)).toThrow(/incompatible geometry/);
  });

  it('slot-suffixed names get the slot suffix when read from super, not from super_empty', () => {
    const blob = metadataBlob(
      0,
      [{ name: 'system', attrs: 2, extents: [], group: 1 }],
      [
        { name: 'default', flags: 0, max: 0 },
        { name: 'main', flags: 1, max: 0 },
      ],
      [{ first: 2048, alignment: 1048576, offset: 0, size: EXAMPLE_SUPER_SIZE, name: 'super', flags: 0 }],
    );
    const empty = Buffer.concat([geometryBlock(65536, 2, 4096), blob]);
    expect(readEmptyImage(bufferReader(empty)).partitions[0]!.name).toBe('system');
    const img = Buffer.alloc(EXAMPLE_SUPER_SIZE);
    applyWrites(img, flashPartitionTable(readEmptyImage(bufferReader(empty))));
    const b = readSuperMetadata(bufferReader(img), 1);
    expect([b.partitions[0]!.name, b.partitions[0]!.attributes, b.groups[1]!.name]).toEqual(['system_b', 0, 'main_b']);
    expect(adjustForSlot(readEmptyImage(bufferReader(empty)), 0).partitions[0]!.name).toBe('system_a');
  });
});

describe('lpdump output', () => {
  const m = (): ReturnType<typeof parseMetadata> => parseMetadata(GEOMETRY, exampleBlob());

  it('prints the text lpdump prints', () => {
    expect(formatMetadata(m())).toBe(
      [
        'Metadata version: 10.0',
        'Metadata size: 464 bytes',
        'Metadata max size: 65536 bytes',
        'Metadata slot count: 2',
        'Header flags: none',
        'Partition table:',
        '------------------------',
        '  Name: system_a',
        '  Group: main_a',
        '  Attributes: readonly',
        '  Extents:',
        '    0 .. 6143 linear super 2048',
        '------------------------',
        '  Name: system_b',
        '  Group: main_b',
        '  Attributes: readonly',
        '  Extents:',
        '------------------------',
        'Super partition layout:',
        '------------------------',
        'super: 2048 .. 8192: system_a (6144 sectors)',
        '------------------------',
        'Block device table:',
        '------------------------',
        '  Partition name: super',
        '  First sector: 2048',
        '  Size: 16777216 bytes',
        '  Flags: none',
        '------------------------',
        'Group table:',
        '------------------------',
        '  Name: default',
        '  Maximum size: 0 bytes',
        '  Flags: none',
        '------------------------',
        '  Name: main_a',
        '  Maximum size: 8388608 bytes',
        '  Flags: none',
        '------------------------',
        '  Name: main_b',
        '  Maximum size: 8388608 bytes',
        '  Flags: none',
        '------------------------',
        '',
      ].join('\n'),
    );
  });

  it('prints the JSON lpdump --json prints (protobuf whitespace, uint64 as strings, defaults omitted)', () => {
    expect(formatJson(m())).toBe(
      [
        '{',
        ' "partitions": [',
        '  {',
        '   "name": "system_a",',
        '   "group_name": "main_a",',
        '   "is_dynamic": true,',
        '   "size": "3145728"',
        '  },',
        '  {',
        '   "name": "system_b",',
        '   "group_name": "main_b",',
        '   "is_dynamic": true',
        '  }',
        ' ],',
        ' "groups": [',
        '  {',
        '   "name": "default"',
        '  },',
        '  {',
        '   "name": "main_a",',
        '   "maximum_size": "8388608"',
        '  },',
        '  {',
        '   "name": "main_b",',
        '   "maximum_size": "8388608"',
        '  }',
        ' ],',
        ' "block_devices": [',
        '  {',
        '   "name": "super",',
        '   "size": "16777216",',
        '   "block_size": "4096",',
        '   "alignment": "1048576"',
        '  }',
        ' ]',
        '}',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(formatJson(m())).partitions[0].size).toBe('3145728');
  });
});

describe('damaged input', () => {
  it('random byte damage to a super_empty image is either still valid or an LpFormatError, never a crash', async () => {
    const fc = (await import('fast-check')).default;
    const base = exampleEmptyImage();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.boolean(), (edits, truncate) => {
        const img = Buffer.from(base);
        for (const [at, v] of edits) img[at] = v;
        const input = truncate ? img.subarray(0, edits[0]![0]) : img;
        try {
          readEmptyImage(bufferReader(input));
        } catch (err) {
          expect(err).toBeInstanceOf(LpFormatError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('damage that keeps the checksums valid is still caught by the structural checks', () => {
    // a partition pointing past the extent table, with checksums recomputed
    const blob = metadataBlob(0, [{ name: 'p', attrs: 0, extents: [], group: 0 }], [{ name: 'default', flags: 0, max: 0 }], [
      { first: 2048, alignment: 0, offset: 0, size: 1 << 24, name: 'super', flags: 0 },
    ]);
    blob.writeUInt32LE(5, 128 + 44); // num_extents
    sha256(blob.subarray(128)).copy(blob, 48);
    blob.fill(0, 12, 44);
    sha256(blob.subarray(0, 128)).copy(blob, 12);
    expect(() => parseMetadata(GEOMETRY, blob)).toThrow(/partition 0 "p" has an invalid extent list \(0 \+ 5 > 0 extents\)/);
  });
});
