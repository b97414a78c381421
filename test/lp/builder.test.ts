// Extent allocation as liblp's MetadataBuilder does it, with expected sectors
// worked out by hand from its rules, plus property tests over random edits.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LpBuildError,
  MetadataBuilder,
  alignToWithOffset,
  applyWrites,
  bufferReader,
  emptyImage,
  flashPartitionTable,
  parseMetadata,
  readEmptyImage,
  readSuperMetadata,
  serializeMetadata,
  type BuilderPartition,
} from '../../src/lp/index.js';

const MiB = 1024 * 1024;
const SUPER = 16 * MiB;

function superBuilder(opts: { abDevice?: boolean; virtualAb?: boolean; size?: number; alignment?: number } = {}): MetadataBuilder {
  return MetadataBuilder.create(
    [{ partitionName: 'super', size: opts.size ?? SUPER, alignment: opts.alignment ?? MiB, alignmentOffset: 0, logicalBlockSize: 4096 }],
    'super',
    65536,
    2,
    { abDevice: opts.abDevice, virtualAb: opts.virtualAb },
  );
}

const linear = (p: BuilderPartition): [number, number][] =>
  p.extents.map((e) => (e.kind === 'linear' ? [e.physicalSector, e.numSectors] : [-1, e.numSectors]));

describe('MetadataBuilder layout', () => {
  it('puts the first logical sector after 4096 + 2 x (4096 + slots x max size), aligned to 1 MiB', () => {
    const m = superBuilder().export();
    // 4096 + 2 * (4096 + 2 * 65536) = 274432 -> 1 MiB -> sector 2048
    expect(m.blockDevices[0]!.firstLogicalSector).toBe(2048);
    expect(m.groups).toEqual([{ name: 'default', flags: 0, maximumSize: 0 }]);
    expect(m.header).toEqual({ majorVersion: 10, minorVersion: 0, headerSize: 128, flags: 0 });
    // without alignment only the logical block size rounds it: 274432 = 67 x 4096 -> sector 536
    expect(superBuilder({ alignment: 0 }).export().blockDevices[0]!.firstLogicalSector).toBe(536);
  });

  it('rounds sizes up to the block size and starts new extents on aligned sectors', () => {
    const b = superBuilder();
    const system = b.addPartition('system_a');
    b.resizePartition(system, 3 * MiB + 1); // -> 3149824 bytes = 6152 sectors
    expect(linear(system)).toEqual([[2048, 6152]]);
    const vendor = b.addPartition('vendor_a');
    b.resizePartition(vendor, MiB); // free space starts at the next 1 MiB boundary: sector 10240
    expect(linear(vendor)).toEqual([[10240, 2048]]);
  });

  it('grows the last extent in place up to the next aligned sector, then takes a new region', () => {
    const b = superBuilder();
    const system = b.addPartition('system_a');
    b.resizePartition(system, 3 * MiB + 1);
    b.resizePartition(b.addPartition('vendor_a'), MiB);
    b.resizePartition(system, 4 * MiB); // 8200 -> 10240 is free and unaligned: extended, merged
    expect(linear(system)).toEqual([[2048, 8192]]);
    b.resizePartition(system, 5 * MiB); // next free region starts after vendor_a at 12288
    expect(linear(system)).toEqual([[2048, 8192], [12288, 2048]]);
    b.resizePartition(system, 4 * MiB + 4096); // shrinks from the end
    expect(linear(system)).toEqual([[2048, 8192], [12288, 8]]);
    b.resizePartition(system, 0);
    expect(system.extents).toEqual([]);
  });

  it('places _b partitions in the second half of super on A/B devices, not on virtual A/B', () => {
    // first 2048, last 32768: midpoint 17408 -> aligned to 1 MiB -> 18432
    const ab = superBuilder({ abDevice: true });
    const b = ab.addPartition('system_b');
    ab.resizePartition(b, MiB);
    expect(linear(b)).toEqual([[18432, 2048]]);
    const a = ab.addPartition('system_a');
    ab.resizePartition(a, MiB);
    expect(linear(a)).toEqual([[2048, 2048]]);
    const vab = superBuilder({ abDevice: true, virtualAb: true });
    const vb = vab.addPartition('system_b');
    vab.resizePartition(vb, MiB);
    expect(linear(vb)).toEqual([[2048, 2048]]);
  });

  it('enforces group maximum sizes and free space', () => {
    const b = superBuilder();
    b.addGroup('main', 2 * MiB);
    const p = b.addPartition('product', 'main');
    b.resizePartition(p, 2 * MiB);
    expect(() => b.resizePartition(b.addPartition('odm', 'main'), 4096)).toThrow(/group main which does not have enough space free \(4096 requested, 2097152 used out of 2097152\)/);
    expect(() => b.resizePartition(b.addPartition('huge'), SUPER)).toThrow(/not enough free space to expand partition: huge/);
    expect(() => b.addPartition('product')).toThrow(/duplicate partition/);
    expect(() => b.addPartition('x', 'nope')).toThrow(/could not find partition group: nope/);
    expect(() => b.addGroup('main', 0)).toThrow(LpBuildError);
  });

  it('refuses impossible devices', () => {
    expect(() => superBuilder({ size: 256 * 1024 })).toThrow(/too small/);
    expect(() =>
      MetadataBuilder.create([{ partitionName: 'super', size: SUPER + 512, alignment: MiB, alignmentOffset: 0, logicalBlockSize: 4096 }], 'super', 65536, 2),
    ).toThrow(/multiple of its block size/);
    expect(() => MetadataBuilder.create([{ partitionName: 'other', size: SUPER, alignment: MiB, alignmentOffset: 0, logicalBlockSize: 4096 }], 'super', 65536, 2)).toThrow(
      /no super partition/,
    );
  });

  it('auto slot suffixing and the virtual A/B flag are recorded as lpmake records them', () => {
    const b = superBuilder();
    b.addGroup('main', 0);
    b.resizePartition(b.addPartition('system', 'main', 1), MiB);
    b.setAutoSlotSuffixing();
    b.setVirtualAbFlag();
    const m = b.export();
    expect(m.header).toMatchObject({ minorVersion: 2, headerSize: 256, flags: 1 });
    expect(m.partitions[0]!.attributes).toBe(1 | 2);
    expect(m.groups.map((g) => g.flags)).toEqual([0, 1]);
    expect(m.blockDevices[0]!.flags).toBe(1);
    const updated = superBuilder();
    updated.addPartition('x', 'default', 4);
    expect(updated.export().header.minorVersion).toBe(1);
  });

  it('importPartitions keeps the other slot (fastbootd update-super without wipe)', () => {
    const old = superBuilder({ abDevice: true });
    old.resizePartition(old.addPartition('system_a'), MiB);
    old.resizePartition(old.addPartition('system_b'), 2 * MiB);
    const oldMeta = old.export();
    const fresh = superBuilder({ abDevice: true });
    fresh.addPartition('system_a');
    fresh.addPartition('system_b');
    fresh.importPartitions(oldMeta, new Set(['system_b']));
    const out = fresh.export();
    expect(out.partitions.map((p) => [p.name, p.numExtents])).toEqual([['system_a', 0], ['system_b', 1]]);
    expect(out.extents[0]).toMatchObject({ targetData: 18432, numSectors: 4096 });
    const sized = superBuilder({ abDevice: true });
    sized.resizePartition(sized.addPartition('system_b'), 4096);
    expect(() => sized.importPartitions(oldMeta, new Set(['system_b']))).toThrow(/would overwrite non-empty partition/);
    const other = superBuilder({ size: 32 * MiB });
    expect(() => other.importPartitions(oldMeta, new Set(['system_b']))).toThrow(/block device tables do not match/);
  });

  it('alignToWithOffset matches liblp for stacked devices', () => {
    expect(alignToWithOffset(4096, MiB, 0)).toBe(MiB);
    expect(alignToWithOffset(4096, MiB, 8192)).toBe(8192);
    expect(alignToWithOffset(16384, MiB, 8192)).toBe(MiB + 8192);
    expect(alignToWithOffset(4096, 0, 512)).toBe(4608);
  });
});

describe('MetadataBuilder properties', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('resize' as const), name: fc.constantFrom('system_a', 'system_b', 'vendor_a', 'product_b', 'odm'), size: fc.integer({ min: 0, max: 6 * MiB }) }),
    fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom('system_a', 'system_b', 'vendor_a', 'product_b', 'odm') }),
  );

  it('random create/resize/delete sequences keep extents disjoint, in bounds, sized exactly, and round-trip', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), fc.boolean(), (ops, abDevice) => {
        const b = superBuilder({ abDevice });
        const want = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'delete') {
            b.removePartition(o.name);
            want.delete(o.name);
            continue;
          }
          const p = b.findPartition(o.name) ?? b.addPartition(o.name);
          try {
            b.resizePartition(p, o.size);
            want.set(o.name, Math.ceil(o.size / 4096) * 4096);
          } catch (err) {
            expect(err).toBeInstanceOf(LpBuildError); // out of space: the partition keeps its old size
            if (!want.has(o.name)) want.set(o.name, 0);
          }
        }
        const m = b.export();
        const used: [number, number][] = [];
        for (const p of m.partitions) {
          let bytes = 0;
          for (let i = 0; i < p.numExtents; i++) {
            const e = m.extents[p.firstExtentIndex + i]!;
            bytes += e.numSectors * 512;
            expect(e.numSectors % 8).toBe(0);
            expect(e.targetData).toBeGreaterThanOrEqual(2048);
            expect(e.targetData + e.numSectors).toBeLessThanOrEqual(SUPER / 512);
            used.push([e.targetData, e.targetData + e.numSectors]);
          }
          expect(bytes).toBe(want.get(p.name));
        }
        used.sort((x, y) => x[0] - y[0]);
        for (let i = 1; i < used.length; i++) expect(used[i]![0]).toBeGreaterThanOrEqual(used[i - 1]![1]);
        // serialise, parse, and a super image written and read back give the same metadata
        const blob = serializeMetadata(m);
        expect(parseMetadata(m.geometry, blob)).toEqual(m);
        expect(readEmptyImage(bufferReader(emptyImage(m)))).toEqual(m);
        const img = Buffer.alloc(2 * MiB);
        applyWrites(img, flashPartitionTable(m).filter((w) => w.offset < img.length));
        expect(readSuperMetadata(bufferReader(img), 1)).toEqual(m);
      }),
      { numRuns: 150 },
    );
  });
});
