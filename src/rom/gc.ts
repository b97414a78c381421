// A young-generation collection on demand. Streaming gigabytes through zlib
// allocates a fresh output buffer per inflate call; V8 counts those only as
// external memory and collects them once ~64 MiB have piled up, which alone
// would take peak RSS past its budget (96 MiB). Collecting the young
// generation every few MiB keeps that garbage small for ~1 ms a time.
// The collector is reached the only way Node offers without a command-line
// flag: enabling --expose-gc for one fresh context. Unavailable = no-op.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (opts?: { type?: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

function collector(): Gc | null {
  if (gc !== undefined) return gc;
  gc = (globalThis as { gc?: Gc }).gc ?? null;
  if (gc) return gc;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  } catch {
    gc = null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return gc;
}

/** Calls a minor GC after every `every` bytes counted. */
export function garbageMeter(every: number): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every) return;
    since = 0;
    collector()?.({ type: 'minor' });
  };
}
