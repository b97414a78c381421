// One streamed pass over a file computing MD5 and zlib CRC-32 together, so a
// multi-GB image is read once for both md5sum.xml and crclist.txt.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import * as zlib from 'node:zlib';

const IO_SIZE = 1 << 20;

let table: Uint32Array | undefined;

/** zlib CRC-32; uses node:zlib's native crc32 when present (Node >= 20.15). */
export function crc32(data: Uint8Array, prev = 0): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  if (native) return native(data, prev) >>> 0;
  table ??= makeTable();
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

export interface FileDigest {
  size: number;
  md5: string;
  crc32: number;
}

export async function digestFile(path: string, onBytes?: (done: number) => void): Promise<FileDigest> {
  const fh = await open(path, 'r');
  try {
    const md5 = createHash('md5');
    const buf = Buffer.allocUnsafe(IO_SIZE);
    let crc = 0;
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      md5.update(chunk);
      crc = crc32(chunk, crc);
      size += bytesRead;
      onBytes?.(size);
    }
    return { size, md5: md5.digest('hex'), crc32: crc };
  } finally {
    await fh.close();
  }
}
