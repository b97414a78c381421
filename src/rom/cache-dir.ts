// Where miflash keeps what it remembers across runs (image digests, parsed
// plans, the resume journals in journals/, the per-device logs in logs/;
// bin/miflash.js keeps its code cache there too): $MIFLASH_CACHE_DIR, else
// $XDG_CACHE_HOME/miflash, else ~/.cache/miflash. Deleting it is always safe
// (without its journal, --resume skips nothing).
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The env var wins: tests and the benchmarks point it at a folder of their own. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MIFLASH_CACHE_DIR) return env.MIFLASH_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'miflash');
}
