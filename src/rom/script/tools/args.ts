// GNU getopt_long as the coreutils / grep / sed / gawk front ends use it:
// clustered short options (-qi), attached or separate values (-n5, -n 5),
// long options with unique-prefix abbreviation and `=value`, `--` ending
// options, and permutation (options after operands still count) unless the
// spec is POSIX-ordered. Error messages are glibc's, word for word.

export type ArgKind = 'none' | 'required' | 'optional';

export interface OptionSpec {
  /** Short options: letter -> kind. */
  short: Record<string, ArgKind>;
  /** Long options (without --): name -> [key reported, kind]. */
  long?: Record<string, [string, ArgKind]>;
  /** Stop at the first operand (POSIX order), as e.g. expr and printf do. */
  posixOrder?: boolean;
  /** A lone "-" followed by digits is an operand (negative numbers), not options. */
  numbersAreOperands?: boolean;
}

export interface ParsedOption {
  key: string;
  value?: string;
  /** As written, for messages: "-e" or "--regexp". */
  spelled: string;
}

export type ParsedArgs = { ok: true; options: ParsedOption[]; operands: string[] } | { ok: false; message: string };

export function getopt(command: string, args: readonly string[], spec: OptionSpec): ParsedArgs {
  const options: ParsedOption[] = [];
  const operands: string[] = [];
  const fail = (message: string): ParsedArgs => ({ ok: false, message: `${command}: ${message}` });
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && spec.long) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const exact = spec.long[name];
      const candidates = exact ? [name] : Object.keys(spec.long).filter((n) => n.startsWith(name));
      const distinct = new Set(candidates.map((c) => spec.long![c]![0] + spec.long![c]![1]));
      if (candidates.length === 0) return fail(`unrecognized option '${a}'`);
      if (distinct.size > 1)
        return fail(`option '${a.slice(0, eq < 0 ? undefined : eq)}' is ambiguous; possibilities:${candidates.map((c) => ` '--${c}'`).join('')}`);
      const full = candidates[0]!;
      const [key, kind] = spec.long[full]!;
      if (eq >= 0) {
        if (kind === 'none') return fail(`option '--${full}' doesn't allow an argument`);
        options.push({ key, value: a.slice(eq + 1), spelled: `--${full}` });
      } else if (kind === 'required') {
        if (i + 1 >= args.length) return fail(`option '--${full}' requires an argument`);
        options.push({ key, value: args[++i]!, spelled: `--${full}` });
      } else options.push({ key, spelled: `--${full}` });
      continue;
    }
    if (a.length > 1 && a[0] === '-' && !(spec.numbersAreOperands && /^-\d/.test(a))) {
      for (let k = 1; k < a.length; k++) {
        const c = a[k]!;
        const kind = spec.short[c];
        if (kind === undefined) return fail(`invalid option -- '${c}'`);
        if (kind === 'none') {
          options.push({ key: c, spelled: `-${c}` });
          continue;
        }
        const rest = a.slice(k + 1);
        if (rest !== '') options.push({ key: c, value: rest, spelled: `-${c}` });
        else if (kind === 'optional') options.push({ key: c, spelled: `-${c}` });
        else {
          if (i + 1 >= args.length) return fail(`option requires an argument -- '${c}'`);
          options.push({ key: c, value: args[++i]!, spelled: `-${c}` });
        }
        break;
      }
      continue;
    }
    if (spec.posixOrder) {
      operands.push(...args.slice(i));
      break;
    }
    operands.push(a);
  }
  return { ok: true, options, operands };
}

/** Formats a number the way GNU tools print counts. */
export const lines = (text: string): string[] => {
  // Splits input into lines as read(2)-based tools see them: a trailing newline
  // ends the last line; a final line without one is still a line.
  if (text === '') return [];
  const parts = text.split('\n');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
};
