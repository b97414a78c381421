// Boot images for `boot KERNEL [RAMDISK [SECOND]]` and `flash:raw`, as the AOSP
// client builds them (fastboot v35 LoadBootableImage / mkbootimg): a file that
// already starts with "ANDROID!" is sent as is (its command line replaced when
// --cmdline is given); anything else is a raw kernel wrapped in a header of the
// requested version (0..4). Like AOSP, the header's `id` digest stays zero
// (Debian's mkbootimg fills it; everything else matches it byte for byte).
import { readFile } from 'node:fs/promises';
import { BadInputError } from '../errors.js';

export const BOOT_MAGIC = 'ANDROID!';
/** sizeof(boot_img_hdr_v1) / v2 / v3: the v0-v2 header is written as a v2 struct. */
const HDR_V1_SIZE = 1648;
const HDR_V2_SIZE = 1660;
const HDR_V3_SIZE = 1580;
const HDR_V4_SIZE = 1584;
const V3_PAGE_SIZE = 4096;
const CMDLINE_V0 = { at: 64, size: 512 };
const CMDLINE_V3 = { at: 44, size: 1536 };

export interface BootImageLayout {
  /** --base (default 0x10000000). */
  base: number;
  kernelOffset: number;
  ramdiskOffset: number;
  secondOffset: number;
  tagsOffset: number;
  dtbOffset: number;
  pageSize: number;
  headerVersion: number;
  /** os_version word: version in the top 21 bits, patch level in the low 11. */
  osVersion: number;
  cmdline?: string;
  /** --dtb file (header version 2 only). */
  dtb?: string;
}

/** AOSP's defaults (FastBootTool::Main). */
export const DEFAULT_BOOT_LAYOUT: BootImageLayout = {
  base: 0x10000000,
  kernelOffset: 0x00008000,
  ramdiskOffset: 0x01000000,
  secondOffset: 0x00f00000,
  tagsOffset: 0x00000100,
  dtbOffset: 0x01100000,
  pageSize: 2048,
  headerVersion: 0,
  osVersion: 0,
};

/** --os-version MAJOR[.MINOR[.PATCH]] into an os_version word (keeps the patch level bits). */
export function withOsVersion(word: number, text: string): number {
  const parts = text.split('.');
  const nums = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (parts.length < 1 || parts.length > 3 || nums.some((n) => !(n >= 0 && n <= 0x7f))) {
    throw new BadInputError(`bad --os-version '${text}': expected MAJOR[.MINOR[.PATCH]], each 0..127`);
  }
  const [major = 0, minor = 0, patch = 0] = nums;
  return (((major << 25) | (minor << 18) | (patch << 11)) >>> 0) | (word & 0x7ff);
}

/** --os-patch-level YYYY-MM-DD into an os_version word (keeps the version bits). */
export function withOsPatchLevel(word: number, text: string): number {
  const m = /^(\d+)-(\d+)-(\d+)$/.exec(text);
  if (!m) throw new BadInputError(`bad --os-patch-level '${text}': expected YYYY-MM-DD`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  if (year < 2000 || year >= 2128) throw new BadInputError(`--os-patch-level '${text}': year out of range (2000..2127)`);
  if (month < 1 || month > 12) throw new BadInputError(`--os-patch-level '${text}': month out of range`);
  return ((word & ~0x7ff) | (((year - 2000) << 4) | month)) >>> 0;
}

const alignUp = (n: number, page: number) => Math.ceil(n / page) * page;

function writeCString(buf: Buffer, field: { at: number; size: number }, text: string, what: string): void {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length >= field.size) throw new BadInputError(`${what} too large: ${bytes.length} bytes (the header holds ${field.size - 1})`);
  bytes.copy(buf, field.at);
  buf[field.at + bytes.length] = 0;
}

/** Replaces the command line of a boot image in place (AOSP bootimg_set_cmdline). */
export function setBootCmdline(image: Buffer, cmdline: string): void {
  const version = image.readUInt32LE(40);
  writeCString(image, version >= 3 ? CMDLINE_V3 : CMDLINE_V0, cmdline, '--cmdline');
}

export interface BootParts {
  kernel: Buffer;
  ramdisk?: Buffer;
  second?: Buffer;
  dtb?: Buffer;
}

/** Builds a boot image from a raw kernel (AOSP mkbootimg in bootimg_utils.cpp). */
export function mkbootimg(parts: BootParts, layout: BootImageLayout): Buffer {
  const ramdisk = parts.ramdisk ?? Buffer.alloc(0);
  const second = parts.second ?? Buffer.alloc(0);
  const dtb = parts.dtb ?? Buffer.alloc(0);
  const v = layout.headerVersion;
  if (!Number.isInteger(v) || v < 0 || v > 4) throw new BadInputError(`--header-version ${v}: miflash builds boot image headers 0 to 4`);
  let out: Buffer;
  if (v >= 3) {
    if (second.length > 0 || dtb.length > 0) throw new BadInputError(`a second-stage bootloader and a dtb are not supported in a v${v} boot image`);
    const page = V3_PAGE_SIZE;
    const kernelActual = alignUp(parts.kernel.length, page);
    out = Buffer.alloc(page + kernelActual + alignUp(ramdisk.length, page));
    out.write(BOOT_MAGIC, 0, 'latin1');
    out.writeUInt32LE(parts.kernel.length, 8);
    out.writeUInt32LE(ramdisk.length, 12);
    out.writeUInt32LE(layout.osVersion >>> 0, 16);
    out.writeUInt32LE(v >= 4 ? HDR_V4_SIZE : HDR_V3_SIZE, 20);
    out.writeUInt32LE(v, 40);
    parts.kernel.copy(out, page);
    ramdisk.copy(out, page + kernelActual);
  } else {
    const page = layout.pageSize;
    if (!Number.isInteger(page) || page < 2048 || (page & (page - 1)) !== 0) {
      throw new BadInputError(`--page-size ${page}: must be a power of two of at least 2048 (the header must fit in the first page)`);
    }
    const kernelActual = alignUp(parts.kernel.length, page);
    const ramdiskActual = alignUp(ramdisk.length, page);
    const secondActual = alignUp(second.length, page);
    out = Buffer.alloc(alignUp(HDR_V1_SIZE, page) + kernelActual + ramdiskActual + secondActual + alignUp(dtb.length, page));
    const base = layout.base;
    const u32 = (n: number, at: number) => out.writeUInt32LE(n >>> 0, at);
    out.write(BOOT_MAGIC, 0, 'latin1');
    u32(parts.kernel.length, 8);
    u32(base + layout.kernelOffset, 12);
    u32(ramdisk.length, 16);
    u32(base + layout.ramdiskOffset, 20);
    u32(second.length, 24);
    u32(base + layout.secondOffset, 28);
    u32(base + layout.tagsOffset, 32);
    u32(page, 36);
    u32(v, 40);
    u32(layout.osVersion, 44);
    // AOSP copies its whole v2 header template, so dtb_addr (unrelocated) lands in the page padding of v0/v1 images too.
    out.writeBigUInt64LE(BigInt(layout.dtbOffset >>> 0), 1652);
    if (v === 1) u32(HDR_V1_SIZE, 1644);
    if (v === 2) {
      u32(HDR_V2_SIZE, 1644);
      u32(dtb.length, 1648);
      out.writeBigUInt64LE(BigInt((base + layout.dtbOffset) >>> 0), 1652);
    }
    parts.kernel.copy(out, page);
    ramdisk.copy(out, page + kernelActual);
    second.copy(out, page + kernelActual + ramdiskActual);
    dtb.copy(out, page + kernelActual + ramdiskActual + secondActual);
  }
  if (layout.cmdline) setBootCmdline(out, layout.cmdline);
  return out;
}

async function readPart(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new BadInputError(`cannot load '${path}': ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { code: 'input.image' });
  }
}

export interface LoadedBootImage {
  data: Buffer;
  /** True when miflash wrapped a raw kernel in a header (AOSP prints "creating boot image..."). */
  created: boolean;
}

/** AOSP LoadBootableImage: a boot image as is, or a raw kernel (+ ramdisk, second stage, dtb) wrapped in one. */
export async function loadBootableImage(kernelPath: string, ramdiskPath: string | undefined, secondPath: string | undefined, layout: BootImageLayout): Promise<LoadedBootImage> {
  const kernel = await readPart(kernelPath);
  if (kernel.length < HDR_V3_SIZE) throw new BadInputError(`cannot load '${kernelPath}': too short (${kernel.length} bytes; a kernel or boot image is larger)`, { code: 'input.image' });
  if (kernel.subarray(0, 8).toString('latin1') === BOOT_MAGIC) {
    if (layout.cmdline) setBootCmdline(kernel, layout.cmdline);
    if (ramdiskPath !== undefined) throw new BadInputError(`cannot boot a boot.img *and* ramdisk: '${kernelPath}' is already a boot image`);
    return { data: kernel, created: false };
  }
  const ramdisk = ramdiskPath === undefined ? undefined : await readPart(ramdiskPath);
  const second = secondPath === undefined ? undefined : await readPart(secondPath);
  let dtb: Buffer | undefined;
  if (layout.dtb !== undefined) {
    if (layout.headerVersion !== 2) throw new BadInputError(`--dtb is only supported with --header-version 2 (not ${layout.headerVersion})`);
    dtb = await readPart(layout.dtb);
  }
  return { data: mkbootimg({ kernel, ...(ramdisk ? { ramdisk } : {}), ...(second ? { second } : {}), ...(dtb ? { dtb } : {}) }, layout), created: true };
}
