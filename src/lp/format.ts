// Android dynamic-partition ("liblp") metadata: constants, structure sizes and
// the decoded in-memory form. Facts from AOSP liblp's metadata_format.h (format
// version 10.0 .. 10.2); every on-disk integer is little-endian.
//
// Layout of a super partition:
//   0            4096 bytes reserved (zeros: never an accidental boot sector)
//   4096         geometry (4096 bytes), then its backup copy at 8192
//   12288        primary metadata, one copy of metadata_max_size per slot
//   ...          backup metadata, one copy per slot
//   first_logical_sector * 512 ...  partition contents (extents)
// A "super_empty.img" (what `lpmake` writes without images) is the geometry
// block at 0 followed by one metadata copy (header + tables, unpadded).
import { BadInputError } from '../errors.js';

export const LP_METADATA_GEOMETRY_MAGIC = 0x616c4467;
export const LP_METADATA_GEOMETRY_SIZE = 4096;
export const LP_METADATA_HEADER_MAGIC = 0x414c5030;
export const LP_METADATA_MAJOR_VERSION = 10;
export const LP_METADATA_MINOR_VERSION_MIN = 0;
export const LP_METADATA_MINOR_VERSION_MAX = 2;
/** Minor version that introduced the UPDATED / DISABLED partition attributes. */
export const LP_METADATA_VERSION_FOR_UPDATED_ATTR = 1;
/** Minor version whose header has `flags` and 124 reserved bytes (256 bytes). */
export const LP_METADATA_VERSION_FOR_EXPANDED_HEADER = 2;
export const LP_SECTOR_SIZE = 512;
export const LP_PARTITION_RESERVED_BYTES = 4096;
export const LP_METADATA_DEFAULT_PARTITION_NAME = 'super';

export const LP_PARTITION_ATTR_NONE = 0;
export const LP_PARTITION_ATTR_READONLY = 1 << 0;
export const LP_PARTITION_ATTR_SLOT_SUFFIXED = 1 << 1;
export const LP_PARTITION_ATTR_UPDATED = 1 << 2;
export const LP_PARTITION_ATTR_DISABLED = 1 << 3;
export const LP_PARTITION_ATTRIBUTE_MASK_V0 = LP_PARTITION_ATTR_READONLY | LP_PARTITION_ATTR_SLOT_SUFFIXED;
export const LP_PARTITION_ATTRIBUTE_MASK_V1 = LP_PARTITION_ATTR_UPDATED | LP_PARTITION_ATTR_DISABLED;
export const LP_PARTITION_ATTRIBUTE_MASK = LP_PARTITION_ATTRIBUTE_MASK_V0 | LP_PARTITION_ATTRIBUTE_MASK_V1;

export const LP_TARGET_TYPE_LINEAR = 0;
export const LP_TARGET_TYPE_ZERO = 1;
export const LP_GROUP_SLOT_SUFFIXED = 1 << 0;
export const LP_BLOCK_DEVICE_SLOT_SUFFIXED = 1 << 0;
export const LP_HEADER_FLAG_VIRTUAL_AB_DEVICE = 0x1;

/** Packed structure sizes. */
export const GEOMETRY_STRUCT_SIZE = 52;
export const HEADER_V1_0_SIZE = 128;
export const HEADER_V1_2_SIZE = 256;
export const PARTITION_ENTRY_SIZE = 52;
export const EXTENT_ENTRY_SIZE = 24;
export const GROUP_ENTRY_SIZE = 48;
export const BLOCK_DEVICE_ENTRY_SIZE = 64;
/** Every name field (partition, group, block device) is 36 bytes, NUL-padded. */
export const NAME_SIZE = 36;

/** The group every builder starts with; it has no size limit. */
export const DEFAULT_GROUP = 'default';
/** lpmake's default partition alignment. */
export const DEFAULT_PARTITION_ALIGNMENT = 1024 * 1024;

export interface LpGeometry {
  metadataMaxSize: number;
  metadataSlotCount: number;
  logicalBlockSize: number;
}

export interface LpHeader {
  majorVersion: number;
  minorVersion: number;
  /** 128 (v10.0/10.1) or 256 (v10.2). */
  headerSize: number;
  /** LP_HEADER_FLAG_* (v10.2 only; 0 before). */
  flags: number;
}

export interface LpPartition {
  name: string;
  attributes: number;
  firstExtentIndex: number;
  numExtents: number;
  groupIndex: number;
}

export interface LpExtent {
  numSectors: number;
  targetType: number;
  /** LINEAR: first physical sector on the block device; ZERO: 0. */
  targetData: number;
  /** LINEAR: index into blockDevices. */
  targetSource: number;
}

export interface LpGroup {
  name: string;
  flags: number;
  /** Bytes; 0 = unlimited. */
  maximumSize: number;
}

export interface LpBlockDevice {
  firstLogicalSector: number;
  alignment: number;
  alignmentOffset: number;
  size: number;
  partitionName: string;
  flags: number;
}

/** One decoded metadata copy (what liblp calls LpMetadata). */
export interface LpMetadata {
  geometry: LpGeometry;
  header: LpHeader;
  partitions: LpPartition[];
  extents: LpExtent[];
  groups: LpGroup[];
  blockDevices: LpBlockDevice[];
}

/** Malformed or inconsistent LP metadata; the message says which check failed and where. */
export class LpFormatError extends BadInputError {
  constructor(message: string, opts: { hint?: string } = {}) {
    super(message, {
      code: 'lp.invalid',
      hint: opts.hint ?? 'the file does not hold valid Android logical-partition (super) metadata',
    });
  }
}

/** A builder operation liblp would refuse (no space, group limit, duplicate name, ...). */
export class LpBuildError extends BadInputError {
  constructor(message: string) {
    super(message, { code: 'lp.build' });
  }
}

// ---- offsets (liblp utility.cpp) -------------------------------------------

export const PRIMARY_GEOMETRY_OFFSET = LP_PARTITION_RESERVED_BYTES;
export const BACKUP_GEOMETRY_OFFSET = PRIMARY_GEOMETRY_OFFSET + LP_METADATA_GEOMETRY_SIZE;

export function primaryMetadataOffset(g: LpGeometry, slot: number): number {
  checkSlot(g, slot);
  return LP_PARTITION_RESERVED_BYTES + LP_METADATA_GEOMETRY_SIZE * 2 + g.metadataMaxSize * slot;
}

export function backupMetadataOffset(g: LpGeometry, slot: number): number {
  checkSlot(g, slot);
  return LP_PARTITION_RESERVED_BYTES + LP_METADATA_GEOMETRY_SIZE * 2 + g.metadataMaxSize * (g.metadataSlotCount + slot);
}

/** Bytes at the start of super taken by the reserved area, both geometries and every metadata copy. */
export function totalMetadataSize(metadataMaxSize: number, slotCount: number): number {
  return LP_PARTITION_RESERVED_BYTES + (LP_METADATA_GEOMETRY_SIZE + metadataMaxSize * slotCount) * 2;
}

function checkSlot(g: LpGeometry, slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= g.metadataSlotCount) {
    throw new LpFormatError(`metadata slot ${slot} does not exist: the geometry has ${g.metadataSlotCount} slot(s)`);
  }
}

// ---- names and slots -----------------------------------------------------------

/** "_a" / "_b" when the name ends with one (and is longer than 2 characters), else "". */
export function partitionSlotSuffix(name: string): string {
  if (name.length <= 2) return '';
  const suffix = name.slice(-2);
  return suffix === '_a' || suffix === '_b' ? suffix : '';
}

/** liblp's SlotNumberForSlotSuffix: '', 'a', '_a' -> 0; 'b', '_b' -> 1; anything else -> 0. */
export function slotNumberForSuffix(suffix: string): number {
  return suffix === 'b' || suffix === '_b' ? 1 : 0;
}

export function slotSuffixForNumber(slot: number): string {
  if (slot !== 0 && slot !== 1) throw new LpFormatError(`slot number ${slot} has no suffix (only 0 = _a and 1 = _b)`);
  return slot === 0 ? '_a' : '_b';
}

/** Size in bytes of a partition: the sum of its extents. */
export function partitionSize(m: LpMetadata, p: LpPartition): number {
  let sectors = 0;
  for (let i = 0; i < p.numExtents; i++) sectors += m.extents[p.firstExtentIndex + i]!.numSectors;
  return sectors * LP_SECTOR_SIZE;
}

export function findPartition(m: LpMetadata, name: string): LpPartition | undefined {
  return m.partitions.find((p) => p.name === name);
}

export function partitionExtents(m: LpMetadata, p: LpPartition): LpExtent[] {
  return m.extents.slice(p.firstExtentIndex, p.firstExtentIndex + p.numExtents);
}
