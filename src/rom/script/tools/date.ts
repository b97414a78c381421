// date — GNU coreutils 9.1, interpreted as under TZ=UTC and LC_ALL=C.
//
// Supported: -d/--date STRING, -u/--utc/--universal, +FORMAT. STRING forms the
// flash scripts use: YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (also with T, a
// trailing Z or UTC), YYYYMMDD, @SECONDS, and "" / now / today (midnight or
// now of ctx.now; refused without it). Out-of-range values are GNU's
// "invalid date" (status 1). FORMAT: %Y %C %y %m %d %e %j %H %k %I %l %M %S %p
// %s %N %a %A %b %B %h %u %w %F %T %D %R %Z %z %n %t %% with the - _ 0 flags.
// Refused (UnsupportedToolError): other date spellings (relative items, month
// names, time zones), -s, -r, -f, -I, -R, and other conversions.

import { getopt, type ArgKind } from './args.js';
import { UnsupportedToolError } from './errors.js';
import { usageError } from './io.js';
import type { Tool, ToolContext } from './types.js';

const SHORT: Record<string, ArgKind> = { d: 'required', u: 'none', s: 'required', r: 'required', f: 'required', I: 'optional', R: 'none' };
const LONG: Record<string, [string, ArgKind]> = {
  date: ['d', 'required'],
  utc: ['u', 'none'],
  universal: ['u', 'none'],
  set: ['s', 'required'],
  reference: ['r', 'required'],
  file: ['f', 'required'],
  'iso-8601': ['I', 'optional'],
  'rfc-email': ['R', 'none'],
  debug: ['debug', 'none'],
};

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

class InvalidDate extends Error {}

/** Seconds since the epoch for `s`, UTC. */
function parseDate(s: string, ctx: ToolContext): number {
  const t = s.trim().replace(/\s+/g, ' ');
  const now = () => {
    if (ctx.now === undefined) throw new UnsupportedToolError('date', `a date relative to the clock ('${s}')`);
    return Math.floor(ctx.now / 1000);
  };
  if (t === '' || t === 'today' || t === 'now') {
    const n = now();
    return t === 'now' || t === 'today' ? n : n - (((n % 86400) + 86400) % 86400);
  }
  let m = /^@([-+]?\d+)$/.exec(t);
  if (m) return Number(m[1]);
  m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?(?: ?(?:Z|UTC))?$/.exec(t) ?? /^(\d{4})(\d{2})(\d{2})$/.exec(t);
  if (!m) throw new UnsupportedToolError('date', `the date string '${s}'`);
  const [y, mo, d, h, mi, se] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as number[];
  const dim = new Date(Date.UTC(y!, mo!, 0)).getUTCDate();
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > dim || h! > 23 || mi! > 59 || se! > 60) throw new InvalidDate();
  const dt = new Date(0);
  dt.setUTCFullYear(y!, mo! - 1, d!); // not Date.UTC: it maps years below 100 to 19xx
  dt.setUTCHours(h!, mi!, se!);
  return dt.getTime() / 1000;
}

function format(fmt: string, secs: number): string {
  const d = new Date(secs * 1000);
  const Y = d.getUTCFullYear();
  const mo = d.getUTCMonth();
  const day = d.getUTCDate();
  const H = d.getUTCHours();
  const M = d.getUTCMinutes();
  const S = d.getUTCSeconds();
  const wd = d.getUTCDay();
  const yday = Math.floor((Date.UTC(Y, mo, day) - Date.UTC(Y, 0, 1)) / 86400000) + 1;
  let out = '';
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    let flag = '';
    if ('-_0^#'.includes(fmt[i + 1] ?? 'x')) flag = fmt[++i]!;
    const k = fmt[++i];
    const num = (v: number, width: number, pad = '0') => {
      const p = flag === '-' ? '' : flag === '_' ? ' ' : flag === '0' ? '0' : pad;
      const sign = v < 0 ? '-' : '';
      return sign + (p === '' ? String(Math.abs(v)) : String(Math.abs(v)).padStart(width - sign.length, p));
    };
    const h12 = H % 12 === 0 ? 12 : H % 12;
    switch (k) {
      case 'Y': out += num(Y, 1); break;
      case 'C': out += num(Math.floor(Y / 100), 2); break;
      case 'y': out += num(((Y % 100) + 100) % 100, 2); break;
      case 'm': out += num(mo + 1, 2); break;
      case 'd': out += num(day, 2); break;
      case 'e': out += num(day, 2, ' '); break;
      case 'j': out += num(yday, 3); break;
      case 'H': out += num(H, 2); break;
      case 'k': out += num(H, 2, ' '); break;
      case 'I': out += num(h12, 2); break;
      case 'l': out += num(h12, 2, ' '); break;
      case 'M': out += num(M, 2); break;
      case 'S': out += num(S, 2); break;
      case 'p': out += H < 12 ? 'AM' : 'PM'; break;
      case 's': out += num(secs, 1); break;
      case 'N': out += num(0, 9); break;
      case 'a': out += DAYS[wd]!.slice(0, 3); break;
      case 'A': out += DAYS[wd]; break;
      case 'b': case 'h': out += MONTHS[mo]!.slice(0, 3); break;
      case 'B': out += MONTHS[mo]; break;
      case 'u': out += String(wd === 0 ? 7 : wd); break;
      case 'w': out += String(wd); break;
      case 'F': out += format('%Y-%m-%d', secs); break;
      case 'T': out += format('%H:%M:%S', secs); break;
      case 'D': out += format('%m/%d/%y', secs); break;
      case 'R': out += format('%H:%M', secs); break;
      case 'Z': out += 'UTC'; break;
      case 'z': out += '+0000'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '%': out += '%'; break;
      case undefined: out += '%' + flag; break;
      default:
        throw new UnsupportedToolError('date', `the conversion %${flag}${k}`);
    }
  }
  return out;
}

export const date: Tool = (argv, _stdin, ctx) => {
  const cmd = 'date';
  const parsed = getopt(cmd, argv.slice(1), { short: SHORT, long: LONG });
  if (!parsed.ok) return usageError(cmd, parsed.message.slice(cmd.length + 2));
  let when: string | null = null;
  for (const o of parsed.options) {
    if (o.key === 'd') when = o.value!;
    else if (o.key !== 'u') throw new UnsupportedToolError(cmd, `option ${o.spelled}`);
  }
  const ops = parsed.operands;
  if (ops.length > 1 || (ops.length === 1 && !ops[0]!.startsWith('+'))) {
    if (ops.length === 1) throw new UnsupportedToolError(cmd, 'setting the clock');
    return usageError(cmd, `extra operand '${ops[1]}'`);
  }
  const fmt = ops[0]?.slice(1) ?? '%a %b %e %H:%M:%S %Z %Y';
  let secs: number;
  try {
    secs = when === null ? parseDate('now', ctx) : parseDate(when, ctx);
  } catch (e) {
    if (e instanceof InvalidDate) return { stdout: '', stderr: `date: invalid date '${when}'\n`, status: 1 };
    throw e;
  }
  return { stdout: format(fmt, secs) + '\n', stderr: '', status: 0 };
};
