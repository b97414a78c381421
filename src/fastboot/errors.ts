// Typed fastboot errors. A FAIL names the command the device refused and its
// own words; protocol violations say what arrived versus what was expected.
import { DeviceFailError, TransportError } from '../errors.js';

/** The device answered FAIL to `command`. */
export class FastbootFailError extends DeviceFailError {
  readonly command: string;
  readonly deviceMessage: string;
  /** INFO lines that preceded the FAIL (often the real explanation). */
  readonly info: string[];

  constructor(command: string, deviceMessage: string, info: string[] = [], opts: { hint?: string } = {}) {
    const detail = deviceMessage === '' ? '(no message)' : deviceMessage;
    super(`device refused '${command}': FAILED (${detail})`, { code: 'fastboot.fail', hint: opts.hint });
    this.command = command;
    this.deviceMessage = deviceMessage;
    this.info = info;
  }
}

/** The device broke the protocol: unknown status, oversized reply, wrong DATA size. */
export class FastbootProtocolError extends TransportError {
  readonly command: string;

  constructor(command: string, detail: string) {
    super(`'${command}': ${detail}`, {
      code: 'fastboot.protocol',
      hint: 'the device (or something between it and miflash) does not speak fastboot as expected; reconnect it and retry',
    });
    this.command = command;
  }
}
