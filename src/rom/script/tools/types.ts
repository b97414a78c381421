// The contract between the flash-script interpreters (.sh and .bat) and the
// text tools scripts pipe fastboot's output into (grep, findstr, awk, cut, sed,
// date, expr, test, ...). Every tool is a pure function of its argument vector,
// its standard input and a small read-only context: no process is spawned, no
// file outside the ROM is read, nothing is written. The same functions run at
// plan time (on literal text) and at run time (on what the device answered), so
// the two can never disagree.

/** What a tool printed and its exit status, as the GNU / Windows original would. */
export interface ToolResult {
  stdout: string;
  stderr: string;
  /** 0 = success; the original's documented codes otherwise (grep: 1 = no match, 2 = error). */
  status: number;
}

export interface ToolContext {
  /**
   * Reads a file for tools given file operands (`cat images/anti_version.txt`,
   * `grep x FILE`). Paths are as the script wrote them after expansion; the
   * interpreter decides what resolves inside the ROM. undefined = missing or
   * not readable (the tool then fails as the original does for ENOENT).
   */
  readFile?: (path: string) => string | undefined;
  /**
   * "Now" for tools that read the clock (`date` without -d), in ms since the
   * epoch. Absent = such a call is refused (plans must not depend on the clock).
   */
  now?: number;
  /** Time zone for date parsing/formatting; scripts are interpreted as under TZ=UTC. */
  timeZone?: 'UTC';
  /**
   * Which shell's builtins `test` / `[` / `printf` behave as: 'dash' (Debian's
   * /bin/sh, the default) rejects `[ a == b ]` with status 2; 'bash' accepts it.
   */
  shell?: 'dash' | 'bash';
}

/** A tool implementation. argv[0] is the command name as written (`grep`, `egrep`, `findstr`, `[`). */
export type Tool = (argv: readonly string[], stdin: string, ctx: ToolContext) => ToolResult;
