// The emulated device's dynamic partitions: real LP metadata inside the super
// partition file, read fresh for every command as fastbootd does, edited with
// the LP builder (same extent allocation as a phone) and written back to every
// metadata slot. Logical partition contents live in super at their extents.
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  LP_PARTITION_ATTR_UPDATED,
  LP_SECTOR_SIZE,
  LP_TARGET_TYPE_LINEAR,
  MetadataBuilder,
  DEFAULT_PARTITION_ALIGNMENT,
  findPartition,
  flashPartitionTable,
  partitionExtents,
  partitionSize,
  partitionSlotSuffix,
  readEmptyImage,
  readSuperMetadata,
  slotNumberForSuffix,
  updatePartitionTable,
  bufferReader,
  type ByteWrite,
  type LpMetadata,
  type ReadAt,
} from '../../lp/index.js';
import { readFd } from '../../lp/file.js';
import { FastbootCommandError } from './errors.js';


export interface SuperHost {
  /** Path of the super partition file. */
  superPath: string;
  superName: string;
  superSize: number;
  slots: readonly string[];
  currentSlot(): string | undefined;
  virtualAb: boolean;
}

/** A piece of a logical byte range: where it lives in super, or nowhere (a ZERO extent). */
export interface MappedRange {
  /** Byte offset in super, or null for a ZERO extent (reads as zeros, writes are dropped). */
  physical: number | null;
  /** Offset within the requested range. */
  at: number;
  length: number;
}

export class DynamicPartitions {
  constructor(private readonly host: SuperHost) {}

  /** Metadata slot of the current boot slot ("_a" -> 0, "_b" -> 1, none -> 0). */
  get slotNumber(): number {
    return slotNumberForSuffix(this.host.currentSlot() ?? '');
  }

  /** fastbootd's UpdateAllPartitionMetadata writes one metadata slot per boot slot. */
  private get bootSlotCount(): number {
    return Math.max(1, this.host.slots.length);
  }

  private withFile<T>(flags: string, use: (fd: number) => T): T {
    const fd = openSync(this.host.superPath, flags);
    try {
      return use(fd);
    } finally {
      closeSync(fd);
    }
  }

  private reader(fd: number): ReadAt {
    return (offset, length) => readFd(fd, offset, length, this.host.superSize);
  }


  private write(writes: ByteWrite[]): void {
    this.withFile('r+', (fd) => {
      for (const w of writes) for (let done = 0; done < w.data.length; ) done += writeSync(fd, w.data, done, w.data.length - done, w.offset + done);
    });
  }

  /** The current slot's metadata, or undefined when super holds none (or it is damaged beyond its backups). */
  read(slot = this.slotNumber): LpMetadata | undefined {
    try {
      return this.withFile('r', (fd) => readSuperMetadata(this.reader(fd), slot));
    } catch {
      return undefined;
    }
  }

  /** Logical partition names of the current slot. */
  list(): string[] {
    return this.read()?.partitions.map((p) => p.name) ?? [];
  }

  /** Size in bytes of a logical partition of the current slot, or undefined when it does not exist. */
  size(name: string): number | undefined {
    const m = this.read();
    const p = m && findPartition(m, name);
    return p ? partitionSize(m, p) : undefined;
  }

  has(name: string): boolean {
    return this.size(name) !== undefined;
  }

  /** Where bytes [offset, offset + length) of a logical partition live in super. */
  map(name: string, offset: number, length: number): MappedRange[] {
    const m = this.read();
    const p = m && findPartition(m, name);
    if (!m || !p) throw new FastbootCommandError(`No such file or directory (logical partition '${name}' does not exist)`);
    const out: MappedRange[] = [];
    let start = 0;
    for (const e of partitionExtents(m, p)) {
      const bytes = e.numSectors * LP_SECTOR_SIZE;
      const from = Math.max(offset, start);
      const to = Math.min(offset + length, start + bytes);
      if (from < to) {
        const physical = e.targetType === LP_TARGET_TYPE_LINEAR ? e.targetData * LP_SECTOR_SIZE + (from - start) : null;
        out.push({ physical, at: from - offset, length: to - from });
      }
      start += bytes;
    }
    return out;
  }

  /** A builder on the current slot's metadata, as fastbootd's PartitionBuilder opens it. */
  private builder(): MetadataBuilder {
    const m = this.read();
    if (!m) throw new FastbootCommandError('Could not open super partition');
    return MetadataBuilder.fromMetadata(m, { abDevice: this.host.slots.length > 0, virtualAb: this.host.virtualAb });
  }

  /** UpdateAllPartitionMetadata: the same metadata into every boot slot's metadata copy. */
  private writeAllSlots(m: LpMetadata, failure: string): void {
    const writes = this.withFile('r', (fd) => {
      const read = this.reader(fd);
      const out: ByteWrite[] = [];
      for (let slot = 0; slot < this.bootSlotCount; slot++) {
        try {
          out.push(...updatePartitionTable(read, m, slot, { deviceSize: this.host.superSize }));
        } catch (err) {
          throw new FastbootCommandError(`${failure}: ${(err as Error).message}`);
        }
      }
      return out;
    });
    this.write(writes);
  }

  private exportOrFail(b: MetadataBuilder, failure: string): LpMetadata {
    try {
      return b.export();
    } catch (err) {
      throw new FastbootCommandError(`${failure}: ${(err as Error).message}`);
    }
  }

  create(name: string, size: number): string {
    const b = this.builder();
    if (b.findPartition(name)) throw new FastbootCommandError('Partition already exists');
    const p = b.addPartition(name);
    try {
      b.resizePartition(p, size);
    } catch {
      throw new FastbootCommandError('Not enough space for partition');
    }
    this.writeAllSlots(this.exportOrFail(b, 'Failed to write partition table'), 'Failed to write partition table');
    return 'Partition created';
  }

  delete(name: string): string {
    const b = this.builder();
    b.removePartition(name); // fastbootd deletes whatever exists and succeeds either way
    this.writeAllSlots(this.exportOrFail(b, 'Failed to write partition table'), 'Failed to write partition table');
    return 'Partition deleted';
  }

  resize(name: string, size: number): string {
    const b = this.builder();
    const p = b.findPartition(name);
    if (!p) throw new FastbootCommandError('Partition does not exist');
    p.attributes &= ~LP_PARTITION_ATTR_UPDATED; // cancels any snapshot of it
    try {
      b.resizePartition(p, size);
    } catch {
      throw new FastbootCommandError('Not enough space to resize partition');
    }
    this.writeAllSlots(this.exportOrFail(b, 'Failed to write partition table'), 'Failed to write partition table');
    return 'Partition resized';
  }

  /** Before flashing a logical partition fastbootd clears its UPDATED attribute (cancels its snapshot). */
  cancelSnapshot(name: string): void {
    const b = this.builder();
    const p = b.findPartition(name);
    if (!p || !(p.attributes & LP_PARTITION_ATTR_UPDATED)) return;
    p.attributes &= ~LP_PARTITION_ATTR_UPDATED;
    this.writeAllSlots(this.exportOrFail(b, 'Failed to write partition table'), 'Failed to write partition table');
  }

  /**
   * `update-super:NAME[:wipe]` with a super_empty image as the download, as
   * fastbootd does it: wipe (or no readable metadata) flashes the new table to
   * every slot; otherwise partitions of the other slot are carried over into the
   * new layout, which must be compatible.
   */
  updateSuper(superName: string, data: Buffer, wipe: boolean): string {
    let fresh: LpMetadata;
    try {
      fresh = readEmptyImage(bufferReader(data));
    } catch {
      throw new FastbootCommandError('Data is not a valid logical partition metadata image');
    }
    if (superName !== this.host.superName) {
      throw new FastbootCommandError(`Cannot find ${superName}, build may be missing broken or missing boot_devices`);
    }
    const slot = this.host.currentSlot();
    const current = slot ? `_${slot}` : '';
    const other = current === '' ? '' : current === '_a' ? '_b' : '_a';
    const old = this.read();
    if (wipe || !old) {
      this.flashTable(fresh, 'Unable to flash new partition table');
      return 'Successfully flashed partition table';
    }
    const keep = new Set<string>();
    for (const p of old.partitions) {
      if (current) {
        const suffix = partitionSlotSuffix(p.name);
        if (suffix === current || (suffix === other && this.host.virtualAb)) continue;
      }
      if (old.groups[p.groupIndex]!.name === 'cow') continue;
      keep.add(p.name);
    }
    keep.delete('scratch');
    let next = fresh;
    if (keep.size > 0) {
      const b = MetadataBuilder.fromMetadata(fresh, { abDevice: this.host.slots.length > 0, virtualAb: this.host.virtualAb });
      try {
        b.importPartitions(old, keep);
      } catch {
        throw new FastbootCommandError('Old partitions are not compatible with the new super layout; wipe needed');
      }
      next = this.exportOrFail(b, 'Unable to build new partition table; wipe needed');
    }
    this.writeAllSlots(next, 'Unable to write new partition table');
    return 'Successfully updated partition table';
  }

  /** liblp FlashPartitionTable onto the super file (geometry and every metadata slot). */
  flashTable(m: LpMetadata, failure: string): void {
    let writes: ByteWrite[];
    try {
      writes = flashPartitionTable(m, { deviceSize: this.host.superSize });
    } catch (err) {
      throw new FastbootCommandError(`${failure}: ${(err as Error).message}`);
    }
    this.write(writes);
  }

  /**
   * A factory layout when super holds no metadata: what `lpmake` makes for this
   * super (1 MiB alignment, 4096-byte blocks, 64 KiB metadata, one metadata slot
   * per boot slot) with one empty group.
   */
  formatIfEmpty(): boolean {
    if (this.read(0)) return false;
    const b = MetadataBuilder.create(
      [{ partitionName: this.host.superName, size: this.host.superSize, alignment: DEFAULT_PARTITION_ALIGNMENT, alignmentOffset: 0, logicalBlockSize: 4096 }],
      this.host.superName,
      65536,
      this.bootSlotCount,
    );
    if (this.host.virtualAb) b.setVirtualAbFlag();
    this.flashTable(b.export(), 'Unable to format super');
    return true;
  }
}
