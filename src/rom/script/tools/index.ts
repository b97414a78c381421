// The registry of text tools the script interpreters may call. Each tool is a
// pure function (types.ts); see each file's header for what it supports and
// refuses. Nothing here spawns a process or touches the file system.

import { UnsupportedToolError } from './errors.js';
import { awk } from './awk.js';
import { cat } from './cat.js';
import { CMD_TOOLS } from './cmd.js';
import { cut } from './cut.js';
import { date } from './date.js';
import { expr } from './expr.js';
import { findstr } from './findstr.js';
import { grep } from './grep.js';
import { head, tail } from './headtail.js';
import { printf } from './printf.js';
import { sed } from './sed.js';
import { sort, uniq } from './sortuniq.js';
import { tr } from './tr.js';
import { wc } from './wc.js';
import { testBash, testDash } from './test.js';
import type { Tool, ToolContext, ToolResult } from './types.js';

export type { Tool, ToolContext, ToolResult } from './types.js';
export { UnsupportedToolError, ToolLimitError } from './errors.js';

const TOOLS: Record<string, Tool> = {
  grep,
  egrep: grep,
  fgrep: grep,
  awk,
  gawk: awk,
  cat,
  cut,
  date,
  expr,
  findstr,
  FINDSTR: findstr,
  head,
  tail,
  printf,
  sed,
  sort,
  uniq,
  tr,
  wc,
  test: (argv, stdin, ctx) => (ctx.shell === 'bash' ? testBash : testDash)(argv, stdin, ctx),
  '[': (argv, stdin, ctx) => (ctx.shell === 'bash' ? testBash : testDash)(argv, stdin, ctx),
  // cmd.exe's if / for /f / find for the .bat front end (names with `/`: no script can call them by name).
  ...CMD_TOOLS,
};

/** Whether `name` is a text tool miflash implements. */
export const isTool = (name: string): boolean => Object.hasOwn(TOOLS, name);

/** Runs a tool; an unknown command or unsupported option/construct throws UnsupportedToolError naming it. */
export function runTool(argv: readonly string[], stdin: string, ctx: ToolContext): ToolResult {
  const name = argv[0];
  if (name === undefined) throw new UnsupportedToolError('(empty command)', 'an empty command');
  const tool = Object.hasOwn(TOOLS, name) ? TOOLS[name] : undefined;
  if (!tool) throw new UnsupportedToolError(name, 'the command');
  return tool(argv, stdin, ctx);
}

/** The registry in the shape the script engine takes (`ToolBox` in src/plan/evaluate.ts). */
export const toolBox = { has: isTool, run: runTool } as const;
