// Opens a FastbootClient on a selected device, routing INFO/TEXT to an event sink.
import { openDevice, type DeviceSpec } from '../transport/open.js';
import { FastbootClient } from './client.js';
import type { EventSink } from './events.js';

export interface ConnectOptions {
  timeoutMs?: number;
  onEvent?: EventSink;
  /** -v: each command and reply, as a line, to this function (src/fastboot/verbose.ts). */
  verbose?: (line: string) => void;
}

export async function connectFastboot(spec: DeviceSpec, opts: ConnectOptions = {}): Promise<FastbootClient> {
  const opened = await openDevice(spec, { timeoutMs: opts.timeoutMs });
  const transport = opts.verbose ? (await import('./verbose.js')).verboseTransport(opened, opts.verbose) : opened;
  return new FastbootClient(transport, {
    timeoutMs: opts.timeoutMs,
    onInfo: (message) => opts.onEvent?.({ type: 'info', message }),
    onText: (message) => opts.onEvent?.({ type: 'text', message }),
  });
}
