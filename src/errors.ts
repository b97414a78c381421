// Typed errors shared by every layer. Each carries the process exit code the CLI
// uses for it, so a caller (or CI lab) can tell the classes of failure apart.

/** Documented exit codes (README "Exit codes"). */
export const ExitCode = {
  OK: 0,
  INTERNAL: 1,
  /** Bad arguments, unreadable/invalid ROM, script, plan or image. */
  BAD_INPUT: 2,
  /** A gate refused: product mismatch, anti-rollback, checksum / CRC / piece count. */
  GATE_REFUSED: 3,
  /** The device answered FAIL (or Firehose NAK). */
  DEVICE_FAIL: 4,
  /** Transport broke: no device, disconnect, timeout, short write, permission. */
  TRANSPORT: 5,
  /** The device demands vendor authorisation (Xiaomi EDL account, unlock token). */
  AUTH_REQUIRED: 6,
  /** The user aborted (Ctrl-C, declined a confirmation). */
  ABORTED: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class MiflashError extends Error {
  /** Stable machine-readable code, e.g. "transport.timeout". */
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  /** What the user can do about it, if anything. */
  readonly hint?: string;

  constructor(code: string, exitCode: ExitCodeValue, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = opts.hint;
  }
}

/** Bad input: arguments, ROM, script, plan or image. */
export class BadInputError extends MiflashError {
  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'input.invalid', ExitCode.BAD_INPUT, message, opts);
  }
}

/** A safety gate refused to let the plan run. */
export class GateRefusedError extends MiflashError {
  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'gate.refused', ExitCode.GATE_REFUSED, message, opts);
  }
}

/** The device refused a command. */
export class DeviceFailError extends MiflashError {
  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'device.fail', ExitCode.DEVICE_FAIL, message, opts);
  }
}

/** The link to the device broke or never came up. */
export class TransportError extends MiflashError {
  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'transport.error', ExitCode.TRANSPORT, message, opts);
  }
}

export class TransportClosedError extends TransportError {
  constructor(what: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(`${what}: connection closed by the device`, { code: 'transport.closed', ...opts });
  }
}

export class TransportTimeoutError extends TransportError {
  constructor(what: string, timeoutMs: number, opts: { hint?: string; cause?: unknown } = {}) {
    super(`${what}: timed out after ${timeoutMs} ms`, { code: 'transport.timeout', ...opts });
  }
}

export class ShortWriteError extends TransportError {
  constructor(what: string, expected: number, written: number) {
    super(`${what}: short write (${written} of ${expected} bytes)`, { code: 'transport.short-write' });
  }
}

/** The device needs vendor authorisation that miflash will never bypass. */
export class AuthRequiredError extends MiflashError {
  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'auth.required', ExitCode.AUTH_REQUIRED, message, opts);
  }
}

/** The user stopped the run. */
export class AbortedError extends MiflashError {
  constructor(message = 'aborted by the user', opts: { hint?: string; cause?: unknown } = {}) {
    super('aborted', ExitCode.ABORTED, message, opts);
  }
}
