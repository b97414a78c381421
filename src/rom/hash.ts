// One streamed pass over a file computing MD5 and zlib CRC-32 together, so a
// multi-GB image is read once for both md5sum.xml and crclist.txt.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import * as zlib from 'node:zlib';

const IO_SIZE = 1 << 20;

/** zlib CRC-32 (native; package.json requires Node >= 20.15, where node:zlib has crc32). */
export function crc32(data: Uint8Array, prev = 0): number {
  return zlib.crc32(data, prev) >>> 0;
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
