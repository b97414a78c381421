// Shared pieces of the .sh and .bat flash-script parsers: the error type, line
// splitting and normalisation, image-path resolution, and the translation of a
// fastboot argument vector into plan steps.
import { BadInputError } from '../../errors.js';
import type { PlanMode, PlanStep } from '../../plan/schema.js';

/** A script line the parser does not accept. Names the file, 1-based line and text. */
export class ScriptParseError extends BadInputError {
  readonly file: string;
  readonly line: number;
  readonly text: string;

  constructor(file: string, line: number, text: string, why: string) {
    super(`${file}:${line}: ${why}: ${JSON.stringify(text.trim())}`, {
      code: 'script.unsupported-line',
      hint: 'miflash only runs the fastboot forms Xiaomi and Google scripts use; pick another script with --script or report the line',
    });
    this.file = file;
    this.line = line;
    this.text = text;
  }
}

export interface SourceLine {
  /** 1-based. */
  no: number;
  /** As in the file, without the line terminator. */
  raw: string;
  /** Whitespace runs outside quotes collapsed to one space, trimmed; tabs count as spaces. */
  norm: string;
}

/** Split on LF, drop one trailing CR per line (accepts LF, CRLF and mixed). */
export function splitLines(text: string): SourceLine[] {
  const body = text.startsWith('\ufeff') ? text.slice(1) : text;
  const parts = body.split('\n');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.map((raw0, i) => {
    const raw = raw0.endsWith('\r') ? raw0.slice(0, -1) : raw0;
    return { no: i + 1, raw, norm: normalizeSpace(raw) };
  });
}

/** Collapse whitespace outside double quotes; keep quoted text verbatim. */
export function normalizeSpace(line: string): string {
  let out = '';
  let inQuote = false;
  let pendingSpace = false;
  for (const ch of line) {
    if (!inQuote && (ch === ' ' || ch === '\t')) {
      pendingSpace = true;
      continue;
    }
    if (pendingSpace && out.length > 0) out += ' ';
    pendingSpace = false;
    if (ch === '"') inQuote = !inQuote;
    out += ch;
  }
  return out;
}

/** Remove one pair of surrounding double quotes. */
export function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** Mode from the script's file name (MiFlash's three modes, §9). */
export function modeFromName(name: string): PlanMode {
  const file = name.replace(/^.*[\\/]/, '').replace(/\.(sh|bat|cmd)$/i, '');
  // Corpus copies carry a provenance prefix (`xiaomi-land-miui8-flash_all_lock`): the in-package name is the tail.
  const m = /(?:^|[-_.])(flash_all(?:_except_storage|_except_data_storage|_except_data|_lock_crc|_lock)?|flash-all)$/.exec(file);
  const base = m ? m[1] : file;
  switch (base) {
    case 'flash_all':
    case 'flash-all':
      return 'clean';
    case 'flash_all_except_storage':
    case 'flash_all_except_data_storage':
    case 'flash_all_except_data':
      return 'keep-data';
    case 'flash_all_lock':
      return 'lock';
    case 'flash_all_lock_crc':
      return 'lock-crc';
    default:
      return 'other';
  }
}

export type PathForm = { ok: true; file: string; cwdRelative: boolean } | { ok: false; why: string };

/**
 * Resolve an image argument to a path relative to the ROM root.
 * sh: `dirname $0`/images/F, $(dirname $0)/…, ${SCRIPT_PATH}/…, `pwd`/… ; bat: %~dp0images\F (quoted or not,
 * `\` or `/`, doubled separator); Google: a bare relative name.
 */
export function resolveImagePath(arg: string): PathForm {
  let s = unquote(arg);
  let cwdRelative = false;
  const prefixes: Array<[RegExp, boolean]> = [
    // A doubled separator (`%~dp0\\images\\F`, `` `dirname $0`//images/F ``) names the same file (§6).
    [/^`dirname \$0`[\\/]+/, false],
    [/^\$\(dirname \$0\)[\\/]+/, false],
    [/^\$\{SCRIPT_PATH\}[\\/]+/, false],
    [/^\$SCRIPT_PATH[\\/]+/, false],
    [/^`pwd`[\\/]+/, true],
    [/^\$\(pwd\)[\\/]+/, true],
    [/^%~dp0[\\/]*/i, false],
  ];
  for (const [re, cwd] of prefixes) {
    if (re.test(s)) {
      s = s.replace(re, '');
      cwdRelative = cwd;
      break;
    }
  }
  if (/[`$%"'*?<>|]/.test(s)) return { ok: false, why: 'image path uses shell variables, quotes or wildcards miflash does not resolve' };
  s = s.replace(/\\/g, '/').replace(/^\.\//, '');
  if (s.startsWith('/') || /^[A-Za-z]:/.test(s)) return { ok: false, why: 'image path is absolute, outside the ROM' };
  const parts = s.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) return { ok: false, why: 'empty image path' };
  if (parts.includes('..')) return { ok: false, why: 'image path escapes the ROM folder ("..")' };
  return { ok: true, file: parts.join('/'), cwdRelative };
}

export interface FastbootCall {
  /** `fastboot $* …` / `fastboot %* …`: the caller's extra arguments are passed through. */
  vendor: boolean;
  args: string[];
}

/** Split `fastboot [$*|%*] ARGS` (tokens already split). Returns undefined when not a fastboot call. */
export function fastbootCall(tokens: string[]): FastbootCall | undefined {
  if (tokens.length === 0 || !/^fastboot(\.exe)?$/i.test(unquote(tokens[0]!))) return undefined;
  const vendor = tokens[1] === '$*' || tokens[1] === '%*' || tokens[1] === '"$@"' || tokens[1] === '$@';
  return { vendor, args: tokens.slice(vendor ? 2 : 1) };
}

/** Split on whitespace outside double quotes (input is normalised already). */
export function words(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let inBacktick = false;
  let paren = 0;
  for (const ch of s) {
    if (ch === '"' && !inBacktick) inQuote = !inQuote;
    else if (ch === '`' && !inQuote) inBacktick = !inBacktick;
    else if (ch === '(' && !inQuote && cur.endsWith('$')) paren++;
    else if (ch === ')' && !inQuote && paren > 0) paren--;
    if (ch === ' ' && !inQuote && !inBacktick && paren === 0) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') out.push(cur);
  return out;
}

type Failure = Pick<PlanStep, 'onFailure' | 'message' | 'vendorUnchecked'>;

/**
 * Failure policy for a step the vendor does not check (§6): a failed flash,
 * format, set_active, update or wipe can leave a half-written boot chain, so
 * it aborts; erase, reboot and oem failures are reported and the run goes on.
 */
export function uncheckedPolicy(kind: PlanStep['kind']): Failure {
  const abort = ['flash', 'format', 'set-active', 'update', 'wipe'].includes(kind);
  return { onFailure: abort ? 'abort' : 'ignore', vendorUnchecked: true };
}

export interface OpContext {
  file: string;
  line: SourceLine;
  warnings: string[];
}

/**
 * Translate fastboot arguments (after `fastboot` and `$*`) into device-op steps.
 * Global options may stand before or after the subcommand (fastboot permutes them).
 * Steps come back with onFailure 'ignore' and vendorUnchecked; the caller applies the script's check.
 */
export function stepsForFastbootArgs(args: string[], ctx: OpContext): PlanStep[] {
  const fail: (why: string) => never = (why) => {
    throw new ScriptParseError(ctx.file, ctx.line.no, ctx.line.raw, why);
  };
  const line = ctx.line.no;
  let wipe = false;
  let skipReboot = false;
  let disableVerity = false;
  let disableVerification = false;
  let slot: string | undefined;
  let setActive: string | undefined;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-w') wipe = true;
    else if (a === '--skip-reboot') skipReboot = true;
    else if (a === '--disable-verity') disableVerity = true;
    else if (a === '--disable-verification') disableVerification = true;
    else if (a.startsWith('--slot=')) slot = a.slice(7);
    else if (a === '--slot') slot = args[++i] ?? fail('--slot needs a value');
    else if (a === '--set-active') setActive = 'other';
    else if (a.startsWith('--set-active=')) setActive = a.slice(13);
    else if (a.startsWith('-')) fail(`unsupported fastboot option ${a}`);
    else pos.push(a);
  }
  const base = (kind: PlanStep['kind']) => ({ line, ...uncheckedPolicy(kind) });
  const out: PlanStep[] = [];
  if (setActive !== undefined) {
    if (!/^[a-z]+$/.test(setActive)) fail(`bad slot in --set-active: ${setActive}`);
    out.push({ kind: 'set-active', ...base('set-active'), slot: setActive });
  }
  const sub = pos[0];
  const flagsUsed = disableVerity || disableVerification || slot !== undefined;
  if (sub === undefined) {
    if (!wipe) fail('fastboot call without a command');
    out.push({ kind: 'wipe', ...base('wipe') });
    return out;
  }
  const partName = (p: string | undefined): string => {
    if (p === undefined) return fail(`${sub} needs a partition name`);
    if (!/^[A-Za-z0-9_.-]+$/.test(p)) return fail(`partition name ${JSON.stringify(p)} is not a plain name`);
    return p;
  };
  const image = (p: string | undefined): string => {
    if (p === undefined) return fail(`${sub} without an image file (fastboot would look in $ANDROID_PRODUCT_OUT)`);
    const r = resolveImagePath(p);
    if (!r.ok) return fail(r.why);
    if (r.cwdRelative) ctx.warnings.push(`line ${line}: image path is relative to the current directory (\`pwd\`); miflash resolves it against the ROM folder`);
    return r.file;
  };
  const extra = (n: number) => {
    if (pos.length > n) fail(`unexpected extra arguments to ${sub}`);
  };
  if (sub !== 'flash' && sub !== 'update' && flagsUsed) fail(`${sub} does not take --slot/--disable-verity/--disable-verification here`);
  switch (true) {
    case sub === 'flash': {
      extra(3);
      const partition = partName(pos[1]);
      const file = image(pos[2]);
      const flags = flagsUsed
        ? {
            ...(disableVerity ? { disableVerity: true } : {}),
            ...(disableVerification ? { disableVerification: true } : {}),
            ...(slot !== undefined ? { slot } : {}),
          }
        : undefined;
      if (disableVerity || disableVerification) {
        ctx.warnings.push(`line ${line}: flash ${partition} with AVB verification disabled (vbmeta flags patched by the host)`);
      }
      out.push({ kind: 'flash', ...base('flash'), partition, file, ...(flags ? { flags } : {}) });
      if (wipe) out.push({ kind: 'wipe', ...base('wipe') });
      break;
    }
    case sub === 'flash:raw':
      out.push({
        kind: 'gate.unknown',
        line,
        onFailure: 'abort',
        text: ctx.line.raw.trim(),
        reason: 'flash:raw builds a boot image on the host (mkbootimg); miflash does not support it',
      });
      break;
    case sub === 'erase':
      extra(2);
      out.push({ kind: 'erase', ...base('erase'), partition: partName(pos[1]) });
      break;
    case /^format(:|$)/.test(sub): {
      extra(2);
      const fsType = sub.split(':')[1];
      out.push({ kind: 'format', ...base('format'), partition: partName(pos[1]), ...(fsType ? { fsType } : {}) });
      break;
    }
    case sub === 'set_active': {
      extra(2);
      const s = pos[1] ?? fail('set_active needs a slot');
      if (!/^[a-z]+$/.test(s)) fail(`bad slot ${s}`);
      out.push({ kind: 'set-active', ...base('set-active'), slot: s });
      break;
    }
    case sub === 'reboot' || /^reboot-(bootloader|recovery|fastboot|edl)$/.test(sub): {
      const target = sub === 'reboot' ? pos[1] : sub.slice(7);
      extra(sub === 'reboot' ? 2 : 1);
      if (target !== undefined && !['bootloader', 'recovery', 'fastboot', 'edl'].includes(target)) fail(`unknown reboot target ${target}`);
      out.push({
        kind: 'reboot',
        ...base('reboot'),
        ...(target ? { target: target as 'bootloader' | 'recovery' | 'fastboot' | 'edl' } : {}),
      });
      break;
    }
    case sub === 'oem': {
      // Quotes are the shell's, not the command's; anything still needing expansion is refused.
      const rest = pos.slice(1).map((a) => unquote(a.length >= 2 && a.startsWith("'") && a.endsWith("'") ? `"${a.slice(1, -1)}"` : a));
      if (rest.length === 0) fail('oem without a command');
      for (const a of rest) if (a === '' || /[\s`$%"']/.test(a)) fail(`oem argument ${JSON.stringify(a)} needs shell expansion or contains spaces`);
      if (rest.length === 1 && rest[0] === 'lock') out.push({ kind: 'lock', ...base('lock'), command: 'oem lock' });
      else out.push({ kind: 'oem', ...base('oem'), args: rest });
      break;
    }
    case sub === 'flashing': {
      extra(2);
      const s = pos[1];
      if (s === 'lock') out.push({ kind: 'lock', ...base('lock'), command: 'flashing lock' });
      else if (s === 'unlock' || s === 'lock_critical' || s === 'unlock_critical' || s === 'get_unlock_ability') {
        out.push({ kind: 'flashing', ...base('flashing'), sub: s });
      } else fail(`unknown flashing subcommand ${s ?? '(none)'}`);
      break;
    }
    case sub === 'update': {
      extra(2);
      const file = image(pos[1]);
      out.push({ kind: 'update', ...base('update'), file, wipe, skipReboot });
      out.push({ kind: 'gate.android-info', line, onFailure: 'abort', file, requirements: null });
      break;
    }
    default:
      fail(`unsupported fastboot command ${sub}`);
  }
  if (wipe && sub !== 'flash' && sub !== 'update') out.push({ kind: 'wipe', ...base('wipe') });
  if (skipReboot && sub !== 'update') fail('--skip-reboot only applies to update');
  return out;
}

/** Gate info from product regex alternatives as written in the script (`^product: *NAME$`). */
export function productGateFromRegex(
  alternatives: string[],
  dialect: 'bre' | 'ere' | 'findstr',
  text: string,
): { products: string[]; patterns: string[]; match: 'exact' | 'prefix' | 'substring'; source: { text: string; dialect: 'bre' | 'ere' | 'findstr' } } | undefined {
  const products: string[] = [];
  const patterns: string[] = [];
  const kinds = new Set<'exact' | 'prefix' | 'substring'>();
  for (const alt of alternatives) {
    const m = /^(\^?)product:( \*| )([A-Za-z0-9_-]+)(\$?)$/.exec(alt);
    if (!m) {
      // A bare name (`findstr "NAME"`): a substring match anywhere in the line.
      if (!/^[A-Za-z0-9_-]+$/.test(alt)) return undefined;
      products.push(alt);
      patterns.push(alt);
      kinds.add('substring');
      continue;
    }
    products.push(m[3]!);
    // `^`, `$`, ` *` and plain names mean the same in BRE, ERE, findstr and JS.
    patterns.push(alt);
    kinds.add(m[1] && m[4] ? 'exact' : m[1] ? 'prefix' : 'substring');
  }
  const match = kinds.has('substring') ? 'substring' : kinds.has('prefix') ? 'prefix' : 'exact';
  return { products, patterns, match, source: { text, dialect } };
}
