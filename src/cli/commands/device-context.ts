// What every device command shares: selecting the device(s) from -s / --all /
// $ANDROID_SERIAL, connecting, rendering events, printing results, Ctrl-C,
// and a DeviceLink that can follow the device through a reboot into
// fastbootd (reboot fastboot, update with dynamic partitions).
import type { Command } from 'commander';
import type { FastbootClient } from '../../fastboot/client.js';
import type { DeviceEvent } from '../../fastboot/events.js';
import type { DeviceLink } from '../../fastboot/link.js';
import type { DeviceSpec } from '../../transport/open.js';

export interface GlobalOptions {
  serial: string[];
  all?: boolean;
  json?: boolean;
  sparseLimit?: string;
  timeout: string;
  /** -v: print the conversation on stderr. */
  verbose?: boolean;
  /** --set-active[=SLOT]: '' (or true) = the --slot given, else the current slot. */
  setActive?: string | boolean;
}

/** Commands AOSP runs as deferred tasks, after its set_active: the slot is switched before them. */
const SET_ACTIVE_FIRST = new Set(['reboot', 'reboot-bootloader', 'wipe', 'activate']);

export interface DeviceContext {
  spec: DeviceSpec;
  name: string;
  /** The client at the start; after a reboot into fastbootd read `link.client`. */
  client: FastbootClient;
  link: DeviceLink;
  emit(e: DeviceEvent): void;
  globals: GlobalOptions;
  /** Prints one result line (stdout), prefixed with the device when several are in play. */
  print(line: string, json: Record<string, unknown>): void;
}

/** Selects the device(s) from -s/--all/$ANDROID_SERIAL, connects, runs `fn` on each in turn. */
export async function forEachDevice(cmd: Command, fn: (d: DeviceContext) => Promise<void>, opts: { quietInfo?: boolean } = {}): Promise<void> {
  quietOnClosedStdout();
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const [{ selectDevices, formatDeviceSpec }, { connectFastboot }, { createRenderer }, { BadInputError }, { DeviceLink }] = await Promise.all([
    import('../../transport/open.js'),
    import('../../fastboot/connect.js'),
    import('../../ui/render.js'),
    import('../../errors.js'),
    import('../../fastboot/link.js'),
  ]);
  const timeoutMs = Number(globals.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new BadInputError(`--timeout '${globals.timeout}': expected a positive number of milliseconds`);
  const specs = await selectDevices({ serials: globals.serial ?? [], all: globals.all }).catch(async (err: unknown) => {
    // AOSP open_device(): with no USB device, the network devices `connect` stored (the last that answers).
    const stored = globals.all ? undefined : await connectedFallback(err, timeoutMs);
    if (!stored) throw err;
    return [stored];
  });
  const renderer = await createRenderer({ json: globals.json });
  const several = specs.length > 1;
  try {
    for (const spec of specs) {
      const name = formatDeviceSpec(spec);
      // Several devices: name the device (a label prefix for people, a field for programs).
      const emit = (e: DeviceEvent) =>
        opts.quietInfo && e.type === 'info' ? undefined : renderer.event(!several ? e : globals.json ? ({ ...e, device: name } as unknown as DeviceEvent) : prefixEvent(e, name));
      const verbose = globals.verbose ? (line: string) => process.stderr.write(`${several ? `[${name}] ` : ''}${line}\n`) : undefined;
      const client = await connectFastboot(spec, { timeoutMs, onEvent: emit, ...(verbose ? { verbose } : {}) });
      const print = (line: string, json: Record<string, unknown>) => {
        renderer.stop();
        if (globals.json) process.stdout.write(JSON.stringify(several ? { device: name, ...json } : json) + '\n');
        else process.stdout.write((several ? `${name}\t` : '') + line + '\n');
      };
      const opened: FastbootClient[] = [client];
      const link = new DeviceLink(client, {
        deviceId: name,
        reopen: () => connectFastboot(spec, { timeoutMs, onEvent: emit, ...(verbose ? { verbose } : {}) }),
        onEvent: emit,
        onClient: (c) => {
          opened.push(c);
        },
      });
      try {
        // v35 resolves --set-active before any command (its getvars come first on the wire) and sends it after them.
        const active = globals.setActive === undefined ? undefined : await nextActiveSlot(client, globals.setActive, (cmd.opts() as { slot?: string }).slot);
        const setActive = async (): Promise<void> => {
          if (active === undefined) return;
          const { step } = await import('../../fastboot/events.js');
          await step(emit, `Setting current slot to '${active}'`, () => link.client.setActive(active).then(() => {}));
        };
        if (SET_ACTIVE_FIRST.has(cmd.name())) await setActive();
        await fn({ spec, name, client, link, emit, globals, print });
        if (!SET_ACTIVE_FIRST.has(cmd.name())) await setActive();
      } finally {
        for (const c of opened) await c.close().catch(() => {});
      }
    }
  } finally {
    renderer.stop();
  }
}

/**
 * The slot `--set-active` makes active (v35 FastBootTool::Main): the slot it
 * names, else the --slot option, else the device's current slot — and
 * nothing when the device does not say (AOSP then drops --set-active).
 */
async function nextActiveSlot(client: FastbootClient, value: string | boolean, slotOption: string | undefined): Promise<string | undefined> {
  const [{ resolveSlotOption, getvarOrUndefined }, { BadInputError }] = await Promise.all([import('../../fastboot/slots.js'), import('../../errors.js')]);
  let wanted = typeof value === 'string' ? value : '';
  if (wanted === '' && slotOption) wanted = slotOption;
  if (wanted === '') {
    const current = (await getvarOrUndefined(client, 'current-slot'))?.trim().replace(/^_/, '');
    if (!current) return undefined;
    wanted = current;
  }
  const slot = await resolveSlotOption(client, wanted);
  if (slot === 'all' || slot === '') throw new BadInputError(`--set-active: '${wanted}' is not one slot; use a, b or other`);
  return slot;
}

/** The device AOSP's open_device() falls back to when `err` says no USB device was found: the last stored `connect` address that answers. */
export async function connectedFallback(err: unknown, timeoutMs: number): Promise<DeviceSpec | undefined> {
  const { TransportError } = await import('../../errors.js');
  if (!(err instanceof TransportError) || err.code !== 'transport.no-device') return undefined;
  const { readConnected, parseNetworkAddress } = await import('../../fastboot/connected.js');
  const { openDevice } = await import('../../transport/open.js');
  let found: DeviceSpec | undefined;
  for (const address of readConnected()) {
    let spec: DeviceSpec;
    try {
      spec = parseNetworkAddress(address);
    } catch {
      continue; // a line another tool wrote that is not an address
    }
    const t = await openDevice(spec, { timeoutMs: Math.min(timeoutMs, 2000) }).catch(() => undefined);
    if (!t) continue;
    await t.close().catch(() => {});
    found = spec;
  }
  return found;
}

function prefixEvent(e: DeviceEvent, name: string): DeviceEvent {
  if (e.type === 'step-start' || e.type === 'step-done' || e.type === 'step-fail') return { ...e, label: `[${name}] ${e.label}` };
  if (e.type === 'info' || e.type === 'warning') return { ...e, message: `[${name}] ${e.message}` };
  return e;
}

/** Ctrl-C aborts the transfer between buffers; a second Ctrl-C exits at once. */
export async function withCtrlC<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const onSigint = () => {
    if (ctl.signal.aborted) process.exit(130);
    process.stderr.write('\nmiflash: stopping after the current buffer (Ctrl-C again to exit now)\n');
    ctl.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(ctl.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export async function checkReadable(path: string): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const { BadInputError } = await import('../../errors.js');
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message);
    throw new BadInputError(`cannot read image ${path}: ${why}`, {
      code: 'input.image',
      ...(code === 'ENOENT' ? { hint: `usage: miflash flash PARTITION IMAGE (the path is relative to ${process.cwd()})` } : {}),
    });
  }
  if (!st.isFile()) throw new BadInputError(`${path} is not a regular file`);
}

/** `miflash getvar all | head`: a closed stdout ends the run quietly, as it does for other CLI tools. */
export function quietOnClosedStdout(): void {
  process.stdout.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
