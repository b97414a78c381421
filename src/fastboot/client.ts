// The fastboot protocol client: one command at a time over any Transport.
// Commands are checked (ASCII, ≤ 4096 bytes), every reply read has a timeout
// that restarts on INFO/TEXT, FAIL becomes a FastbootFailError naming the
// command, and download/upload run their data phase through the transfer loop.
import { AbortedError, BadInputError, TransportError, TransportTimeoutError } from '../errors.js';
import type { Payload } from '../sparse/descriptor.js';
import { DEFAULT_IO_TIMEOUT_MS, type Transport } from '../transport/transport.js';
import { FB_COMMAND_MAX, FB_DATA_MAX, FB_RESPONSE_MAX, hex8, ReplyMachine, type DataExpectation, type ReplyStep } from './response.js';
import { sendBytes, sendPayload, type TransferProgress } from './transfer.js';

export { FastbootFailError, FastbootProtocolError } from './errors.js';
export type { TransferProgress } from './transfer.js';

export interface FastbootClientOptions {
  /** Reply timeout in ms; restarts on every INFO/TEXT. Default 30 s (as AOSP). */
  timeoutMs?: number;
  onInfo?(line: string): void;
  onText?(text: string): void;
}

export interface CommandOptions {
  timeoutMs?: number;
}

export interface CommandResult {
  /** Text after OKAY. */
  message: string;
  /** INFO lines received before OKAY. */
  info: string[];
}

export interface DownloadOptions extends CommandOptions {
  onProgress?(p: TransferProgress): void;
  signal?: AbortSignal;
  /** Transfer-loop tuning (tests, benchmarks). */
  bufferSize?: number;
  poolSize?: number;
}

export type DownloadSource = Uint8Array | { path: string; payload: Payload };

export type RebootTarget = 'bootloader' | 'fastboot' | 'recovery' | 'edl';
export const REBOOT_TARGETS: readonly RebootTarget[] = ['bootloader', 'fastboot', 'recovery', 'edl'];

export interface ClientStats {
  /** Commands written, in order (for "nothing but getvars was sent" assertions). */
  commands: string[];
  /** Data-phase bytes sent to the device. */
  bytesSent: number;
  /** Data-phase bytes received from the device. */
  bytesReceived: number;
}

/** Extra time the client waits beyond the transport's own timeout before giving up on it. */
const GUARD_GRACE_MS = 2000;
/** Read size for replies: above FB_RESPONSE_MAX so oversized replies are detected, a multiple of every USB packet size. */
const REPLY_READ_SIZE = 1024;
/** Read size for upload/fetch data (AOSP reads 1 MiB at a time). */
const DATA_READ_SIZE = 1024 * 1024;

export class FastbootClient {
  readonly transport: Transport;
  readonly stats: ClientStats = { commands: [], bytesSent: 0, bytesReceived: 0 };
  private readonly timeoutMs: number;

  constructor(
    transport: Transport,
    private readonly opts: FastbootClientOptions = {},
  ) {
    this.transport = transport;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_IO_TIMEOUT_MS;
  }

  /** Sends one command and waits for OKAY. */
  async command(cmd: string, opts: CommandOptions = {}): Promise<CommandResult> {
    const machine = new ReplyMachine(cmd);
    await this.send(cmd, opts);
    const step = await this.awaitFinal(machine, opts);
    return { message: step.kind === 'okay' ? step.message : '', info: machine.info };
  }

  async getvar(name: string, opts?: CommandOptions): Promise<string> {
    return (await this.command(`getvar:${name}`, opts)).message;
  }

  /** `getvar:all`: one INFO line per variable, "NAME: VALUE". */
  async getvarAll(opts?: CommandOptions): Promise<Array<[string, string]>> {
    const { info } = await this.command('getvar:all', opts);
    return info.map(splitVarLine);
  }

  async download(source: DownloadSource, opts: DownloadOptions = {}): Promise<void> {
    const size = source instanceof Uint8Array ? source.length : source.payload.size;
    if (size > FB_DATA_MAX) {
      throw new BadInputError(`cannot download ${size} bytes in one piece: the protocol limit is ${FB_DATA_MAX} (use -S to split)`);
    }
    if (opts.signal?.aborted) throw new AbortedError();
    const cmd = `download:${hex8(size)}`;
    await this.send(cmd, opts);
    await this.awaitFinal(new ReplyMachine(cmd, { kind: 'exact', size }), opts);
    const sendOpts = {
      onProgress: opts.onProgress,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      bufferSize: opts.bufferSize,
      poolSize: opts.poolSize,
    };
    try {
      if (source instanceof Uint8Array) await sendBytes(this.transport, source, sendOpts);
      else await sendPayload(this.transport, source.path, source.payload, sendOpts);
    } catch (err) {
      throw withContext(err, `sending ${size} bytes for '${cmd}'`);
    }
    this.stats.bytesSent += size;
    await this.awaitFinal(new ReplyMachine(cmd), opts);
  }

  flash(partition: string, opts?: CommandOptions): Promise<CommandResult> {
    return this.command(`flash:${partition}`, opts);
  }

  erase(partition: string, opts?: CommandOptions): Promise<CommandResult> {
    return this.command(`erase:${partition}`, opts);
  }

  reboot(target?: RebootTarget, opts?: CommandOptions): Promise<CommandResult> {
    return this.command(target === undefined ? 'reboot' : `reboot-${target}`, opts);
  }

  setActive(slot: string, opts?: CommandOptions): Promise<CommandResult> {
    return this.command(`set_active:${slot}`, opts);
  }

  oem(args: string[], opts?: CommandOptions): Promise<CommandResult> {
    return this.command(['oem', ...args].join(' '), opts);
  }

  /** `flashing lock|unlock|lock_critical|unlock_critical|get_unlock_ability`. */
  flashing(sub: string, opts?: CommandOptions): Promise<CommandResult> {
    return this.command(`flashing ${sub}`, opts);
  }

  /** Boots the image previously downloaded. */
  boot(opts?: CommandOptions): Promise<CommandResult> {
    return this.command('boot', opts);
  }

  continue(opts?: CommandOptions): Promise<CommandResult> {
    return this.command('continue', opts);
  }

  /** `upload`: the device sends back what it has staged. */
  async upload(opts: CommandOptions & { maxSize?: number; onData?(chunk: Buffer): void } = {}): Promise<Buffer> {
    return this.receive('upload', { kind: 'upTo', max: opts.maxSize ?? FB_DATA_MAX }, opts);
  }

  /** `fetch:PART:0xOFFSET:0xSIZE` (fastbootd): reads part of a partition. */
  async fetch(partition: string, offset: number, size: number, opts: CommandOptions & { onData?(chunk: Buffer): void } = {}): Promise<Buffer> {
    if (offset < 0 || offset > FB_DATA_MAX || size < 0 || size > FB_DATA_MAX) {
      throw new BadInputError(`fetch ${partition}: offset ${offset} / size ${size} out of the 32-bit range the protocol allows`);
    }
    return this.receive(`fetch:${partition}:0x${hex8(offset)}:0x${hex8(size)}`, { kind: 'upTo', max: size }, opts);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private async receive(
    cmd: string,
    expect: DataExpectation,
    opts: CommandOptions & { onData?(chunk: Buffer): void },
  ): Promise<Buffer> {
    await this.send(cmd, opts);
    const step = await this.awaitFinal(new ReplyMachine(cmd, expect), opts);
    const size = step.kind === 'data' ? step.size : 0;
    const chunks: Buffer[] = [];
    let got = 0;
    while (got < size) {
      const chunk = await this.io(`receiving data for '${cmd}' (${got} of ${size} bytes)`, opts, (t) =>
        this.transport.read(Math.min(DATA_READ_SIZE, size - got), { timeoutMs: t }),
      );
      if (chunk.length > size - got) {
        throw new TransportError(`'${cmd}': device sent ${got + chunk.length} bytes, more than the ${size} it announced`, { code: 'fastboot.protocol' });
      }
      got += chunk.length;
      if (opts.onData) opts.onData(chunk);
      else chunks.push(chunk);
    }
    this.stats.bytesReceived += size;
    await this.awaitFinal(new ReplyMachine(cmd), opts);
    return opts.onData ? Buffer.alloc(0) : Buffer.concat(chunks, size);
  }

  private async send(cmd: string, opts: CommandOptions): Promise<void> {
    const bytes = encodeCommand(cmd);
    this.stats.commands.push(cmd);
    await this.io(`sending '${cmd}'`, opts, (t) => this.transport.write(bytes, { timeoutMs: t }));
  }

  /** Reads replies until OKAY or DATA; INFO/TEXT are reported and restart the timeout. */
  private async awaitFinal(machine: ReplyMachine, opts: CommandOptions): Promise<ReplyStep> {
    for (;;) {
      const packet = await this.io(`waiting for the reply to '${machine.command}'`, opts, (t) =>
        this.transport.read(REPLY_READ_SIZE, { timeoutMs: t }),
      );
      // A stray zero-length packet (USB ZLP) is not a reply.
      if (packet.length === 0) continue;
      const step = machine.feed(packet);
      if (step.kind === 'info') this.opts.onInfo?.(step.message);
      else if (step.kind === 'text') this.opts.onText?.(step.message);
      else return step;
    }
  }

  /**
   * Runs one transport operation with a timeout. The transport enforces it; the
   * guard only makes sure a misbehaving transport cannot hang the client.
   */
  private async io<T>(what: string, opts: CommandOptions, op: (timeoutMs: number) => Promise<T>): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const pending = op(timeoutMs);
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TransportTimeoutError(what, timeoutMs)), timeoutMs + GUARD_GRACE_MS);
    });
    try {
      return await Promise.race([pending, guard]);
    } catch (err) {
      pending.catch(() => {});
      throw withContext(err, what);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Validates and encodes a command: printable ASCII, no NUL, at most 4096 bytes. */
export function encodeCommand(cmd: string): Uint8Array {
  if (cmd.length === 0) throw new BadInputError('empty fastboot command');
  if (cmd.length > FB_COMMAND_MAX) {
    throw new BadInputError(`fastboot command is ${cmd.length} bytes, over the ${FB_COMMAND_MAX}-byte limit: ${JSON.stringify(cmd.slice(0, 40))}…`);
  }
  // eslint-disable-next-line no-control-regex
  const bad = /[^\x20-\x7e]/.exec(cmd);
  if (bad) {
    throw new BadInputError(`fastboot command contains a non-printable or non-ASCII character at position ${bad.index}: ${JSON.stringify(cmd.slice(0, 80))}`);
  }
  return Buffer.from(cmd, 'latin1');
}

/** Splits a `getvar all` INFO line ("partition-size:boot_a: 0x4000000") at its last ": ". */
export function splitVarLine(line: string): [string, string] {
  let at = line.lastIndexOf(': ');
  let skip = 2;
  if (at < 0) {
    at = line.lastIndexOf(':');
    skip = 1;
  }
  if (at < 0) return [line.trim(), ''];
  return [line.slice(0, at).trim(), line.slice(at + skip).trim()];
}

/**
 * Parses a numeric variable as AOSP does (trim; 0x prefix = hex; plain digits =
 * decimal). Returns undefined when it is not a number.
 */
export function parseFastbootNumber(value: string): number | undefined {
  const s = value.trim();
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(s)) n = Number.parseInt(s.slice(2), 16);
  else if (/^[0-9]+$/.test(s)) n = Number.parseInt(s, 10);
  else return undefined;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Prefixes a transport error with what the client was doing (keeps its class and code). */
function withContext(err: unknown, what: string): unknown {
  if (err instanceof TransportError && !err.message.startsWith(what) && !err.message.startsWith("'")) {
    err.message = `${what}: ${err.message}`;
  }
  return err;
}

export { FB_COMMAND_MAX, FB_RESPONSE_MAX };
