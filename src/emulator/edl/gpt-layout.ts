// The emulated device's own partition tables (`edl emulate --gpt`): on every
// blank LUN, a GPT shaped like a Xiaomi UFS phone's (boot loaders on LUN 1/2,
// A/B images on LUN 4, modem data on LUN 5, userdata growing to the end of
// LUN 0). An eMMC device gets everything on its one LUN.
import { buildGpt, decodeGptHeader, type GptLayoutEntry } from '../../edl/gpt.js';
import type { VirtualDisk } from './disk.js';

type Part = [name: string, kib: number];

/** Sizes in KiB; 0 = grow to the end of the LUN (last entry only). */
const UFS_LAYOUT: Part[][] = [
  [['ssd', 8], ['misc', 1024], ['keystore', 512], ['frp', 512], ['devinfo', 4], ['persist', 32768], ['metadata', 16384], ['super', 9 * 1024 * 1024], ['userdata', 0]],
  [['xbl_a', 3584], ['xbl_config_a', 512]],
  [['xbl_b', 3584], ['xbl_config_b', 512]],
  [['cdt', 128], ['ddr', 1024]],
  [
    ['boot_a', 98304], ['boot_b', 98304], ['dtbo_a', 24576], ['dtbo_b', 24576], ['vbmeta_a', 64], ['vbmeta_b', 64],
    ['abl_a', 1024], ['abl_b', 1024], ['tz_a', 4096], ['tz_b', 4096], ['modem_a', 262144], ['modem_b', 262144], ['secdata', 28],
  ],
  [['modemst1', 3072], ['modemst2', 3072], ['fsg', 3072], ['fsc', 128]],
];

function layoutFor(memory: 'ufs' | 'emmc', lun: number): Part[] {
  if (memory === 'ufs') return UFS_LAYOUT[lun] ?? [];
  if (lun !== 0) return [];
  // eMMC: everything on the user area, userdata last.
  const all = UFS_LAYOUT.slice(1).flat();
  const lun0 = UFS_LAYOUT[0]!;
  return [...all, ...lun0];
}

/** Partitions packed from the first usable sector, each 1 MiB aligned; the 0-sized one grows. */
export function defaultLayout(memory: 'ufs' | 'emmc', lun: number, sectorSize: number, diskSectors: number): GptLayoutEntry[] {
  const parts = layoutFor(memory, lun);
  const align = Math.max(1, (1024 * 1024) / sectorSize);
  let at = align;
  const out: GptLayoutEntry[] = [];
  for (const [name, kib] of parts) {
    const sectors = Math.ceil((kib * 1024) / sectorSize);
    out.push({ name, firstLba: at, sectors });
    at = Math.ceil((at + sectors) / align) * align;
  }
  const grow = out.find((p) => p.sectors === 0);
  // A LUN too small for the fixed partitions keeps no table rather than a wrong one.
  if (at >= diskSectors - 64 || (grow && grow.firstLba >= diskSectors - 64)) return [];
  return out;
}

/**
 * Write the default table on every LUN that has none (no "EFI PART" at LBA 1
 * nor at the last sector). Returns the LUNs that got one.
 */
export function createDefaultGpts(disks: VirtualDisk[], memory: 'ufs' | 'emmc'): number[] {
  const created: number[] = [];
  disks.forEach((disk, lun) => {
    const ss = disk.sectorSize;
    const hasPrimary = decodeGptHeader(disk.read(ss, ss)) !== undefined;
    const hasBackup = decodeGptHeader(disk.read((disk.sectors - 1) * ss, ss)) !== undefined;
    if (hasPrimary || hasBackup) return;
    const partitions = defaultLayout(memory, lun, ss, disk.sectors);
    if (partitions.length === 0) return;
    const gpt = buildGpt({ sectorSize: ss, diskSectors: disk.sectors, partitions, diskGuid: undefined });
    disk.write(0, gpt.primary);
    disk.write(disk.sectors * ss - gpt.backup.length, gpt.backup);
    created.push(lun);
  });
  return created;
}
