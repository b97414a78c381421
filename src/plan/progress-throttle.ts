// Progress events are frequent; consumers need a few per second at most.
import type { PlanEvent } from './events.js';

/** At most this many `progress` (and, separately, `verify`) events per second per device. */
export const PROGRESS_MAX_PER_SECOND = 10;

/** Drops progress/verify events that come sooner than 1/PROGRESS_MAX_PER_SECOND after the last one of the same name. */
export function progressThrottle(now: () => number = () => performance.now()): (e: PlanEvent) => boolean {
  const gap = 1000 / PROGRESS_MAX_PER_SECOND;
  const last = { progress: -Infinity, verify: -Infinity };
  return (e) => {
    if (e.event !== 'progress' && e.event !== 'verify') return true;
    const t = now();
    if (t - last[e.event] < gap) return false;
    last[e.event] = t;
    return true;
  };
}
