// LP images built by hand from the documented byte layout (liblp metadata_format.h),
// independently of src/lp: the oracle for the parser and the serialiser.
import { createHash } from 'node:crypto';

export const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

export function name36(s: string): Buffer {
  const b = Buffer.alloc(36);
  b.write(s, 'latin1');
  return b;
}

export function geometryBlock(maxSize: number, slots: number, blockSize: number): Buffer {
  const g = Buffer.alloc(4096);
  g.writeUInt32LE(0x616c4467, 0); // "gDla"
  g.writeUInt32LE(52, 4);
  g.writeUInt32LE(maxSize, 40);
  g.writeUInt32LE(slots, 44);
  g.writeUInt32LE(blockSize, 48);
  sha256(g.subarray(0, 52)).copy(g, 8);
  return g;
}

export interface RawPartition {
  name: string;
  attrs: number;
  extents: { sectors: number; type: 0 | 1; data: number; source: number }[];
  group: number;
}
export interface RawGroup {
  name: string;
  flags: number;
  max: number;
}
export interface RawDevice {
  first: number;
  alignment: number;
  offset: number;
  size: number;
  name: string;
  flags: number;
}

/** One metadata copy: header (128 bytes for minor < 2, else 256) + tables in liblp order. */
export function metadataBlob(minor: number, parts: RawPartition[], groups: RawGroup[], devices: RawDevice[], flags = 0): Buffer {
  const p = Buffer.alloc(parts.length * 52);
  const extents: Buffer[] = [];
  let extentIndex = 0;
  parts.forEach((part, i) => {
    name36(part.name).copy(p, i * 52);
    p.writeUInt32LE(part.attrs, i * 52 + 36);
    p.writeUInt32LE(extentIndex, i * 52 + 40);
    p.writeUInt32LE(part.extents.length, i * 52 + 44);
    p.writeUInt32LE(part.group, i * 52 + 48);
    for (const e of part.extents) {
      const x = Buffer.alloc(24);
      x.writeBigUInt64LE(BigInt(e.sectors), 0);
      x.writeUInt32LE(e.type, 8);
      x.writeBigUInt64LE(BigInt(e.data), 12);
      x.writeUInt32LE(e.source, 20);
      extents.push(x);
      extentIndex++;
    }
  });
  const x = Buffer.concat(extents);
  const g = Buffer.alloc(groups.length * 48);
  groups.forEach((grp, i) => {
    name36(grp.name).copy(g, i * 48);
    g.writeUInt32LE(grp.flags, i * 48 + 36);
    g.writeBigUInt64LE(BigInt(grp.max), i * 48 + 40);
  });
  const d = Buffer.alloc(devices.length * 64);
  devices.forEach((dev, i) => {
    d.writeBigUInt64LE(BigInt(dev.first), i * 64);
    d.writeUInt32LE(dev.alignment, i * 64 + 8);
    d.writeUInt32LE(dev.offset, i * 64 + 12);
    d.writeBigUInt64LE(BigInt(dev.size), i * 64 + 16);
    name36(dev.name).copy(d, i * 64 + 24);
    d.writeUInt32LE(dev.flags, i * 64 + 60);
  });
  const tables = Buffer.concat([p, x, g, d]);
  const headerSize = minor >= 2 ? 256 : 128;
  const h = Buffer.alloc(headerSize);
  h.writeUInt32LE(0x414c5030, 0); // "0PLA"
  h.writeUInt16LE(10, 4);
  h.writeUInt16LE(minor, 6);
  h.writeUInt32LE(headerSize, 8);
  h.writeUInt32LE(tables.length, 44);
  sha256(tables).copy(h, 48);
  const desc = [
    [0, parts.length, 52],
    [p.length, extentIndex, 24],
    [p.length + x.length, groups.length, 48],
    [p.length + x.length + g.length, devices.length, 64],
  ];
  desc.forEach(([o, n, s], i) => {
    h.writeUInt32LE(o!, 80 + i * 12);
    h.writeUInt32LE(n!, 84 + i * 12);
    h.writeUInt32LE(s!, 88 + i * 12);
  });
  if (headerSize === 256) h.writeUInt32LE(flags, 128);
  sha256(h).copy(h, 12); // checksum field is still zero here
  return Buffer.concat([h, tables]);
}

/**
 * A small A/B layout as `lpmake --device-size 16777216 --metadata-size 65536
 * --metadata-slots 2 --group main_a:8388608 --group main_b:8388608
 * --partition system_a:readonly:3145728:main_a --partition system_b:readonly:0:main_b`
 * would describe it: super at sector 2048 (1 MiB aligned after 4096 + 2 x (4096 + 2 x 65536)).
 */
export function exampleBlob(): Buffer {
  return metadataBlob(
    0,
    [
      { name: 'system_a', attrs: 1, extents: [{ sectors: 6144, type: 0, data: 2048, source: 0 }], group: 1 },
      { name: 'system_b', attrs: 1, extents: [], group: 2 },
    ],
    [
      { name: 'default', flags: 0, max: 0 },
      { name: 'main_a', flags: 0, max: 8388608 },
      { name: 'main_b', flags: 0, max: 8388608 },
    ],
    [{ first: 2048, alignment: 1048576, offset: 0, size: 16777216, name: 'super', flags: 0 }],
  );
}

export const EXAMPLE_SUPER_SIZE = 16 * 1024 * 1024;

/** super_empty.img for exampleBlob(): geometry at 0, metadata right after. */
export function exampleEmptyImage(): Buffer {
  return Buffer.concat([geometryBlock(65536, 2, 4096), exampleBlob()]);
}

/** A whole super partition image for exampleBlob(): zeros, 2 geometries, 2 slots x (primary, backup). */
export function exampleSuperImage(): Buffer {
  const img = Buffer.alloc(EXAMPLE_SUPER_SIZE);
  const geo = geometryBlock(65536, 2, 4096);
  geo.copy(img, 4096);
  geo.copy(img, 8192);
  const blob = exampleBlob();
  for (const at of [12288, 12288 + 65536, 12288 + 2 * 65536, 12288 + 3 * 65536]) blob.copy(img, at);
  return img;
}

/**
 * super_empty.img for an A/B device (`lpmake --metadata-size 65536 --metadata-slots 2
 * --group main_a:32M --group main_b:32M --partition NAME:readonly:SIZE:GROUP ...`),
 * for a super of `deviceSize` bytes (default 64 MiB). A partition with `sectors` gets
 * one extent at the first logical sector (2048).
 */
export function superEmptyAB(parts: { name: string; group: number; sectors?: number }[], deviceSize = 64 * 1024 * 1024): Buffer {
  return Buffer.concat([
    geometryBlock(65536, 2, 4096),
    metadataBlob(
      0,
      parts.map((p) => ({ name: p.name, attrs: 1, group: p.group, extents: p.sectors ? [{ sectors: p.sectors, type: 0 as const, data: 2048, source: 0 }] : [] })),
      [
        { name: 'default', flags: 0, max: 0 },
        { name: 'main_a', flags: 0, max: 32 * 1024 * 1024 },
        { name: 'main_b', flags: 0, max: 32 * 1024 * 1024 },
      ],
      [{ first: 2048, alignment: 1024 * 1024, offset: 0, size: deviceSize, name: 'super', flags: 0 }],
    ),
  ]);
}
