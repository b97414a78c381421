// Shared pieces of the .sh and .bat front ends that are not the engine's: the
// MiFlash mode a script's file name means, and miflash's failure policy for a
// device operation the vendor script does not check.
import type { PlanMode, PlanStep } from '../../plan/schema.js';

/** Mode from the script's file name (MiFlash's three modes, §9). */
export function modeFromName(name: string): PlanMode {
  const file = name.replace(/^.*[\\/]/, '').replace(/\.(sh|bat|cmd)$/i, '');
  // Corpus copies carry a provenance prefix (`xiaomi-land-miui8-flash_all_lock`): the in-package name is the tail.
  const m = /(?:^|[-_.])(flash_all(?:_except_storage|_except_data_storage|_except_data|_lock_crc|_lock)?|flash-all)$/.exec(file);
  const base = m ? m[1] : file;
  switch (base) {
    case 'flash_all':
    case 'flash-all':
      return 'clean';
    case 'flash_all_except_storage':
    case 'flash_all_except_data_storage':
    case 'flash_all_except_data':
      return 'keep-data';
    case 'flash_all_lock':
      return 'lock';
    case 'flash_all_lock_crc':
      return 'lock-crc';
    default:
      return 'other';
  }
}

type Failure = Pick<PlanStep, 'onFailure' | 'message' | 'vendorUnchecked'>;

/**
 * Failure policy for a step the vendor does not check (§6): a failed flash,
 * format, set_active, update or wipe can leave a half-written boot chain, so
 * it aborts; erase, reboot and oem failures are reported and the run goes on.
 */
export function uncheckedPolicy(kind: PlanStep['kind']): Failure {
  const abort = ['flash', 'format', 'set-active', 'update', 'wipe'].includes(kind);
  return { onFailure: abort ? 'abort' : 'ignore', vendorUnchecked: true };
}
