// Typed errors of the EDL path. Each names the step, the device's own words
// (Firehose <log> lines, Sahara status names) and what the user can do.
import { AuthRequiredError, BadInputError, DeviceFailError, TransportError } from '../errors.js';

/** The Sahara boot ROM refused the upload (END_OF_IMAGE with a non-zero status, bad request). */
export class SaharaError extends DeviceFailError {
  constructor(message: string, opts: { code?: string; hint?: string } = {}) {
    super(message, { code: opts.code ?? 'edl.sahara', hint: opts.hint });
  }
}

/** The peer broke the Sahara / Firehose framing (wrong length, unknown packet, garbage). */
export class EdlProtocolError extends TransportError {
  constructor(message: string, opts: { hint?: string } = {}) {
    super(message, { code: 'edl.protocol', hint: opts.hint });
  }
}

/** A Firehose command answered NAK. `logs` are the device's <log> lines for that command, verbatim. */
export class FirehoseNakError extends DeviceFailError {
  readonly tag: string;
  readonly logs: string[];
  constructor(tag: string, what: string, logs: string[], opts: { hint?: string } = {}) {
    const said = logs.length > 0 ? `; device said: ${logs.map((l) => JSON.stringify(l)).join(' | ')}` : '';
    super(`Firehose <${tag}> ${what} was refused (NAK)${said}`, { code: 'edl.firehose.nak', hint: opts.hint });
    this.tag = tag;
    this.logs = logs;
  }
}

export const EDL_AUTH_MESSAGE =
  'EDL authentication required: this phone\'s programmer only accepts "nop" and "sig" until it is authorised by Xiaomi ' +
  '(authorised Mi account / service centre). miflash does not and will not bypass that check.';

export const EDL_AUTH_HINT =
  'flash with fastboot if the bootloader is unlocked, use Xiaomi\'s official MiFlash with an authorised account, ' +
  'or contact a Xiaomi service centre';

/** The device's programmer demands Xiaomi authorisation ("only nop and sig tag can be ..."). Exit 6. */
export class EdlAuthRequiredError extends AuthRequiredError {
  readonly logs: string[];
  readonly programmer?: string;
  readonly chip?: ChipIdentity;
  constructor(logs: string[], opts: { programmer?: string; chip?: ChipIdentity } = {}) {
    const parts = [EDL_AUTH_MESSAGE, `Device said: ${logs.map((l) => JSON.stringify(l)).join(' | ')}.`];
    const chip = opts.chip ? describeChip(opts.chip) : '';
    if (chip) parts.push(`Device: ${chip}.`);
    if (opts.programmer) parts.push(`Programmer: ${opts.programmer}.`);
    super(parts.join(' '), { code: 'edl.auth-required', hint: EDL_AUTH_HINT });
    this.logs = logs;
    this.programmer = opts.programmer;
    this.chip = opts.chip;
  }
}

/** What is known about the SoC (Sahara command mode, Firehose banner). */
export interface ChipIdentity {
  serial?: number;
  /** MSM HW id (u64 as hex string), with the OEM id (0x0072 = Xiaomi) in bits 16..31. */
  hwid?: string;
  oemId?: number;
  msmId?: number;
}

export function describeChip(c: ChipIdentity): string {
  const parts: string[] = [];
  if (c.serial !== undefined) parts.push(`chip serial 0x${c.serial.toString(16).padStart(8, '0')}`);
  if (c.hwid !== undefined) parts.push(`HWID 0x${c.hwid}`);
  if (c.oemId !== undefined) parts.push(`OEM id 0x${c.oemId.toString(16).padStart(4, '0')}${c.oemId === 0x72 ? ' (Xiaomi)' : ''}`);
  return parts.join(', ');
}

/** The phrase Xiaomi's programmers log before authentication (matched case-insensitively, any spelling of "received"). */
export const AUTH_PHRASE = /only nop and sig tag can be/i;

/** Bad rawprogram/patch XML, expression or ROM layout: `where` is "file:line". */
export class EdlInputError extends BadInputError {
  constructor(message: string, opts: { hint?: string; code?: string } = {}) {
    super(message, { code: opts.code ?? 'edl.input', hint: opts.hint });
  }
}
