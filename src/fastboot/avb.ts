// What the AOSP client (v35 fastboot.cpp flash_buf) does to an image on the
// host before flashing it, expressed on download payloads (nothing is copied
// to a temporary file):
//  - copy_avb_footer: a raw image that ends in an AVB footer and is smaller
//    than its (non-logical) partition is sent padded to the partition size
//    with the footer repeated at the partition's end, where the bootloader
//    looks for it;
//  - rewrite_vbmeta_buffer: --disable-verity / --disable-verification set bit
//    0 / 1 of the vbmeta flags (big-endian u32 at offset 120 of the vbmeta
//    struct, so byte 123), in a vbmeta image or in the vbmeta a boot image
//    carries behind its footer when the device has no vbmeta partition.
import { open } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import type { Payload, Segment } from '../sparse/descriptor.js';
import { segmentLength } from '../sparse/descriptor.js';

export const AVB_FOOTER_SIZE = 64;
const AVB_FOOTER_MAGIC = 'AVBf';
const AVB_MAGIC = 'AVB0';
/** The low byte of the big-endian flags word at offset 120 of the vbmeta struct. */
export const VBMETA_FLAGS_BYTE = 123;
/** Smaller than the vbmeta struct: AOSP leaves the image alone. */
const VBMETA_MIN_SIZE = 256;

export const FLAG_DISABLE_VERITY = 0x01;
export const FLAG_DISABLE_VERIFICATION = 0x02;

/** v35 is_vbmeta_partition: the name the user gave ends in vbmeta, vbmeta_a or vbmeta_b (e.g. guest_vbmeta_a in a VM). */
export function isVbmetaPartition(name: string): boolean {
  return /(vbmeta|vbmeta_a|vbmeta_b)$/.test(name);
}

/** The image's last 64 bytes when they are an AVB footer. */
export async function readAvbFooter(path: string, size: number): Promise<Buffer | undefined> {
  if (size < AVB_FOOTER_SIZE) return undefined;
  const footer = await readAt(path, size - AVB_FOOTER_SIZE, AVB_FOOTER_SIZE);
  return footer.toString('latin1', 0, 4) === AVB_FOOTER_MAGIC ? footer : undefined;
}

/** AvbFooter.vbmeta_offset: big-endian u64 after magic, two u32 versions and original_image_size. */
export function footerVbmetaOffset(footer: Buffer): number {
  const v = footer.readBigUInt64BE(20);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** The whole file as one payload. */
export function wholeFile(size: number): Payload {
  return { size, segments: size > 0 ? [{ kind: 'file', offset: 0, length: size }] : [] };
}

/**
 * copy_avb_footer's output, byte for byte: the image as it is, zeros up to
 * partitionSize - 64, then the footer. (AOSP writes the whole image to a
 * temporary file and then the footer at partitionSize - 64, so the original
 * footer stays where it was unless the new one overlaps it.)
 */
export function paddedWithFooter(imageSize: number, partitionSize: number, footer: Buffer): Payload {
  if (partitionSize <= imageSize) throw new RangeError('paddedWithFooter: the partition must be larger than the image');
  const footerAt = partitionSize - AVB_FOOTER_SIZE;
  const kept = Math.min(imageSize, footerAt);
  const segments: Segment[] = [];
  if (kept > 0) segments.push({ kind: 'file', offset: 0, length: kept });
  if (footerAt > kept) segments.push({ kind: 'zeros', length: footerAt - kept });
  segments.push({ kind: 'bytes', data: Uint8Array.from(footer) });
  return { size: partitionSize, segments };
}

/** The payload with the byte at `offset` replaced by `value` (the segment holding it is split). */
export function withByte(p: Payload, offset: number, value: number): Payload {
  if (offset < 0 || offset >= p.size) throw new RangeError(`withByte: offset ${offset} outside 0..${p.size - 1}`);
  const out: Segment[] = [];
  let at = 0;
  for (const s of p.segments) {
    const len = segmentLength(s);
    if (offset < at || offset >= at + len) {
      out.push(s);
    } else {
      const i = offset - at;
      const before = slice(s, 0, i);
      const after = slice(s, i + 1, len);
      if (before) out.push(before);
      out.push({ kind: 'bytes', data: Uint8Array.of(value & 0xff) });
      if (after) out.push(after);
    }
    at += len;
  }
  return { size: p.size, segments: out };
}

function slice(s: Segment, from: number, to: number): Segment | undefined {
  if (to <= from) return undefined;
  if (s.kind === 'bytes') return { kind: 'bytes', data: s.data.subarray(from, to) };
  if (s.kind === 'zeros') return { kind: 'zeros', length: to - from };
  return { kind: 'file', offset: s.offset + from, length: to - from };
}

/** The byte the payload holds at `offset`, reading the file for a file segment. */
export async function byteAt(path: string, p: Payload, offset: number): Promise<number> {
  let at = 0;
  for (const s of p.segments) {
    const len = segmentLength(s);
    if (offset >= at && offset < at + len) {
      if (s.kind === 'bytes') return s.data[offset - at]!;
      if (s.kind === 'zeros') return 0;
      return (await readAt(path, s.offset + (offset - at), 1))[0]!;
    }
    at += len;
  }
  throw new RangeError(`byteAt: offset ${offset} outside 0..${p.size - 1}`);
}

/**
 * Where the vbmeta struct to patch starts: 0 in a vbmeta image, the footer's
 * vbmeta_offset in a boot image. Refuses, as AOSP dies, when the footer or
 * the AVB0 magic is missing; undefined when the image is too small to hold
 * a vbmeta struct (AOSP then flashes it unchanged).
 */
export async function vbmetaStructOffset(path: string, size: number, inBoot: boolean, partition: string): Promise<number | undefined> {
  if (size < VBMETA_MIN_SIZE) return undefined;
  let offset = 0;
  if (inBoot) {
    const footer = await readAvbFooter(path, size);
    if (!footer) {
      throw new BadInputError(`${path} (partition ${partition}): no AVB footer at offset ${size - AVB_FOOTER_SIZE}, so the vbmeta inside the boot image cannot get --disable-verity/--disable-verification`, {
        code: 'input.vbmeta',
        hint: 'the device has no vbmeta partition; flash a boot image built with AVB (BOARD_AVB_ENABLE), or drop the option',
      });
    }
    offset = footerVbmetaOffset(footer);
  }
  const magic = offset + 4 <= size ? (await readAt(path, offset, 4)).toString('latin1') : '';
  if (magic !== AVB_MAGIC) {
    throw new BadInputError(`${path} (partition ${partition}): no vbmeta struct (AVB0) at offset ${offset}, so --disable-verity/--disable-verification cannot be applied`, {
      code: 'input.vbmeta',
      hint: 'flash a vbmeta image, or drop the option',
    });
  }
  return offset;
}

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(length);
    const { bytesRead } = await fh.read(b, 0, length, offset);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
