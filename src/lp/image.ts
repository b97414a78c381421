// Super partitions and super_empty images: where liblp reads and writes each
// copy. I/O stays outside: readers are `(offset, length) => bytes` functions and
// writers return the list of byte ranges to write, so the same code serves files,
// buffers and the emulated device.
import { metadataLength, parseGeometry, parseMetadata, serializeGeometry, serializeMetadata } from './codec.js';
import {
  BACKUP_GEOMETRY_OFFSET,
  HEADER_V1_2_SIZE,
  LP_BLOCK_DEVICE_SLOT_SUFFIXED,
  LP_GROUP_SLOT_SUFFIXED,
  LP_METADATA_GEOMETRY_MAGIC,
  LP_METADATA_GEOMETRY_SIZE,
  LP_PARTITION_ATTR_SLOT_SUFFIXED,
  LP_PARTITION_RESERVED_BYTES,
  LP_SECTOR_SIZE,
  LP_TARGET_TYPE_LINEAR,
  LpFormatError,
  NAME_SIZE,
  PRIMARY_GEOMETRY_OFFSET,
  backupMetadataOffset,
  primaryMetadataOffset,
  slotSuffixForNumber,
  totalMetadataSize,
  type LpGeometry,
  type LpMetadata,
} from './format.js';

/** Random access to an image: up to `length` bytes at `offset` (shorter at the end). */
export type ReadAt = (offset: number, length: number) => Buffer;

export interface ByteWrite {
  offset: number;
  data: Buffer;
}

export const bufferReader =
  (buf: Buffer): ReadAt =>
  (offset, length) =>
    buf.subarray(Math.min(offset, buf.length), Math.min(offset + length, buf.length));

// ---- super_empty.img ---------------------------------------------------------------

/** liblp's IsEmptySuperImage: the geometry magic at byte 0 (a full super image has zeros there). */
export function isEmptySuperImage(read: ReadAt): boolean {
  const head = read(0, LP_METADATA_GEOMETRY_SIZE);
  return head.length >= LP_METADATA_GEOMETRY_SIZE && head.readUInt32LE(0) === LP_METADATA_GEOMETRY_MAGIC;
}

/** Metadata of a super_empty image (ReadFromImageFile / ReadFromImageBlob): geometry at 0, metadata at 4096. */
export function readEmptyImage(read: ReadAt, where = 'super_empty image'): LpMetadata {
  const head = read(0, LP_METADATA_GEOMETRY_SIZE);
  if (head.length < LP_METADATA_GEOMETRY_SIZE) throw new LpFormatError(`${where}: ${head.length} bytes is smaller than the ${LP_METADATA_GEOMETRY_SIZE}-byte geometry block`);
  const g = parseGeometry(head, `${where}: geometry at offset 0`);
  return readMetadataAt(read, g, LP_METADATA_GEOMETRY_SIZE, `${where}: metadata at offset ${LP_METADATA_GEOMETRY_SIZE}`);
}

/** The bytes `lpmake` writes when given no images: geometry block + one metadata copy. */
export function emptyImage(m: LpMetadata): Buffer {
  return Buffer.concat([serializeGeometry(m.geometry), serializeMetadata(m)]);
}

// ---- super partition ------------------------------------------------------------------

/** The primary geometry, or the backup when the primary is damaged (both errors reported if neither parses). */
export function readGeometry(read: ReadAt): LpGeometry {
  try {
    return parseGeometry(read(PRIMARY_GEOMETRY_OFFSET, LP_METADATA_GEOMETRY_SIZE), `primary geometry at offset ${PRIMARY_GEOMETRY_OFFSET}`);
  } catch (primary) {
    try {
      return parseGeometry(read(BACKUP_GEOMETRY_OFFSET, LP_METADATA_GEOMETRY_SIZE), `backup geometry at offset ${BACKUP_GEOMETRY_OFFSET}`);
    } catch (backup) {
      throw new LpFormatError(`no valid LP geometry: ${(primary as Error).message}; ${(backup as Error).message}`);
    }
  }
}

function readMetadataAt(read: ReadAt, g: LpGeometry, offset: number, where: string): LpMetadata {
  const head = read(offset, HEADER_V1_2_SIZE);
  const length = metadataLength(head, g, where);
  return parseMetadata(g, read(offset, length), where);
}

export function readPrimaryMetadata(read: ReadAt, g: LpGeometry, slot: number): LpMetadata {
  const at = primaryMetadataOffset(g, slot);
  return readMetadataAt(read, g, at, `slot ${slot} primary metadata at offset ${at}`);
}

export function readBackupMetadata(read: ReadAt, g: LpGeometry, slot: number): LpMetadata {
  const at = backupMetadataOffset(g, slot);
  return readMetadataAt(read, g, at, `slot ${slot} backup metadata at offset ${at}`);
}

/**
 * liblp's ReadMetadata(super, slot): geometry (primary, else backup), the slot's
 * primary metadata (else its backup), then slot-suffixed names get the slot's suffix.
 */
export function readSuperMetadata(read: ReadAt, slot = 0): LpMetadata {
  const g = readGeometry(read);
  if (slot >= g.metadataSlotCount) throw new LpFormatError(`metadata slot ${slot} does not exist: the geometry has ${g.metadataSlotCount} slot(s)`);
  let m: LpMetadata;
  try {
    m = readPrimaryMetadata(read, g, slot);
  } catch (primary) {
    try {
      m = readBackupMetadata(read, g, slot);
    } catch (backup) {
      throw new LpFormatError(`no valid metadata for slot ${slot}: ${(primary as Error).message}; ${(backup as Error).message}`);
    }
  }
  return adjustForSlot(m, slot);
}

/** Names flagged SLOT_SUFFIXED get the slot's suffix and lose the flag (liblp AdjustMetadataForSlot). */
export function adjustForSlot(m: LpMetadata, slot: number): LpMetadata {
  const suffix = slotSuffixForNumber(slot);
  const rename = (name: string): string => {
    const out = name + suffix;
    if (Buffer.byteLength(out, 'latin1') > NAME_SIZE) throw new LpFormatError(`name too long for slot ${slot}: ${out}`);
    return out;
  };
  return {
    ...m,
    partitions: m.partitions.map((p) =>
      p.attributes & LP_PARTITION_ATTR_SLOT_SUFFIXED ? { ...p, name: rename(p.name), attributes: p.attributes & ~LP_PARTITION_ATTR_SLOT_SUFFIXED } : { ...p },
    ),
    blockDevices: m.blockDevices.map((d) =>
      d.flags & LP_BLOCK_DEVICE_SLOT_SUFFIXED ? { ...d, partitionName: rename(d.partitionName), flags: d.flags & ~LP_BLOCK_DEVICE_SLOT_SUFFIXED } : { ...d },
    ),
    groups: m.groups.map((grp) => (grp.flags & LP_GROUP_SLOT_SUFFIXED ? { ...grp, name: rename(grp.name), flags: grp.flags & ~LP_GROUP_SLOT_SUFFIXED } : { ...grp })),
    extents: m.extents.map((e) => ({ ...e })),
  };
}

// ---- writing -------------------------------------------------------------------------

export interface WriteCheckOptions {
  /** The real size of the super block device: a mismatch is refused, as on a device. */
  deviceSize?: number;
  /** Suffix for block devices flagged SLOT_SUFFIXED (derived from the super name or the slot). */
  slotSuffix?: string;
}

/** liblp's ValidateAndSerializeMetadata: the checks made before any metadata is written. */
export function validateForWrite(m: LpMetadata, opts: WriteCheckOptions = {}): Buffer {
  const g = m.geometry;
  const blob = serializeMetadata(m);
  if (blob.length > g.metadataMaxSize) throw new LpFormatError(`logical partition metadata is too large: ${blob.length} > ${g.metadataMaxSize} bytes`);
  const superDevice = m.blockDevices[0];
  if (!superDevice) throw new LpFormatError('logical partition metadata does not have a super block device');
  const reserved = totalMetadataSize(g.metadataMaxSize, g.metadataSlotCount);
  if (reserved > superDevice.firstLogicalSector * LP_SECTOR_SIZE) {
    throw new LpFormatError(`not enough space to store all logical partition metadata slots (${reserved} bytes before sector ${superDevice.firstLogicalSector})`);
  }
  m.blockDevices.forEach((d, i) => {
    let name = d.partitionName;
    if (d.flags & LP_BLOCK_DEVICE_SLOT_SUFFIXED) {
      if (!opts.slotSuffix) throw new LpFormatError(`block device ${name} requires a slot suffix, which could not be derived from the super partition name`);
      name += opts.slotSuffix;
    }
    if ((d.firstLogicalSector + 1) * LP_SECTOR_SIZE > d.size) throw new LpFormatError(`block device ${name} has invalid first sector ${d.firstLogicalSector} for size ${d.size}`);
    if (i === 0 && opts.deviceSize !== undefined && opts.deviceSize !== d.size) {
      throw new LpFormatError(`block device ${name} size mismatch (expected ${d.size}, got ${opts.deviceSize})`);
    }
  });
  for (const p of m.partitions) {
    if (p.firstExtentIndex + p.numExtents > m.extents.length) throw new LpFormatError(`partition ${p.name} references an invalid extent`);
  }
  const lastSector = Math.floor(superDevice.size / LP_SECTOR_SIZE);
  m.extents.forEach((e, i) => {
    if (e.targetType !== LP_TARGET_TYPE_LINEAR || e.targetSource !== 0) return;
    if (e.targetData < superDevice.firstLogicalSector || e.targetData + e.numSectors > lastSector) {
      throw new LpFormatError(`extent ${i} (sectors ${e.targetData} .. ${e.targetData + e.numSectors}) is out of bounds (${superDevice.firstLogicalSector} .. ${lastSector})`);
    }
  });
  return blob;
}

/**
 * liblp's FlashPartitionTable: zeros over the reserved 4096 bytes, both geometry
 * copies, and the same metadata in the primary and backup copy of every slot.
 */
export function flashPartitionTable(m: LpMetadata, opts: WriteCheckOptions = {}): ByteWrite[] {
  const blob = validateForWrite(m, opts);
  const geometry = serializeGeometry(m.geometry);
  const writes: ByteWrite[] = [
    { offset: 0, data: Buffer.alloc(LP_PARTITION_RESERVED_BYTES) },
    { offset: PRIMARY_GEOMETRY_OFFSET, data: geometry },
    { offset: BACKUP_GEOMETRY_OFFSET, data: geometry },
  ];
  for (let slot = 0; slot < m.geometry.metadataSlotCount; slot++) writes.push(...slotWrites(m, slot, blob));
  return writes;
}

function slotWrites(m: LpMetadata, slot: number, blob: Buffer): ByteWrite[] {
  const firstData = m.blockDevices[0]!.firstLogicalSector * LP_SECTOR_SIZE;
  return [primaryMetadataOffset(m.geometry, slot), backupMetadataOffset(m.geometry, slot)].map((offset) => {
    if (offset + blob.length >= firstData) throw new LpFormatError(`metadata write of ${blob.length} bytes at ${offset} overlaps logical partition contents`);
    return { offset, data: blob };
  });
}

/**
 * liblp's UpdatePartitionTable(super, metadata, slot): the geometry on disk must
 * match; a damaged primary or backup copy of the slot is first repaired from the
 * other; then both copies of the slot get the new metadata.
 */
export function updatePartitionTable(read: ReadAt, m: LpMetadata, slot: number, opts: WriteCheckOptions = {}): ByteWrite[] {
  const blob = validateForWrite(m, { slotSuffix: slot <= 1 ? slotSuffixForNumber(slot) : undefined, ...opts });
  const old = readGeometry(read);
  const g = m.geometry;
  if (old.metadataMaxSize !== g.metadataMaxSize || old.metadataSlotCount !== g.metadataSlotCount || old.logicalBlockSize !== g.logicalBlockSize) {
    throw new LpFormatError(
      `incompatible geometry in the new metadata (max size ${g.metadataMaxSize}, ${g.metadataSlotCount} slot(s), block ${g.logicalBlockSize}; on disk: ${old.metadataMaxSize}, ${old.metadataSlotCount}, ${old.logicalBlockSize})`,
    );
  }
  if (slot >= g.metadataSlotCount) throw new LpFormatError(`invalid logical partition metadata slot number ${slot} (${g.metadataSlotCount} slot(s))`);
  // The repair writes are superseded by the final ones; liblp makes them so a crash in between leaves a valid copy.
  return slotWrites(m, slot, blob);
}

/** Apply writes to a buffer (tests, in-memory images). */
export function applyWrites(target: Buffer, writes: ByteWrite[]): void {
  for (const w of writes) w.data.copy(target, w.offset);
}
