// What AOSP `lpdump` prints (system/extras partition_tools, 2024): the text dump
// of one metadata copy, and the --json form (the DynamicPartitionsDeviceInfo
// proto printed by protobuf's JSON writer with whitespace: one space per level,
// uint64 values as strings, fields at their default value omitted).
import { MetadataBuilder, partitionBytes } from './builder.js';
import {
  LP_BLOCK_DEVICE_SLOT_SUFFIXED,
  LP_GROUP_SLOT_SUFFIXED,
  LP_HEADER_FLAG_VIRTUAL_AB_DEVICE,
  LP_PARTITION_ATTR_DISABLED,
  LP_PARTITION_ATTR_READONLY,
  LP_PARTITION_ATTR_SLOT_SUFFIXED,
  LP_PARTITION_ATTR_UPDATED,
  LP_SECTOR_SIZE,
  LP_TARGET_TYPE_LINEAR,
  LP_TARGET_TYPE_ZERO,
  type LpMetadata,
} from './format.js';

const flagString = (names: string[]): string => (names.length ? names.join(',') : 'none');

export function headerFlagString(flags: number): string {
  const names: string[] = [];
  if (flags & LP_HEADER_FLAG_VIRTUAL_AB_DEVICE) names.push('virtual_ab_device');
  for (let bit = 0; bit < 32; bit++) {
    const mask = (1 << bit) >>> 0;
    if (mask === LP_HEADER_FLAG_VIRTUAL_AB_DEVICE) continue;
    if ((flags >>> 0) & mask) names.push(`unknown_flag_bit_${bit}`);
  }
  return flagString(names);
}

export function attributeString(attrs: number): string {
  const names: string[] = [];
  if (attrs & LP_PARTITION_ATTR_READONLY) names.push('readonly');
  if (attrs & LP_PARTITION_ATTR_SLOT_SUFFIXED) names.push('slot-suffixed');
  if (attrs & LP_PARTITION_ATTR_UPDATED) names.push('updated');
  if (attrs & LP_PARTITION_ATTR_DISABLED) names.push('disabled');
  return flagString(names);
}

const suffixedString = (flags: number, bit: number): string => flagString(flags & bit ? ['slot-suffixed'] : []);

/** lpdump's PrintMetadata. */
export function formatMetadata(m: LpMetadata): string {
  const out: string[] = [];
  const line = (s: string): number => out.push(s);
  const rule = '------------------------';
  line(`Metadata version: ${m.header.majorVersion}.${m.header.minorVersion}`);
  line(`Metadata size: ${metadataSize(m)} bytes`);
  line(`Metadata max size: ${m.geometry.metadataMaxSize} bytes`);
  line(`Metadata slot count: ${m.geometry.metadataSlotCount}`);
  line(`Header flags: ${headerFlagString(m.header.flags)}`);
  line('Partition table:');
  line(rule);
  const layout: { name: string; device: string; offset: number; sectors: number }[] = [];
  for (const p of m.partitions) {
    line(`  Name: ${p.name}`);
    line(`  Group: ${m.groups[p.groupIndex]!.name}`);
    line(`  Attributes: ${attributeString(p.attributes)}`);
    line('  Extents:');
    let first = 0;
    for (let i = 0; i < p.numExtents; i++) {
      const e = m.extents[p.firstExtentIndex + i]!;
      let text = `    ${first} .. ${first + e.numSectors - 1} `;
      first += e.numSectors;
      if (e.targetType === LP_TARGET_TYPE_LINEAR) {
        const device = m.blockDevices[e.targetSource]!.partitionName;
        text += `linear ${device} ${e.targetData}`;
        layout.push({ name: p.name, device, offset: e.targetData, sectors: e.numSectors });
      } else if (e.targetType === LP_TARGET_TYPE_ZERO) text += 'zero';
      line(text);
    }
    line(rule);
  }
  layout.sort((a, b) => (a.device === b.device ? a.offset - b.offset : a.device < b.device ? -1 : 1));
  line('Super partition layout:');
  line(rule);
  for (const l of layout) line(`${l.device}: ${l.offset} .. ${l.offset + l.sectors}: ${l.name} (${l.sectors} sectors)`);
  line(rule);
  line('Block device table:');
  line(rule);
  for (const d of m.blockDevices) {
    line(`  Partition name: ${d.partitionName}`);
    line(`  First sector: ${d.firstLogicalSector}`);
    line(`  Size: ${d.size} bytes`);
    line(`  Flags: ${suffixedString(d.flags, LP_BLOCK_DEVICE_SLOT_SUFFIXED)}`);
    line(rule);
  }
  line('Group table:');
  line(rule);
  for (const g of m.groups) {
    line(`  Name: ${g.name}`);
    line(`  Maximum size: ${g.maximumSize} bytes`);
    line(`  Flags: ${suffixedString(g.flags, LP_GROUP_SLOT_SUFFIXED)}`);
    line(rule);
  }
  return out.join('\n') + '\n';
}

/** header_size + tables_size, as lpdump's "Metadata size". */
export function metadataSize(m: LpMetadata): number {
  return (
    m.header.headerSize + m.partitions.length * 52 + m.extents.length * 24 + m.groups.length * 48 + m.blockDevices.length * 64
  );
}

/** lpdump --dump-metadata-size: bytes before the first logical sector of super. */
export function reservedMetadataBytes(m: LpMetadata): number {
  return m.blockDevices[0]!.firstLogicalSector * LP_SECTOR_SIZE;
}

/** The proto lpdump --json prints on a host (no slot suffix, no device properties), in field order. */
export function deviceInfo(m: LpMetadata): Record<string, unknown> {
  const b = MetadataBuilder.fromMetadata(m);
  const partitions: Record<string, unknown>[] = [];
  const groups: Record<string, unknown>[] = [];
  for (const g of b.groups) {
    groups.push({ name: g.name, maximum_size: u64(g.maximumSize) });
    for (const p of b.listPartitionsInGroup(g.name)) {
      partitions.push({ name: p.name, group_name: g.name, is_dynamic: true, size: u64(partitionBytes(p)) });
    }
  }
  const blockDevices = m.blockDevices.map((d) => ({
    name: d.partitionName,
    size: u64(d.size),
    block_size: u64(m.geometry.logicalBlockSize),
    alignment: u64(d.alignment),
    alignment_offset: u64(d.alignmentOffset),
  }));
  return { partitions, groups, block_devices: blockDevices };
}

const u64 = (n: number): string | undefined => (n === 0 ? undefined : String(n));

/** lpdump --json output: protobuf JSON with whitespace (one space per level), default values omitted. */
export function formatJson(m: LpMetadata): string {
  return protoJson(deviceInfo(m)) + '\n';
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === false || v === '' || (Array.isArray(v) && v.length === 0);
}

function protoJson(value: unknown, level = 0): string {
  const pad = (n: number): string => '\n' + ' '.repeat(n);
  if (Array.isArray(value)) {
    return '[' + value.map((v) => pad(level + 1) + protoJson(v, level + 1)).join(',') + pad(level) + ']';
  }
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).filter(([, v]) => !isEmpty(v));
    if (fields.length === 0) return '{}';
    return '{' + fields.map(([k, v]) => `${pad(level + 1)}${JSON.stringify(k)}: ${protoJson(v, level + 1)}`).join(',') + pad(level) + '}';
  }
  return JSON.stringify(value);
}
