// patch*.xml semantics on the host: only filename="DISK" patches are sent (in
// file order, after all programs, as qdl does); the others patch host copies of
// the GPT and are never sent. Values go to the device verbatim; the local
// evaluation below is for display and for checks against a known LUN size.
import { crc32 } from 'node:zlib';
import { evalExpr } from './expr.js';
import type { PatchEntry } from './rawprogram-xml.js';

export function diskPatches(all: PatchEntry[]): { patches: PatchEntry[]; hostPatches: number } {
  const patches = all.filter((p) => p.filename === 'DISK');
  return { patches, hostPatches: all.length - patches.length };
}

/**
 * Apply one patch to a byte-addressable LUN image (what a programmer does):
 * value (or CRC32 over the current content) written little-endian.
 */
export function applyPatch(p: PatchEntry, lun: { sectors: number; read(offset: number, length: number): Uint8Array; write(offset: number, data: Uint8Array): void }): void {
  const n = BigInt(lun.sectors);
  const at = Number(evalExpr(p.startSectorExpr, n)) * p.sectorSize + p.byteOffset;
  const v = p.valueParsed.kind === 'crc32'
    ? BigInt(crc32(lun.read(Number(evalExpr(p.valueParsed.start, n)) * p.sectorSize, Number(evalExpr(p.valueParsed.length, n)))))
    : evalExpr(p.valueParsed.expr, n);
  const bytes = new Uint8Array(p.sizeInBytes);
  for (let i = 0; i < p.sizeInBytes; i++) bytes[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  lun.write(at, bytes);
}
