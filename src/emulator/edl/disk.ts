// Virtual disks for the emulated EDL device: one per LUN. MemoryDisk keeps only
// written 64 KiB pages (a multi-GB LUN costs nothing); FileDisk is DIR/lun<N>.img,
// created sparse at its full size and kept sparse: zeroing a range deallocates
// it instead of writing zeros (a 256 GiB LUN allocates only what was written).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface VirtualDisk {
  readonly sectorSize: number;
  /** NUM_DISK_SECTORS. */
  readonly sectors: number;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Uint8Array): void;
  /** Make [offset, offset+length) read as zeros (Firehose <erase>). */
  zero(offset: number, length: number): void;
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

  zero(offset: number, length: number): void {
    checkRange(this, offset, length);
    for (let done = 0; done < length; ) {
      const pos = offset + done;
      const page = Math.floor(pos / PAGE);
      const inPage = pos % PAGE;
      const n = Math.min(PAGE - inPage, length - done);
      if (n === PAGE) this.pages.delete(page);
      else this.pages.get(page)?.fill(0, inPage, inPage + n);
      done += n;
    }
  }

  close(): void {}
}

/** A range whose tail after it is at most this big is zeroed by truncating and restoring the tail. */
const TAIL_RESTORE_MAX = 64 * 1024 * 1024;
const ZERO_SCAN = 1024 * 1024;

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

  /**
   * Deallocate instead of writing zeros: punch a hole (util-linux fallocate,
   * where the OS and file system have it); else cut the file at `offset`, grow
   * it back and restore what followed the range (when that tail is small, as
   * behind userdata); else overwrite only the pieces that are not zero already.
   */
  zero(offset: number, length: number): void {
    checkRange(this, offset, length);
    if (length === 0 || punchHole(this.path, offset, length)) return;
    const size = this.sectors * this.sectorSize;
    const tailAt = offset + length;
    if (size - tailAt <= TAIL_RESTORE_MAX) {
      const tail = this.read(tailAt, size - tailAt);
      ftruncateSync(this.fd, offset);
      ftruncateSync(this.fd, size);
      for (let at = 0; at < tail.length; at += ZERO_SCAN) {
        const piece = tail.subarray(at, Math.min(at + ZERO_SCAN, tail.length));
        if (!isZero(piece)) this.write(tailAt + at, piece);
      }
      return;
    }
    for (let at = 0; at < length; at += ZERO_SCAN) {
      const n = Math.min(ZERO_SCAN, length - at);
      if (!isZero(this.read(offset + at, n))) this.write(offset + at, Buffer.alloc(n));
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

let canPunch: boolean | undefined;

/** `fallocate --punch-hole`: the range reads as zeros and holds no blocks. False when unavailable. */
function punchHole(path: string, offset: number, length: number): boolean {
  if (canPunch === false) return false;
  const r = spawnSync('fallocate', ['--punch-hole', '--offset', String(offset), '--length', String(length), path], { stdio: 'ignore' });
  canPunch = r.status === 0;
  return canPunch;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += ZERO_SCAN) {
    const n = Math.min(ZERO_SCAN, b.length - i);
    if (b.compare(ZEROS, 0, n, i, i + n) !== 0) return false;
  }
  return true;
}
const ZEROS = Buffer.alloc(ZERO_SCAN);

function checkRange(d: VirtualDisk, offset: number, length: number): void {
  const size = d.sectors * d.sectorSize;
  if (offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`access ${offset}..${offset + length} outside the disk (${size} bytes)`);
  }
}

/** DIR/lun0.img … DIR/lun<N-1>.img, one per entry of `sectors` (NUM_DISK_SECTORS of each LUN). */
export function openFileDisks(dir: string, sectorSize: number, sectors: number[]): FileDisk[] {
  mkdirSync(dir, { recursive: true });
  return sectors.map((n, i) => new FileDisk(join(dir, `lun${i}.img`), sectorSize, n));
}
