// printf — the dash builtin (Debian's /bin/sh), C locale.
//
// Supported: format escapes \\ \a \b \f \n \r \t \v \NNN (up to three octal
// digits), conversions %s %b %c %d %i %o %u %x %X %% with the flags - + space
// # 0, width and precision (also *), the format reused while arguments remain
// (missing ones read as "" or 0). Numeric arguments follow strtoimax base 0
// (0x.., 0..), 'C and "C give the character code; bad numbers print dash's
// "expected numeric value" / "not completely converted" and exit 1. %b expands
// \0NNN and \NNN escapes, and \c stops all output. An unknown directive is
// "%z: invalid directive", status 2.
// Refused (UnsupportedToolError): floating-point conversions (%e %f %g %a),
// which a flash plan does not need and JS cannot reproduce bit for bit.

import type { Tool } from './types.js';
import { UnsupportedToolError } from './errors.js';
import { LIMITS } from './limits.js';
import { ToolLimitError } from './errors.js';

const U64 = 2n ** 64n;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

class Stop extends Error {}

function escapes(s: string, inB: boolean): { text: string; stop: boolean } {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const e = s[i + 1]!;
    const simple: Record<string, string> = { '\\': '\\', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
    if (e in simple) {
      out += simple[e];
      i++;
    } else if (inB && e === 'c') return { text: out, stop: true };
    else if (/[0-7]/.test(e)) {
      // %b: \0 takes up to three more digits; the format and other digits up to three in all.
      const start = inB && e === '0' ? i + 2 : i + 1;
      const m = /^[0-7]{0,3}/.exec(s.slice(start, start + 3))![0];
      out += String.fromCharCode(parseInt(m || '0', 8) & 255);
      i = start + m.length - 1;
    } else out += c;
  }
  return { text: out, stop: false };
}

export const printf: Tool = (argv) => {
  const args = argv.slice(1);
  if (args.length === 0) return { stdout: '', stderr: 'printf: usage: printf format [arg ...]\n', status: 2 };
  const format = args[0]!;
  const rest = args.slice(1);
  let out = '';
  let stderr = '';
  let status = 0;
  let next = 0;
  const take = (): string | undefined => rest[next++];
  const number = (a: string | undefined): bigint => {
    if (a === undefined || a === '') return 0n;
    if (a[0] === "'" || a[0] === '"') return BigInt(a.length > 1 ? a.charCodeAt(1) : 0);
    const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)/.exec(a);
    if (!m) {
      stderr += `printf: ${a}: expected numeric value\n`;
      status = 1;
      return 0n;
    }
    const t = m[2]!;
    let v = /^0[xX]/.test(t) ? BigInt(t) : t.length > 1 && t[0] === '0' ? BigInt('0o' + t.slice(1)) : BigInt(t);
    if (m[1] === '-') v = -v;
    if (v > I64_MAX || v < I64_MIN) {
      stderr += `printf: ${a}: Numerical result out of range\n`;
      status = 1;
      v = v > I64_MAX ? I64_MAX : I64_MIN;
    } else if (m[0].length < a.length) {
      stderr += `printf: ${a}: not completely converted\n`;
      status = 1;
    }
    return v;
  };
  const pad = (s: string, flags: string, width: number, zeroOk: boolean): string => {
    if (width > LIMITS.fieldWidth) throw new ToolLimitError('printf', `a field width of ${width}`);
    if (s.length >= width) return s;
    if (flags.includes('-')) return s.padEnd(width);
    if (zeroOk && flags.includes('0')) {
      const sign = /^[+\- ]|^0[xX]/.exec(s)?.[0] ?? '';
      return sign + s.slice(sign.length).padStart(width - sign.length, '0');
    }
    return s.padStart(width);
  };
  try {
    do {
      let i = 0;
      let converted = false;
      while (i < format.length) {
        const c = format[i]!;
        if (c === '\\') {
          let j = i + 1;
          if (/[0-7]/.test(format[j] ?? '')) j = i + 1 + /^[0-7]{1,3}/.exec(format.slice(i + 1))![0].length;
          else j = i + 2;
          out += escapes(format.slice(i, j), false).text;
          i = j;
          continue;
        }
        if (c !== '%') {
          out += c;
          i++;
          continue;
        }
        const m = /^%([-+ #0]*)(\*|\d*)(?:\.(\*|\d*))?(.?)/.exec(format.slice(i))!;
        i += m[0].length;
        const [, flags, w, p, conv] = m as unknown as [string, string, string, string | undefined, string];
        if (conv === '%') {
          out += '%';
          continue;
        }
        if (!'sbcdiouxX'.includes(conv) || conv === '') {
          if ('eEfFgGaA'.includes(conv) && conv !== '') throw new UnsupportedToolError('printf', `the floating-point conversion %${conv}`);
          stderr += `printf: %${flags}${w}${p === undefined ? '' : '.' + p}${conv}: invalid directive\n`;
          return { stdout: out, stderr, status: 2 };
        }
        converted = true;
        let width = w === '*' ? Number(number(take())) : w === '' ? 0 : Number(w);
        let fl = flags;
        if (width < 0) {
          fl += '-';
          width = -width;
        }
        const prec = p === undefined ? null : p === '*' ? Number(number(take())) : p === '' ? 0 : Number(p);
        const arg = take();
        switch (conv) {
          case 's': {
            const s = arg ?? '';
            out += pad(prec === null || prec < 0 ? s : s.slice(0, prec), fl, width, false);
            break;
          }
          case 'b': {
            const r = escapes(arg ?? '', true);
            const s = prec === null || prec < 0 ? r.text : r.text.slice(0, prec);
            out += pad(s, fl, width, false);
            if (r.stop) throw new Stop();
            break;
          }
          case 'c':
            out += pad(!arg ? '\0' : arg[0]!, fl, width, false); // a missing or empty argument prints NUL, as dash does
            break;
          default: {
            const v = number(arg);
            let digits: string;
            let sign = '';
            if (conv === 'd' || conv === 'i') {
              digits = (v < 0n ? -v : v).toString();
              sign = v < 0n ? '-' : fl.includes('+') ? '+' : fl.includes(' ') ? ' ' : '';
            } else {
              const u = v < 0n ? v + U64 : v;
              digits = u.toString(conv === 'o' ? 8 : conv === 'u' ? 10 : 16);
              if (conv === 'X') digits = digits.toUpperCase();
              if (fl.includes('#') && conv === 'o' && !digits.startsWith('0')) digits = '0' + digits;
              if (fl.includes('#') && (conv === 'x' || conv === 'X') && u !== 0n) sign = conv === 'x' ? '0x' : '0X';
            }
            if (prec !== null) digits = prec === 0 && v === 0n ? '' : digits.padStart(prec, '0');
            out += pad(sign + digits, fl, width, prec === null);
          }
        }
        if (out.length > LIMITS.outputChars) throw new ToolLimitError('printf', 'output');
      }
      if (!converted) break;
    } while (next < rest.length);
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
  }
  return { stdout: out, stderr, status };
};
