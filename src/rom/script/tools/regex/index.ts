// Regular expressions for the text tools: parse a dialect, compile once, match
// with a bounded VM. See posix.ts, pcre.ts and findstr.ts for what each
// dialect accepts and refuses, engine.ts for matching and its bounds.

import { LIMITS } from '../limits.js';
import { ToolLimitError } from '../errors.js';
import { RegexSyntaxError, type ParsedRegex } from './ast.js';
import { Regex } from './engine.js';
import { parsePcre } from './pcre.js';
import { parsePosix } from './posix.js';

export { Regex, type MatchResult } from './engine.js';
export { RegexSyntaxError } from './ast.js';
export { UnsupportedRegexError } from './pcre.js';

export type Dialect = 'bre' | 'ere' | 'pcre' | 'awk';

export interface Compiled {
  regex: Regex;
  warnings: string[];
  groups: number;
}

export function parseRegex(pattern: string, dialect: Dialect): ParsedRegex {
  switch (dialect) {
    case 'bre':
      return parsePosix(pattern, { extended: false });
    case 'ere':
      return parsePosix(pattern, { extended: true });
    case 'awk':
      return parsePosix(pattern, { extended: true, awk: true });
    case 'pcre':
      return parsePcre(pattern);
  }
}

/** Parses and compiles; throws RegexSyntaxError, UnsupportedRegexError or ToolLimitError. */
export function compileRegex(pattern: string, dialect: Dialect, opts: { icase?: boolean; command: string }): Compiled {
  if (pattern.length > LIMITS.patternChars)
    throw new ToolLimitError(opts.command, `a regular expression of ${pattern.length} characters`);
  const parsed = parseRegex(pattern, dialect);
  const regex = new Regex(parsed.node, parsed.groups, {
    discipline: dialect === 'pcre' ? 'perl' : 'posix',
    icase: opts.icase,
    command: opts.command,
  });
  return { regex, warnings: parsed.warnings, groups: parsed.groups };
}

export const isRegexSyntaxError = (e: unknown): e is RegexSyntaxError => e instanceof RegexSyntaxError;
