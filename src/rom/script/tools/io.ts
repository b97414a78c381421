// Reading a tool's inputs: file operands through ctx.readFile ("-" and no
// operands mean standard input), bounded in size.

import type { Budget } from './limits.js';
import type { ToolContext, ToolResult } from './types.js';

export interface Input {
  name: string;
  /** undefined = missing or unreadable (the tool reports it as the original does). */
  text: string | undefined;
}

export function inputs(files: readonly string[], stdin: string, ctx: ToolContext, budget: Budget): Input[] {
  const list = files.length === 0 ? ['-'] : files;
  return list.map((name) => {
    const text = name === '-' ? stdin : ctx.readFile?.(name);
    if (text !== undefined) budget.checkInput(text, name === '-' ? 'standard input' : name);
    return { name, text };
  });
}

/** coreutils' "Try 'X --help'" usage error (status 1, or 2 where the tool says so). */
export const usageError = (cmd: string, message: string, status = 1): ToolResult => ({
  stdout: '',
  stderr: `${cmd}: ${message}\nTry '${cmd} --help' for more information.\n`,
  status,
});

export const missing = (cmd: string, name: string) => `${cmd}: ${name}: No such file or directory\n`;
