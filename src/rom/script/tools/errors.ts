import { BadInputError } from '../../../errors.js';

/**
 * A command, option or construct the text tools do not implement. The
 * interpreter adds file and line; the message names the command and what is
 * unsupported, so the user knows exactly which part of the script to report.
 */
export class UnsupportedToolError extends BadInputError {
  readonly command: string;

  constructor(command: string, what: string) {
    super(`${command}: ${what} is not supported by miflash's script interpreter`, {
      code: 'script.unsupported-tool',
      hint: 'miflash interprets flash scripts without running any program; pick another script with --script or report the line',
    });
    this.command = command;
  }
}

/**
 * A bound protecting the interpreter was exceeded (input size, regex steps,
 * awk loop iterations, ...). Scripts from the internet must never hang miflash:
 * instead of running on, the tool stops with this error naming the bound.
 */
export class ToolLimitError extends BadInputError {
  readonly command: string;

  constructor(command: string, what: string) {
    super(`${command}: ${what} exceeds miflash's script-interpreter limit`, {
      code: 'script.tool-limit',
      hint: 'the flash script asks a text tool for more work than any flash script needs; report the script',
    });
    this.command = command;
  }
}
