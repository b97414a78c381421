// Progress events emitted by device operations and rendered by src/ui. A step
// is one AOSP-style status line: "Sending 'boot_a' (4096 KB)" ... "OKAY [0.012s]".

export type StepEvent =
  | { type: 'step-start'; id: number; label: string; bytesTotal?: number }
  | { type: 'step-progress'; id: number; bytesDone: number; bytesTotal: number; rateBytesPerSec: number }
  | { type: 'step-done'; id: number; label: string; elapsedMs: number }
  | { type: 'step-fail'; id: number; label: string; elapsedMs: number; error: string };

export type DeviceEvent =
  | StepEvent
  /** An INFO line from the device ("(bootloader) ..."). */
  | { type: 'info'; message: string }
  /** TEXT from the device, printed verbatim. */
  | { type: 'text'; message: string }
  | { type: 'warning'; message: string };

export type EventSink = (e: DeviceEvent) => void;

let nextStepId = 1;

/** Runs `fn` as one step: start, then done or fail, with its duration. */
export async function step<T>(
  sink: EventSink | undefined,
  label: string,
  fn: (progress: (bytesDone: number, bytesTotal: number, rateBytesPerSec: number) => void) => Promise<T>,
  bytesTotal?: number,
): Promise<T> {
  const id = nextStepId++;
  const started = performance.now();
  sink?.({ type: 'step-start', id, label, bytesTotal });
  try {
    const result = await fn((bytesDone, total, rateBytesPerSec) =>
      sink?.({ type: 'step-progress', id, bytesDone, bytesTotal: total, rateBytesPerSec }),
    );
    sink?.({ type: 'step-done', id, label, elapsedMs: performance.now() - started });
    return result;
  } catch (err) {
    sink?.({ type: 'step-fail', id, label, elapsedMs: performance.now() - started, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}
