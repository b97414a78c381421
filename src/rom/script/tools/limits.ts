import { ToolLimitError } from './errors.js';

// Bounds on the work one text-tool call may do. Real flash scripts stay orders
// of magnitude below them; a hostile script hits them and gets ToolLimitError.

export const LIMITS = {
  /** Bytes of standard input or of one file operand. */
  inputChars: 4 * 1024 * 1024,
  /** Characters of output one call may produce. */
  outputChars: 4 * 1024 * 1024,
  /** Length of one regular expression. */
  patternChars: 4096,
  /** Instructions of one compiled regular expression (after expanding {m,n}). */
  regexProgram: 20_000,
  /** Regex VM steps per tool call (all matches together). */
  regexSteps: 20_000_000,
  /** awk: statements executed per call. */
  awkSteps: 2_000_000,
  /** Width of a printf / sprintf field. */
  fieldWidth: 1_000_000,
} as const;


/** Work counters for one tool call; every loop that depends on input charges it. */
export class Budget {
  private regexLeft: number = LIMITS.regexSteps;
  private stepsLeft: number = LIMITS.awkSteps;

  constructor(readonly command: string) {}

  chargeRegex(n: number): void {
    this.regexLeft -= n;
    if (this.regexLeft < 0) throw new ToolLimitError(this.command, `regular-expression matching (more than ${LIMITS.regexSteps} steps)`);
  }

  step(): void {
    if (--this.stepsLeft < 0) throw new ToolLimitError(this.command, `execution (more than ${LIMITS.awkSteps} statements)`);
  }

  checkInput(text: string, what = 'input'): void {
    if (text.length > LIMITS.inputChars) throw new ToolLimitError(this.command, `${what} of ${text.length} characters`);
  }

  checkOutput(length: number): void {
    if (length > LIMITS.outputChars) throw new ToolLimitError(this.command, `output of more than ${LIMITS.outputChars} characters`);
  }
}
