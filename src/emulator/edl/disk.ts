// Virtual disks for the emulated EDL device: one per LUN. MemoryDisk keeps only
// written 64 KiB pages (a multi-GB LUN costs nothing); FileDisk is DIR/lun<N>.img,
// created sparse at its full size.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface VirtualDisk {
  readonly sectorSize: number;
  /** NUM_DISK_SECTORS. */
  readonly sectors: number;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Uint8Array): void;
  close(): void;
}

const PAGE = 64 * 1024;

export class MemoryDisk implements VirtualDisk {
  private readonly pages = new Map<number, Buffer>();
  constructor(
    readonly sectorSize: number,
    readonly sectors: number,
  ) {}

  read(offset: number, length: number): Buffer {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    for (let done = 0; done < length; ) {
      const pos = offset + done;
      const page = Math.floor(pos / PAGE);
      const inPage = pos % PAGE;
      const n = Math.min(PAGE - inPage, length - done);
      this.pages.get(page)?.copy(out, done, inPage, inPage + n);
      done += n;
    }
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    checkRange(this, offset, data.length);
    for (let done = 0; done < data.length; ) {
      const pos = offset + done;
      const page = Math.floor(pos / PAGE);
      const inPage = pos % PAGE;
      const n = Math.min(PAGE - inPage, data.length - done);
      let p = this.pages.get(page);
      if (!p) {
        p = Buffer.alloc(PAGE);
        this.pages.set(page, p);
      }
      p.set(data.subarray(done, done + n), inPage);
      done += n;
    }
  }

  close(): void {}
}

export class FileDisk implements VirtualDisk {
  private fd: number;
  constructor(
    readonly path: string,
    readonly sectorSize: number,
    readonly sectors: number,
  ) {
    this.fd = openSync(path, existsSync(path) ? 'r+' : 'w+');
    if (fstatSync(this.fd).size !== sectorSize * sectors) ftruncateSync(this.fd, sectorSize * sectors);
  }

  read(offset: number, length: number): Buffer {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    for (let done = 0; done < length; ) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    checkRange(this, offset, data.length);
    for (let done = 0; done < data.length; ) done += writeSync(this.fd, data, done, data.length - done, offset + done);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function checkRange(d: VirtualDisk, offset: number, length: number): void {
  const size = d.sectors * d.sectorSize;
  if (offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`access ${offset}..${offset + length} outside the disk (${size} bytes)`);
  }
}

/** DIR/lun0.img … DIR/lun<N-1>.img. */
export function openFileDisks(dir: string, luns: number, sectorSize: number, sectors: number): FileDisk[] {
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: luns }, (_, i) => new FileDisk(join(dir, `lun${i}.img`), sectorSize, sectors));
}
