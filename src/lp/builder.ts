// Building and editing LP metadata the way liblp's MetadataBuilder does, so the
// extents it allocates are the ones a device (fastbootd) or `lpmake` would pick:
// sizes rounded up to the logical block size, free space searched in physical
// order from the first logical sector, new extents starting on the block device's
// alignment (default 1 MiB), a partition's last extent grown in place up to the
// next aligned sector first, group maximum sizes enforced, and on A/B devices
// (not virtual A/B) "_b" partitions placed in the second half of super first.
import {
  DEFAULT_GROUP,
  HEADER_V1_0_SIZE,
  HEADER_V1_2_SIZE,
  LP_BLOCK_DEVICE_SLOT_SUFFIXED,
  LP_GROUP_SLOT_SUFFIXED,
  LP_HEADER_FLAG_VIRTUAL_AB_DEVICE,
  LP_METADATA_DEFAULT_PARTITION_NAME,
  LP_METADATA_MAJOR_VERSION,
  LP_METADATA_MINOR_VERSION_MIN,
  LP_METADATA_VERSION_FOR_EXPANDED_HEADER,
  LP_METADATA_VERSION_FOR_UPDATED_ATTR,
  LP_PARTITION_ATTRIBUTE_MASK,
  LP_PARTITION_ATTRIBUTE_MASK_V1,
  LP_PARTITION_ATTR_SLOT_SUFFIXED,
  LP_SECTOR_SIZE,
  LP_TARGET_TYPE_LINEAR,
  LP_TARGET_TYPE_ZERO,
  LpBuildError,
  NAME_SIZE,
  partitionSlotSuffix,
  totalMetadataSize,
  type LpBlockDevice,
  type LpGeometry,
  type LpMetadata,
} from './format.js';

/** A physical device that can hold logical partitions (super, or one of several on retrofit devices). */
export interface BlockDeviceInfo {
  partitionName: string;
  size: number;
  /** Bytes; 0 = none. lpmake's default is 1 MiB. */
  alignment: number;
  alignmentOffset: number;
  logicalBlockSize: number;
}

export type BuilderExtent =
  | { kind: 'linear'; numSectors: number; deviceIndex: number; physicalSector: number }
  | { kind: 'zero'; numSectors: number };

export interface BuilderPartition {
  name: string;
  groupName: string;
  attributes: number;
  extents: BuilderExtent[];
}

export interface BuilderGroup {
  name: string;
  maximumSize: number;
}

/** Where the builder runs: on an A/B device liblp places "_b" partitions in super's second half (not on virtual A/B). */
export interface BuilderEnvironment {
  abDevice?: boolean;
  virtualAb?: boolean;
}

interface Interval {
  deviceIndex: number;
  start: number;
  end: number;
}

/** liblp AlignTo(base, alignment): round up to a multiple (0 = unchanged). */
export function alignTo(base: number, alignment: number): number {
  if (!alignment) return base;
  const r = base % alignment;
  return r === 0 ? base : base + (alignment - r);
}

/** liblp AlignTo(base, alignment, offset): round up so that base - offset is aligned. */
export function alignToWithOffset(base: number, alignment: number, offset: number): number {
  const aligned = alignTo(base, alignment) + offset;
  // liblp's unsigned `aligned - alignment >= base`; its wrap-around when aligned < alignment is not reproduced.
  if (aligned >= alignment && aligned - alignment >= base) return aligned - alignment;
  return aligned;
}

export const extentBytes = (e: BuilderExtent): number => e.numSectors * LP_SECTOR_SIZE;
export const partitionBytes = (p: BuilderPartition): number => p.extents.reduce((n, e) => n + extentBytes(e), 0);
const bytesOnDisk = (p: BuilderPartition): number => p.extents.reduce((n, e) => n + (e.kind === 'linear' ? extentBytes(e) : 0), 0);

export class MetadataBuilder {
  private geometry: LpGeometry = { metadataMaxSize: 0, metadataSlotCount: 0, logicalBlockSize: 0 };
  private minorVersion = LP_METADATA_MINOR_VERSION_MIN;
  private headerSize = HEADER_V1_0_SIZE;
  private headerFlags = 0;
  private autoSlotSuffixing = false;
  readonly blockDevices: LpBlockDevice[] = [];
  readonly groups: BuilderGroup[] = [];
  readonly partitions: BuilderPartition[] = [];

  private constructor(private readonly env: BuilderEnvironment) {}

  /** A new, empty layout (liblp MetadataBuilder::New(block_devices, super, max size, slots)). */
  static create(
    devices: BlockDeviceInfo[],
    superName: string,
    metadataMaxSize: number,
    slotCount: number,
    env: BuilderEnvironment = {},
  ): MetadataBuilder {
    const b = new MetadataBuilder(env);
    if (metadataMaxSize < HEADER_V1_2_SIZE) throw new LpBuildError(`invalid metadata maximum size ${metadataMaxSize} (at least ${HEADER_V1_2_SIZE})`);
    if (slotCount < 1) throw new LpBuildError(`invalid metadata slot count ${slotCount}`);
    if (devices.length === 0) throw new LpBuildError('no block devices were specified');
    const maxSize = alignTo(metadataMaxSize, LP_SECTOR_SIZE);
    const blockSize = devices[0]!.logicalBlockSize;
    for (const d of devices) {
      verifyDevice(d);
      if (d.logicalBlockSize !== blockSize) throw new LpBuildError('all block devices must have the same logical block size');
      if (Buffer.byteLength(d.partitionName, 'latin1') > NAME_SIZE) throw new LpBuildError(`partition name ${d.partitionName} exceeds ${NAME_SIZE} bytes`);
      const out: LpBlockDevice = {
        firstLogicalSector: firstFreeSector(LP_SECTOR_SIZE, d.alignment, d.alignmentOffset, blockSize),
        alignment: d.alignment,
        alignmentOffset: d.alignmentOffset,
        size: d.size,
        partitionName: d.partitionName,
        flags: 0,
      };
      if (d.size < out.firstLogicalSector * LP_SECTOR_SIZE + blockSize) throw new LpBuildError(`block device ${d.partitionName} is too small to hold any logical partitions`);
      if (d.partitionName === superName) b.blockDevices.unshift(out);
      else b.blockDevices.push(out);
    }
    const superDevice = b.blockDevices[0]!;
    if (superDevice.partitionName !== superName) throw new LpBuildError(`no super partition was specified (expected a block device named ${superName})`);
    const reserved = totalMetadataSize(maxSize, slotCount);
    if (superDevice.size < reserved) throw new LpBuildError(`super device of ${superDevice.size} bytes is too small for ${reserved} bytes of metadata`);
    superDevice.firstLogicalSector = firstFreeSector(reserved, superDevice.alignment, superDevice.alignmentOffset, blockSize);
    const minimum = superDevice.firstLogicalSector * LP_SECTOR_SIZE + blockSize;
    if (superDevice.size < minimum) throw new LpBuildError(`device must be at least ${minimum} bytes, only has ${superDevice.size}`);
    b.geometry = { metadataMaxSize: maxSize, metadataSlotCount: slotCount, logicalBlockSize: blockSize };
    b.addGroup(DEFAULT_GROUP, 0);
    return b;
  }

  /** Edit existing metadata (liblp MetadataBuilder::New(metadata)). */
  static fromMetadata(m: LpMetadata, env: BuilderEnvironment = {}): MetadataBuilder {
    const b = new MetadataBuilder(env);
    b.geometry = { ...m.geometry };
    b.blockDevices.push(...m.blockDevices.map((d) => ({ ...d })));
    if (m.header.minorVersion >= LP_METADATA_VERSION_FOR_EXPANDED_HEADER) {
      b.requireExpandedHeader();
      b.headerFlags = m.header.flags;
    }
    for (const g of m.groups) b.addGroup(g.name, g.maximumSize);
    for (const p of m.partitions) {
      const part = b.addPartition(p.name, m.groups[p.groupIndex]!.name, p.attributes);
      b.importExtents(part, m, p.firstExtentIndex, p.numExtents);
    }
    return b;
  }

  get logicalBlockSize(): number {
    return this.geometry.logicalBlockSize;
  }

  setAutoSlotSuffixing(): void {
    this.autoSlotSuffixing = true;
  }

  setVirtualAbFlag(): void {
    this.requireExpandedHeader();
    this.headerFlags |= LP_HEADER_FLAG_VIRTUAL_AB_DEVICE;
  }

  private requireExpandedHeader(): void {
    if (this.minorVersion >= LP_METADATA_VERSION_FOR_EXPANDED_HEADER) return;
    this.minorVersion = LP_METADATA_VERSION_FOR_EXPANDED_HEADER;
    this.headerSize = HEADER_V1_2_SIZE;
  }

  // ---- groups and partitions ---------------------------------------------------------

  addGroup(name: string, maximumSize: number): BuilderGroup {
    if (this.findGroup(name)) throw new LpBuildError(`group already exists: ${name}`);
    const g = { name, maximumSize };
    this.groups.push(g);
    return g;
  }

  findGroup(name: string): BuilderGroup | undefined {
    return this.groups.find((g) => g.name === name);
  }

  /** Drop a group and its partitions (never the default group). */
  removeGroupAndPartitions(name: string): void {
    if (name === DEFAULT_GROUP) return;
    for (let i = this.partitions.length - 1; i >= 0; i--) if (this.partitions[i]!.groupName === name) this.partitions.splice(i, 1);
    const at = this.groups.findIndex((g) => g.name === name);
    if (at >= 0) this.groups.splice(at, 1);
  }

  changeGroupSize(name: string, maximumSize: number): void {
    if (name === DEFAULT_GROUP) throw new LpBuildError('cannot change the size of the default group');
    const g = this.findGroup(name);
    if (!g) throw new LpBuildError(`cannot change size of unknown partition group: ${name}`);
    g.maximumSize = maximumSize;
  }

  addPartition(name: string, groupName = DEFAULT_GROUP, attributes = 0): BuilderPartition {
    if (!name) throw new LpBuildError('partition must have a non-empty name');
    if (this.findPartition(name)) throw new LpBuildError(`attempting to create duplicate partition with name: ${name}`);
    if (!this.findGroup(groupName)) throw new LpBuildError(`could not find partition group: ${groupName}`);
    const p: BuilderPartition = { name, groupName, attributes, extents: [] };
    this.partitions.push(p);
    return p;
  }

  findPartition(name: string): BuilderPartition | undefined {
    return this.partitions.find((p) => p.name === name);
  }

  removePartition(name: string): void {
    const at = this.partitions.findIndex((p) => p.name === name);
    if (at >= 0) this.partitions.splice(at, 1);
  }

  listPartitionsInGroup(groupName: string): BuilderPartition[] {
    return this.partitions.filter((p) => p.groupName === groupName);
  }

  /** Sum of every partition's size (liblp UsedSpace). */
  usedSpace(): number {
    return this.partitions.reduce((n, p) => n + partitionBytes(p), 0);
  }

  /** Bytes available for extents on every block device (liblp AllocatableSpace). */
  allocatableSpace(): number {
    return this.blockDevices.reduce((n, d) => n + d.size - d.firstLogicalSector * LP_SECTOR_SIZE, 0);
  }

  /** Add a linear extent by hand (lpmake-style layouts, tests). */
  addLinearExtent(p: BuilderPartition, blockDevice: string, numSectors: number, physicalSector: number): void {
    const deviceIndex = this.blockDevices.findIndex((d) => d.partitionName === blockDevice);
    if (deviceIndex < 0) throw new LpBuildError(`could not find backing block device for extent: ${blockDevice}`);
    appendExtent(p, { kind: 'linear', numSectors, deviceIndex, physicalSector });
  }

  private importExtents(p: BuilderPartition, m: LpMetadata, first: number, count: number): void {
    for (let i = 0; i < count; i++) {
      const e = m.extents[first + i]!;
      if (e.targetType === LP_TARGET_TYPE_LINEAR) {
        appendExtent(p, { kind: 'linear', numSectors: e.numSectors, deviceIndex: e.targetSource, physicalSector: e.targetData });
      } else if (e.targetType === LP_TARGET_TYPE_ZERO) {
        appendExtent(p, { kind: 'zero', numSectors: e.numSectors });
      }
    }
  }

  /**
   * Copy the named partitions' extents from `m` (liblp ImportPartitions, used by
   * fastbootd's update-super to keep the other slot). The block device tables must match.
   */
  importPartitions(m: LpMetadata, names: Set<string>): void {
    if (m.blockDevices.length !== this.blockDevices.length) throw new LpBuildError('block device tables do not match');
    m.blockDevices.forEach((old, i) => {
      const now = this.blockDevices[i]!;
      if (old.firstLogicalSector !== now.firstLogicalSector || old.size !== now.size || old.partitionName !== now.partitionName) {
        throw new LpBuildError('block device tables do not match');
      }
    });
    for (const source of m.partitions) {
      if (!names.has(source.name)) continue;
      let p = this.findPartition(source.name);
      if (!p) p = this.addPartition(source.name, m.groups[source.groupIndex]!.name, source.attributes);
      if (partitionBytes(p) > 0) throw new LpBuildError(`importing partition table would overwrite non-empty partition: ${source.name}`);
      this.importExtents(p, m, source.firstExtentIndex, source.numExtents);
      try {
        this.validateSizeChange(p, partitionBytes(p), partitionBytes(p), true);
      } catch (err) {
        p.extents = [];
        throw err;
      }
    }
  }

  // ---- allocation ---------------------------------------------------------------------

  /** Grow or shrink a partition to `requested` bytes, rounded up to the logical block size (liblp ResizePartition). */
  resizePartition(p: BuilderPartition, requested: number, freeRegionHint: Interval[] = []): void {
    const aligned = alignTo(requested, this.geometry.logicalBlockSize);
    const old = partitionBytes(p);
    this.validateSizeChange(p, old, aligned, false);
    if (aligned > old) this.growPartition(p, aligned, freeRegionHint);
    else if (aligned < old) shrinkTo(p, aligned);
  }

  private validateSizeChange(p: BuilderPartition, oldSize: number, newSize: number, force: boolean): void {
    const g = this.findGroup(p.groupName)!;
    if (!force && newSize <= oldSize) return;
    const needed = newSize - oldSize;
    if (g.maximumSize > 0) {
      const used = this.totalSizeOfGroup(g.name);
      if (used >= g.maximumSize || g.maximumSize - used < needed) {
        throw new LpBuildError(
          `partition ${p.name} is part of group ${g.name} which does not have enough space free (${needed} requested, ${used} used out of ${g.maximumSize})`,
        );
      }
    }
  }

  private totalSizeOfGroup(name: string): number {
    return this.partitions.filter((p) => p.groupName === name).reduce((n, p) => n + bytesOnDisk(p), 0);
  }

  private alignSector(d: LpBlockDevice, sector: number): number {
    const aligned = alignToWithOffset(sector * LP_SECTOR_SIZE, d.alignment, d.alignmentOffset);
    return alignTo(aligned, LP_SECTOR_SIZE) / LP_SECTOR_SIZE;
  }

  /** Unallocated sector ranges per device, each starting on an aligned sector (liblp GetFreeRegions). */
  freeRegions(): Interval[] {
    const perDevice: Interval[][] = this.blockDevices.map(() => []);
    for (const p of this.partitions) {
      for (const e of p.extents) {
        if (e.kind !== 'linear') continue;
        perDevice[e.deviceIndex]!.push({ deviceIndex: e.deviceIndex, start: e.physicalSector, end: e.physicalSector + e.numSectors });
      }
    }
    const free: Interval[] = [];
    perDevice.forEach((list, i) => {
      const d = this.blockDevices[i]!;
      const first = d.firstLogicalSector;
      const last = Math.floor(d.size / LP_SECTOR_SIZE);
      list.push({ deviceIndex: i, start: first, end: first }, { deviceIndex: i, start: last, end: last });
      list.sort((a, b) => (a.start === b.start ? a.end - b.end : a.start - b.start));
      for (let k = 1; k < list.length; k++) {
        const aligned = this.alignSector(d, list[k - 1]!.end);
        if (aligned >= list[k]!.start) continue;
        free.push({ deviceIndex: i, start: aligned, end: list[k]!.start });
      }
    });
    return free;
  }

  private growPartition(p: BuilderPartition, alignedSize: number, hint: Interval[]): void {
    let needed = (alignedSize - partitionBytes(p)) / LP_SECTOR_SIZE;
    let free = this.freeRegions();
    if (hint.length > 0) free = intersect(free, hint);
    const perBlock = this.geometry.logicalBlockSize / LP_SECTOR_SIZE;
    if (this.env.abDevice && this.shouldHalveSuper() && partitionSlotSuffix(p.name) === '_b') free = this.secondHalfFirst(free);
    const added: BuilderExtent[] = [];
    const tail = this.extendFinalExtent(p, free, needed);
    if (tail) {
      needed -= tail.numSectors;
      added.push(tail);
    }
    for (const region of free) {
      if (!needed) break;
      let length = region.end - region.start;
      if (length % perBlock !== 0) length -= length % perBlock; // liblp trims misaligned regions
      if (!length) continue;
      const sectors = Math.min(needed, length);
      added.push({ kind: 'linear', numSectors: sectors, deviceIndex: region.deviceIndex, physicalSector: region.start });
      needed -= sectors;
    }
    if (needed) throw new LpBuildError(`not enough free space to expand partition: ${p.name} (${needed * LP_SECTOR_SIZE} more bytes needed)`);
    for (const e of added) appendExtent(p, e);
  }

  private shouldHalveSuper(): boolean {
    return this.blockDevices[0]?.partitionName === LP_METADATA_DEFAULT_PARTITION_NAME && !this.env.virtualAb;
  }

  private secondHalfFirst(free: Interval[]): Interval[] {
    const d = this.blockDevices[0]!;
    const first = d.firstLogicalSector;
    const last = Math.floor(d.size / LP_SECTOR_SIZE);
    const mid = this.alignSector(d, first + Math.floor((last - first) / 2));
    const firstHalf: Interval[] = [];
    const secondHalf: Interval[] = [];
    for (const r of free) {
      if (r.deviceIndex !== 0 || r.end <= mid) firstHalf.push(r);
      else if (r.start < mid) {
        firstHalf.push({ deviceIndex: r.deviceIndex, start: r.start, end: mid });
        secondHalf.push({ deviceIndex: r.deviceIndex, start: mid, end: r.end });
      } else secondHalf.push(r);
    }
    return [...secondHalf, ...firstHalf];
  }

  /** Grow the last linear extent in place up to the next aligned sector, when that space is unused. */
  private extendFinalExtent(p: BuilderPartition, free: Interval[], needed: number): BuilderExtent | undefined {
    const last = p.extents.at(-1);
    if (!last || last.kind !== 'linear') return undefined;
    const end = last.physicalSector + last.numSectors;
    const next = this.alignSector(this.blockDevices[last.deviceIndex]!, end);
    if (end === next) return undefined;
    const candidate = { deviceIndex: last.deviceIndex, start: end, end: end + Math.min(next - end, needed) };
    const overlaps = (r: Interval): boolean => r.deviceIndex === candidate.deviceIndex && r.start < candidate.end && candidate.start < r.end;
    const allocated = this.partitions.some((q) =>
      q.extents.some((e) => e.kind === 'linear' && overlaps({ deviceIndex: e.deviceIndex, start: e.physicalSector, end: e.physicalSector + e.numSectors })),
    );
    if (allocated || free.some(overlaps)) return undefined;
    return { kind: 'linear', numSectors: candidate.end - candidate.start, deviceIndex: candidate.deviceIndex, physicalSector: candidate.start };
  }

  // ---- export -------------------------------------------------------------------------

  /** The metadata (liblp Export): checks group limits, bumps the minor version for v1 attributes. */
  export(): LpMetadata {
    for (const g of this.groups) {
      if (!g.maximumSize) continue;
      const used = this.totalSizeOfGroup(g.name);
      if (used > g.maximumSize) throw new LpBuildError(`partition group ${g.name} exceeds maximum size (${used} bytes used, maximum ${g.maximumSize})`);
    }
    let minor = this.minorVersion;
    const m: LpMetadata = {
      geometry: { ...this.geometry },
      header: { majorVersion: LP_METADATA_MAJOR_VERSION, minorVersion: minor, headerSize: this.headerSize, flags: this.headerFlags },
      partitions: [],
      extents: [],
      groups: [],
      blockDevices: this.blockDevices.map((d) => ({ ...d, flags: this.autoSlotSuffixing ? d.flags | LP_BLOCK_DEVICE_SLOT_SUFFIXED : d.flags })),
    };
    const groupIndex = new Map<string, number>();
    for (const g of this.groups) {
      if (Buffer.byteLength(g.name, 'latin1') > NAME_SIZE) throw new LpBuildError(`partition group name is too long: ${g.name}`);
      groupIndex.set(g.name, m.groups.length);
      m.groups.push({ name: g.name, flags: this.autoSlotSuffixing && g.name !== DEFAULT_GROUP ? LP_GROUP_SLOT_SUFFIXED : 0, maximumSize: g.maximumSize });
    }
    for (const p of this.partitions) {
      if (Buffer.byteLength(p.name, 'latin1') > NAME_SIZE) throw new LpBuildError(`partition name is too long: ${p.name}`);
      if (p.attributes & ~LP_PARTITION_ATTRIBUTE_MASK) throw new LpBuildError(`partition ${p.name} has unsupported attributes 0x${p.attributes.toString(16)}`);
      if (p.attributes & LP_PARTITION_ATTRIBUTE_MASK_V1) minor = Math.max(minor, LP_METADATA_VERSION_FOR_UPDATED_ATTR);
      const gi = groupIndex.get(p.groupName);
      if (gi === undefined) throw new LpBuildError(`partition ${p.name} is a member of unknown group ${p.groupName}`);
      const firstExtentIndex = m.extents.length;
      for (const e of p.extents) {
        if (e.kind === 'linear') {
          if (e.deviceIndex >= m.blockDevices.length) throw new LpBuildError(`extent of ${p.name} references unknown block device ${e.deviceIndex}`);
          m.extents.push({ numSectors: e.numSectors, targetType: LP_TARGET_TYPE_LINEAR, targetData: e.physicalSector, targetSource: e.deviceIndex });
        } else m.extents.push({ numSectors: e.numSectors, targetType: LP_TARGET_TYPE_ZERO, targetData: 0, targetSource: 0 });
      }
      m.partitions.push({
        name: p.name,
        attributes: this.autoSlotSuffixing ? p.attributes | LP_PARTITION_ATTR_SLOT_SUFFIXED : p.attributes,
        firstExtentIndex,
        numExtents: p.extents.length,
        groupIndex: gi,
      });
    }
    m.header.minorVersion = minor;
    return m;
  }
}

function verifyDevice(d: BlockDeviceInfo): void {
  const name = d.partitionName;
  if (!d.logicalBlockSize) throw new LpBuildError(`block device ${name} logical block size must not be zero`);
  if (d.logicalBlockSize % LP_SECTOR_SIZE !== 0) throw new LpBuildError(`block device ${name} logical block size must be a multiple of 512`);
  if (d.size % d.logicalBlockSize !== 0) throw new LpBuildError(`block device ${name} size ${d.size} must be a multiple of its block size ${d.logicalBlockSize}`);
  if (d.alignmentOffset % LP_SECTOR_SIZE !== 0) throw new LpBuildError(`block device ${name} alignment offset is not sector-aligned`);
  if (d.alignment % LP_SECTOR_SIZE !== 0) throw new LpBuildError(`block device ${name} partition alignment is not sector-aligned`);
  if (d.alignmentOffset > d.alignment) throw new LpBuildError(`block device ${name} partition alignment offset is greater than its alignment`);
}

function firstFreeSector(start: number, alignment: number, alignmentOffset: number, blockSize: number): number {
  const at = alignment || alignmentOffset ? alignToWithOffset(start, alignment, alignmentOffset) : alignTo(start, blockSize);
  return at / LP_SECTOR_SIZE;
}

/** Append, merging with the previous linear extent when physically contiguous (liblp Partition::AddExtent). */
function appendExtent(p: BuilderPartition, e: BuilderExtent): void {
  const prev = p.extents.at(-1);
  if (e.kind === 'linear' && prev?.kind === 'linear' && prev.deviceIndex === e.deviceIndex && prev.physicalSector + prev.numSectors === e.physicalSector) {
    p.extents[p.extents.length - 1] = { ...prev, numSectors: prev.numSectors + e.numSectors };
    return;
  }
  p.extents.push({ ...e });
}

/** Drop sectors from the end (liblp Partition::ShrinkTo). */
function shrinkTo(p: BuilderPartition, alignedSize: number): void {
  if (alignedSize === 0) {
    p.extents = [];
    return;
  }
  let remove = (partitionBytes(p) - alignedSize) / LP_SECTOR_SIZE;
  while (remove > 0) {
    const last = p.extents.at(-1)!;
    if (last.numSectors > remove) {
      p.extents[p.extents.length - 1] = { ...last, numSectors: last.numSectors - remove };
      break;
    }
    remove -= last.numSectors;
    p.extents.pop();
  }
}

function intersect(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of a) {
    for (const y of b) {
      if (x.deviceIndex !== y.deviceIndex) continue;
      const start = Math.max(x.start, y.start);
      const end = Math.max(start, Math.min(x.end, y.end));
      if (end > start) out.push({ deviceIndex: x.deviceIndex, start, end });
    }
  }
  return out;
}
