// fastboot -> EDL: `oem edl` (Xiaomi / lk2nd), falling back to `reboot-edl`
// (some older Xiaomi aboots), then waiting for the 05c6:9008 device. Newer
// locked Xiaomi bootloaders refuse both; the device's own FAIL text is shown.
import { DeviceFailError, TransportClosedError } from '../errors.js';

/** The part of FastbootClient this needs (command() throws FastbootFailError on FAIL). */
export interface FastbootCommander {
  command(cmd: string, opts?: { timeoutMs?: number }): Promise<unknown>;
}

export interface RebootToEdlOptions<T> {
  /** Wait for the EDL device after the reboot (e.g. () => waitForEdlDevice({ timeoutMs: 60_000 })). */
  waitForEdl?: () => Promise<T>;
  onEvent?: (e: { type: 'try'; command: string } | { type: 'refused'; command: string; message: string } | { type: 'rebooting'; command: string } | { type: 'waiting' }) => void;
  timeoutMs?: number;
}

export interface RebootToEdlResult<T> {
  command: 'oem edl' | 'reboot-edl';
  device?: T;
}

const COMMANDS = ['oem edl', 'reboot-edl'] as const;

export async function rebootToEdl<T = unknown>(client: FastbootCommander, opts: RebootToEdlOptions<T> = {}): Promise<RebootToEdlResult<T>> {
  const refusals: string[] = [];
  for (const command of COMMANDS) {
    opts.onEvent?.({ type: 'try', command });
    try {
      await client.command(command, { timeoutMs: opts.timeoutMs ?? 5000 });
    } catch (err) {
      if (err instanceof TransportClosedError) {
        // The bootloader rebooted before it could answer: that is success.
      } else if (err instanceof DeviceFailError) {
        const message = (err as { deviceMessage?: string }).deviceMessage ?? err.message;
        refusals.push(`'${command}': ${message}`);
        opts.onEvent?.({ type: 'refused', command, message });
        continue;
      } else {
        throw err;
      }
    }
    opts.onEvent?.({ type: 'rebooting', command });
    if (!opts.waitForEdl) return { command };
    opts.onEvent?.({ type: 'waiting' });
    return { command, device: await opts.waitForEdl() };
  }
  throw new DeviceFailError(`the bootloader refused to reboot to EDL (${refusals.join('; ')})`, {
    code: 'edl.reboot-refused',
    hint: 'locked Xiaomi bootloaders usually refuse this; an EDL (deep-flash) cable or the board test point are the other ways into 05c6:9008 mode',
  });
}
