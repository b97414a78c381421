// Following a device through a reboot in the middle of a plan (Google
// `reboot-bootloader; sleep 5; flash radio …`): wait until the old link is
// gone (as AOSP's WaitForDisconnect), then poll the same address / USB serial
// until the device answers again, within a bounded time, and check it is the
// same phone (serialno) before anything is written to it.
import { AbortedError, MiflashError, TransportError } from '../errors.js';
import type { FastbootClient } from './client.js';
import { getvarOrUndefined } from './slots.js';
import type { Transport } from '../transport/transport.js';

export const DEFAULT_REBOOT_TIMEOUT_MS = 60_000;
/** AOSP polls once a second (`< waiting for any device >`); a little faster is still gentle on USB. */
export const RECONNECT_INTERVAL_MS = 500;
/** How long the old link may linger after the reboot's OKAY before we stop waiting for it to drop. */
export const DISCONNECT_WAIT_MS = 5_000;
/** UDP cannot tell a rebooting device from a quiet one; AOSP sleeps 1 s after `reboot fastboot` before reopening. */
export const UDP_SETTLE_MS = 1_000;

/**
 * Reads from the old link until it reports an error (closed, reset), at most
 * `maxMs`: reconnecting before the device has left would find the old one.
 */
export async function waitForDisconnect(transport: Transport, maxMs = DISCONNECT_WAIT_MS): Promise<boolean> {
  if (transport.kind === 'udp') {
    // UDP has no connection to lose: give the device the second AOSP gives it before looking again.
    await pause(Math.min(UDP_SETTLE_MS, maxMs));
    return false;
  }
  const end = Date.now() + maxMs;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) return false;
    try {
      await transport.read(1024, { timeoutMs: left });
    } catch (err) {
      // A timeout means the link is still up (the device has not left yet).
      if (err instanceof MiflashError && err.code === 'transport.timeout') return false;
      return true;
    }
  }
}

export interface ReconnectOptions {
  /** Opens a fresh client on the same device spec (same tcp/udp address, USB serial or port). */
  connect: () => Promise<FastbootClient>;
  timeoutMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
  /** getvar serialno before the reboot; a different answer afterwards is refused. */
  expectSerial?: string;
  /** How the device is named in messages. */
  deviceId: string;
  /** Called on each failed attempt (for "waiting for device" output). */
  onAttempt?: (attempt: number, err: unknown) => void;
}

/** Polls `connect` until it succeeds or `timeoutMs` passes; resolves to the new client. */
export async function reconnect(o: ReconnectOptions): Promise<FastbootClient> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_REBOOT_TIMEOUT_MS;
  const interval = o.intervalMs ?? RECONNECT_INTERVAL_MS;
  const started = Date.now();
  let attempt = 0;
  let last: unknown;
  for (;;) {
    if (o.signal?.aborted) throw new AbortedError(`aborted while waiting for ${o.deviceId} to come back`);
    attempt++;
    try {
      const client = await within(attemptOnce(o), Math.max(1, timeoutMs - (Date.now() - started)));
      if (client) return client;
      last = new TransportError('the last attempt was still connecting');
      break;
    } catch (err) {
      if (!(err instanceof TransportError) || err.code === 'transport.wrong-device') throw err;
      last = err;
      o.onAttempt?.(attempt, err);
    }
    const left = timeoutMs - (Date.now() - started);
    if (left <= 0) break;
    await pause(Math.min(interval, left), o.signal);
  }
  throw new TransportError(
    `${o.deviceId} did not come back within ${+(timeoutMs / 1000).toFixed(1)} s after the reboot (${attempt} attempts; last: ${last instanceof Error ? last.message : String(last)})`,
    {
      code: 'transport.reconnect-timeout',
      hint: 'check the device is in fastboot mode and connected, then run the plan again (raise the limit with --reboot-timeout SECONDS)',
    },
  );
}

async function attemptOnce(o: ReconnectOptions): Promise<FastbootClient> {
  const client = await o.connect();
  await checkSameDevice(client, o);
  return client;
}

/** The attempt's client, or undefined when `ms` passed first (a client that arrives later is closed). */
async function within(p: Promise<FastbootClient>, ms: number): Promise<FastbootClient | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    const out = await Promise.race([p, late]);
    if (out === undefined) void p.then((c) => c.close()).catch(() => {});
    return out;
  } finally {
    clearTimeout(timer);
  }
}

async function checkSameDevice(client: FastbootClient, o: ReconnectOptions): Promise<void> {
  if (o.expectSerial === undefined) return;
  let serial: string | undefined;
  try {
    serial = (await getvarOrUndefined(client, 'serialno'))?.trim();
  } catch (err) {
    await client.close().catch(() => {});
    throw err;
  }
  if (serial === o.expectSerial) return;
  await client.close().catch(() => {});
  throw new TransportError(
    `after the reboot ${o.deviceId} answers with serial number '${serial ?? '(none)'}', but the plan started on '${o.expectSerial}'; refusing to continue on another device`,
    { code: 'transport.wrong-device', hint: 'flash one device per address / USB port, or name the device by serial with -s' },
  );
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError('aborted while waiting for the device to come back'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
