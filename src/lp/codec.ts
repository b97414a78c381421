// Parse and serialise LP geometry and metadata, with liblp's checks (reader.cpp)
// and byte layout (writer.cpp): tables in the order partitions, extents, groups,
// block devices; SHA-256 of the header over header_size bytes with its checksum
// field zeroed; SHA-256 of all tables; SHA-256 of the geometry struct (52 bytes)
// with its checksum zeroed, padded to 4096 bytes.
import { createHash } from 'node:crypto';
import {
  BLOCK_DEVICE_ENTRY_SIZE,
  EXTENT_ENTRY_SIZE,
  GEOMETRY_STRUCT_SIZE,
  GROUP_ENTRY_SIZE,
  HEADER_V1_0_SIZE,
  HEADER_V1_2_SIZE,
  LP_METADATA_GEOMETRY_MAGIC,
  LP_METADATA_GEOMETRY_SIZE,
  LP_METADATA_HEADER_MAGIC,
  LP_METADATA_MAJOR_VERSION,
  LP_METADATA_MINOR_VERSION_MAX,
  LP_METADATA_VERSION_FOR_EXPANDED_HEADER,
  LP_METADATA_VERSION_FOR_UPDATED_ATTR,
  LP_PARTITION_ATTRIBUTE_MASK_V0,
  LP_PARTITION_ATTRIBUTE_MASK_V1,
  LP_SECTOR_SIZE,
  LP_TARGET_TYPE_LINEAR,
  LpFormatError,
  NAME_SIZE,
  PARTITION_ENTRY_SIZE,
  totalMetadataSize,
  type LpBlockDevice,
  type LpExtent,
  type LpGeometry,
  type LpGroup,
  type LpHeader,
  type LpMetadata,
  type LpPartition,
} from './format.js';

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

function u64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new LpFormatError(`${what} is ${v}, larger than this tool can address`);
  return Number(v);
}

function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeBigUInt64LE(BigInt(v), at);
}

/** A 36-byte name: up to the first NUL when the field ends with NUL, else all 36 bytes (liblp's rule). */
function readName(buf: Buffer, at: number): string {
  const field = buf.subarray(at, at + NAME_SIZE);
  if (field[NAME_SIZE - 1] !== 0) return field.toString('latin1');
  const nul = field.indexOf(0);
  return field.subarray(0, nul).toString('latin1');
}

function putName(buf: Buffer, at: number, name: string, what: string): void {
  const bytes = Buffer.from(name, 'latin1');
  if (bytes.length > NAME_SIZE) throw new LpFormatError(`${what} name "${name}" is longer than ${NAME_SIZE} bytes`);
  bytes.copy(buf, at);
}

// ---- geometry ------------------------------------------------------------------

/** Decode and check a geometry block (the first 52 bytes of `buf` matter). */
export function parseGeometry(buf: Buffer, where = 'geometry'): LpGeometry {
  if (buf.length < GEOMETRY_STRUCT_SIZE) throw new LpFormatError(`${where}: ${buf.length} bytes, need at least ${GEOMETRY_STRUCT_SIZE}`);
  const magic = buf.readUInt32LE(0);
  if (magic !== LP_METADATA_GEOMETRY_MAGIC) {
    throw new LpFormatError(`${where}: invalid geometry magic 0x${hex(magic)} (expected 0x${hex(LP_METADATA_GEOMETRY_MAGIC)})`);
  }
  const structSize = buf.readUInt32LE(4);
  if (structSize > GEOMETRY_STRUCT_SIZE) throw new LpFormatError(`${where}: geometry has unrecognized fields (struct_size ${structSize} > ${GEOMETRY_STRUCT_SIZE})`);
  // liblp hashes struct_size bytes of the struct with its checksum zeroed (even a struct_size below 40)
  const copy = Buffer.from(buf.subarray(0, GEOMETRY_STRUCT_SIZE));
  copy.fill(0, 8, 40);
  if (!sha256(copy.subarray(0, structSize)).equals(buf.subarray(8, 40))) throw new LpFormatError(`${where}: invalid geometry checksum`);
  if (structSize !== GEOMETRY_STRUCT_SIZE) throw new LpFormatError(`${where}: invalid geometry struct size ${structSize} (expected ${GEOMETRY_STRUCT_SIZE})`);
  const g: LpGeometry = {
    metadataMaxSize: buf.readUInt32LE(40),
    metadataSlotCount: buf.readUInt32LE(44),
    logicalBlockSize: buf.readUInt32LE(48),
  };
  if (g.metadataSlotCount === 0) throw new LpFormatError(`${where}: invalid metadata slot count 0`);
  if (g.metadataMaxSize % LP_SECTOR_SIZE !== 0) throw new LpFormatError(`${where}: metadata max size ${g.metadataMaxSize} is not a multiple of ${LP_SECTOR_SIZE}`);
  return g;
}

/** The 4096-byte geometry block, checksum filled in. */
export function serializeGeometry(g: LpGeometry): Buffer {
  const out = Buffer.alloc(LP_METADATA_GEOMETRY_SIZE);
  out.writeUInt32LE(LP_METADATA_GEOMETRY_MAGIC, 0);
  out.writeUInt32LE(GEOMETRY_STRUCT_SIZE, 4);
  out.writeUInt32LE(g.metadataMaxSize, 40);
  out.writeUInt32LE(g.metadataSlotCount, 44);
  out.writeUInt32LE(g.logicalBlockSize, 48);
  sha256(out.subarray(0, GEOMETRY_STRUCT_SIZE)).copy(out, 8);
  return out;
}

// ---- metadata ------------------------------------------------------------------

interface TableDescriptor {
  offset: number;
  numEntries: number;
  entrySize: number;
}

function readTable(buf: Buffer, at: number): TableDescriptor {
  return { offset: buf.readUInt32LE(at), numEntries: buf.readUInt32LE(at + 4), entrySize: buf.readUInt32LE(at + 8) };
}

/** Bytes needed to parse the metadata copy that starts with `headStart` (header + tables), or an error. */
export function metadataLength(headStart: Buffer, g: LpGeometry, where = 'metadata'): number {
  const h = parseHeaderFields(headStart, where);
  if (h.tablesSize > g.metadataMaxSize) throw new LpFormatError(`${where}: tables size ${h.tablesSize} exceeds metadata max size ${g.metadataMaxSize}`);
  return h.headerSize + h.tablesSize;
}

interface RawHeader extends LpHeader {
  tablesSize: number;
  tables: { partitions: TableDescriptor; extents: TableDescriptor; groups: TableDescriptor; blockDevices: TableDescriptor };
}

function parseHeaderFields(buf: Buffer, where: string): RawHeader {
  if (buf.length < HEADER_V1_0_SIZE) throw new LpFormatError(`${where}: ${buf.length} bytes, too short for a metadata header (${HEADER_V1_0_SIZE})`);
  const magic = buf.readUInt32LE(0);
  if (magic !== LP_METADATA_HEADER_MAGIC) {
    throw new LpFormatError(`${where}: invalid metadata header magic 0x${hex(magic)} (expected 0x${hex(LP_METADATA_HEADER_MAGIC)})`);
  }
  const majorVersion = buf.readUInt16LE(4);
  const minorVersion = buf.readUInt16LE(6);
  if (majorVersion !== LP_METADATA_MAJOR_VERSION || minorVersion > LP_METADATA_MINOR_VERSION_MAX) {
    throw new LpFormatError(
      `${where}: incompatible metadata version ${majorVersion}.${minorVersion} (supported ${LP_METADATA_MAJOR_VERSION}.0 .. ${LP_METADATA_MAJOR_VERSION}.${LP_METADATA_MINOR_VERSION_MAX})`,
    );
  }
  const headerSize = buf.readUInt32LE(8);
  const expected = minorVersion < LP_METADATA_VERSION_FOR_EXPANDED_HEADER ? HEADER_V1_0_SIZE : HEADER_V1_2_SIZE;
  if (headerSize !== expected) throw new LpFormatError(`${where}: invalid header size ${headerSize} for version ${majorVersion}.${minorVersion} (expected ${expected})`);
  if (buf.length < headerSize) throw new LpFormatError(`${where}: ${buf.length} bytes, too short for a ${headerSize}-byte header`);
  return {
    majorVersion,
    minorVersion,
    headerSize,
    flags: headerSize >= HEADER_V1_2_SIZE ? buf.readUInt32LE(128) : 0,
    tablesSize: buf.readUInt32LE(44),
    tables: {
      partitions: readTable(buf, 80),
      extents: readTable(buf, 92),
      groups: readTable(buf, 104),
      blockDevices: readTable(buf, 116),
    },
  };
}

/**
 * Decode one metadata copy (header + tables) from `buf`, with every check liblp's
 * ParseMetadata makes. `buf` may be longer than the metadata.
 */
export function parseMetadata(g: LpGeometry, buf: Buffer, where = 'metadata'): LpMetadata {
  const h = parseHeaderFields(buf, where);
  const header = buf.subarray(0, h.headerSize);
  const zeroed = Buffer.from(header);
  zeroed.fill(0, 12, 44);
  if (!sha256(zeroed).equals(header.subarray(12, 44))) throw new LpFormatError(`${where}: invalid metadata header checksum`);
  const t = h.tables;
  for (const [name, d] of Object.entries(t)) {
    if (d.offset > h.tablesSize || h.tablesSize - d.offset < d.numEntries * d.entrySize) {
      throw new LpFormatError(`${where}: ${name} table (offset ${d.offset}, ${d.numEntries} x ${d.entrySize} bytes) is outside the ${h.tablesSize}-byte tables area`);
    }
  }
  checkEntrySize(where, 'partition', t.partitions, PARTITION_ENTRY_SIZE);
  checkEntrySize(where, 'extent', t.extents, EXTENT_ENTRY_SIZE);
  checkEntrySize(where, 'group', t.groups, GROUP_ENTRY_SIZE);
  // liblp does not check the block device entry size; a wrong one would misread every device.
  checkEntrySize(where, 'block device', t.blockDevices, BLOCK_DEVICE_ENTRY_SIZE);
  if (h.tablesSize > g.metadataMaxSize) throw new LpFormatError(`${where}: tables size ${h.tablesSize} exceeds metadata max size ${g.metadataMaxSize}`);
  if (buf.length < h.headerSize + h.tablesSize) {
    throw new LpFormatError(`${where}: truncated: header says ${h.headerSize + h.tablesSize} bytes of metadata, only ${buf.length} present`);
  }
  const tables = buf.subarray(h.headerSize, h.headerSize + h.tablesSize);
  if (!sha256(tables).equals(header.subarray(48, 80))) throw new LpFormatError(`${where}: invalid metadata tables checksum`);

  let validAttributes = LP_PARTITION_ATTRIBUTE_MASK_V0;
  if (h.minorVersion >= LP_METADATA_VERSION_FOR_UPDATED_ATTR) validAttributes |= LP_PARTITION_ATTRIBUTE_MASK_V1;
  const partitions: LpPartition[] = [];
  for (let i = 0; i < t.partitions.numEntries; i++) {
    const at = t.partitions.offset + i * PARTITION_ENTRY_SIZE;
    const p: LpPartition = {
      name: readName(tables, at),
      attributes: tables.readUInt32LE(at + 36),
      firstExtentIndex: tables.readUInt32LE(at + 40),
      numExtents: tables.readUInt32LE(at + 44),
      groupIndex: tables.readUInt32LE(at + 48),
    };
    const what = `${where}: partition ${i} "${p.name}"`;
    if (p.attributes & ~validAttributes) throw new LpFormatError(`${what} has invalid attributes 0x${p.attributes.toString(16)} for version 10.${h.minorVersion}`);
    if (p.firstExtentIndex + p.numExtents > t.extents.numEntries) {
      throw new LpFormatError(`${what} has an invalid extent list (${p.firstExtentIndex} + ${p.numExtents} > ${t.extents.numEntries} extents)`);
    }
    if (p.groupIndex >= t.groups.numEntries) throw new LpFormatError(`${what} has invalid group index ${p.groupIndex} (${t.groups.numEntries} groups)`);
    partitions.push(p);
  }
  const extents: LpExtent[] = [];
  for (let i = 0; i < t.extents.numEntries; i++) {
    const at = t.extents.offset + i * EXTENT_ENTRY_SIZE;
    const e: LpExtent = {
      numSectors: u64(tables, at, `${where}: extent ${i} num_sectors`),
      targetType: tables.readUInt32LE(at + 8),
      targetData: u64(tables, at + 12, `${where}: extent ${i} target_data`),
      targetSource: tables.readUInt32LE(at + 20),
    };
    if (e.targetType === LP_TARGET_TYPE_LINEAR && e.targetSource >= t.blockDevices.numEntries) {
      throw new LpFormatError(`${where}: extent ${i} targets block device ${e.targetSource}, but there are ${t.blockDevices.numEntries}`);
    }
    extents.push(e);
  }
  const groups: LpGroup[] = [];
  for (let i = 0; i < t.groups.numEntries; i++) {
    const at = t.groups.offset + i * GROUP_ENTRY_SIZE;
    groups.push({
      name: readName(tables, at),
      flags: tables.readUInt32LE(at + 36),
      maximumSize: u64(tables, at + 40, `${where}: group ${i} maximum_size`),
    });
  }
  const blockDevices: LpBlockDevice[] = [];
  for (let i = 0; i < t.blockDevices.numEntries; i++) {
    const at = t.blockDevices.offset + i * BLOCK_DEVICE_ENTRY_SIZE;
    blockDevices.push({
      firstLogicalSector: u64(tables, at, `${where}: block device ${i} first_logical_sector`),
      alignment: tables.readUInt32LE(at + 8),
      alignmentOffset: tables.readUInt32LE(at + 12),
      size: u64(tables, at + 16, `${where}: block device ${i} size`),
      partitionName: readName(tables, at + 24),
      flags: tables.readUInt32LE(at + 60),
    });
  }
  const superDevice = blockDevices[0];
  if (!superDevice) throw new LpFormatError(`${where}: no block device: the metadata does not name its super partition`);
  const region = totalMetadataSize(g.metadataMaxSize, g.metadataSlotCount);
  if (region > superDevice.firstLogicalSector * LP_SECTOR_SIZE) {
    throw new LpFormatError(
      `${where}: metadata (${region} bytes for ${g.metadataSlotCount} slot(s) of ${g.metadataMaxSize}) overlaps logical partition contents at sector ${superDevice.firstLogicalSector}`,
    );
  }
  return {
    geometry: { ...g },
    header: { majorVersion: h.majorVersion, minorVersion: h.minorVersion, headerSize: h.headerSize, flags: h.flags },
    partitions,
    extents,
    groups,
    blockDevices,
  };
}

function checkEntrySize(where: string, what: string, d: TableDescriptor, expected: number): void {
  if (d.entrySize !== expected) throw new LpFormatError(`${where}: invalid ${what} table entry size ${d.entrySize} (expected ${expected})`);
}

/** Header + tables, checksums computed, exactly as liblp's SerializeMetadata lays them out. */
export function serializeMetadata(m: LpMetadata): Buffer {
  const parts = Buffer.alloc(m.partitions.length * PARTITION_ENTRY_SIZE);
  m.partitions.forEach((p, i) => {
    const at = i * PARTITION_ENTRY_SIZE;
    putName(parts, at, p.name, 'partition');
    parts.writeUInt32LE(p.attributes, at + 36);
    parts.writeUInt32LE(p.firstExtentIndex, at + 40);
    parts.writeUInt32LE(p.numExtents, at + 44);
    parts.writeUInt32LE(p.groupIndex, at + 48);
  });
  const extents = Buffer.alloc(m.extents.length * EXTENT_ENTRY_SIZE);
  m.extents.forEach((e, i) => {
    const at = i * EXTENT_ENTRY_SIZE;
    putU64(extents, at, e.numSectors);
    extents.writeUInt32LE(e.targetType, at + 8);
    putU64(extents, at + 12, e.targetData);
    extents.writeUInt32LE(e.targetSource, at + 20);
  });
  const groups = Buffer.alloc(m.groups.length * GROUP_ENTRY_SIZE);
  m.groups.forEach((grp, i) => {
    const at = i * GROUP_ENTRY_SIZE;
    putName(groups, at, grp.name, 'group');
    groups.writeUInt32LE(grp.flags, at + 36);
    putU64(groups, at + 40, grp.maximumSize);
  });
  const devices = Buffer.alloc(m.blockDevices.length * BLOCK_DEVICE_ENTRY_SIZE);
  m.blockDevices.forEach((d, i) => {
    const at = i * BLOCK_DEVICE_ENTRY_SIZE;
    putU64(devices, at, d.firstLogicalSector);
    devices.writeUInt32LE(d.alignment, at + 8);
    devices.writeUInt32LE(d.alignmentOffset, at + 12);
    putU64(devices, at + 16, d.size);
    putName(devices, at + 24, d.partitionName, 'block device');
    devices.writeUInt32LE(d.flags, at + 60);
  });
  const tables = Buffer.concat([parts, extents, groups, devices]);
  const header = Buffer.alloc(m.header.headerSize);
  header.writeUInt32LE(LP_METADATA_HEADER_MAGIC, 0);
  header.writeUInt16LE(m.header.majorVersion, 4);
  header.writeUInt16LE(m.header.minorVersion, 6);
  header.writeUInt32LE(m.header.headerSize, 8);
  header.writeUInt32LE(tables.length, 44);
  sha256(tables).copy(header, 48);
  const descriptors: [number, number, number][] = [
    [0, m.partitions.length, PARTITION_ENTRY_SIZE],
    [parts.length, m.extents.length, EXTENT_ENTRY_SIZE],
    [parts.length + extents.length, m.groups.length, GROUP_ENTRY_SIZE],
    [parts.length + extents.length + groups.length, m.blockDevices.length, BLOCK_DEVICE_ENTRY_SIZE],
  ];
  descriptors.forEach(([offset, n, size], i) => {
    header.writeUInt32LE(offset, 80 + i * 12);
    header.writeUInt32LE(n, 84 + i * 12);
    header.writeUInt32LE(size, 88 + i * 12);
  });
  if (m.header.headerSize >= HEADER_V1_2_SIZE) header.writeUInt32LE(m.header.flags, 128);
  sha256(header).copy(header, 12);
  return Buffer.concat([header, tables]);
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
