// date and expr against GNU coreutils 9.1 (LC_ALL=C, TZ=UTC).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';
import { needs } from '../../helpers/peers.js';
import { mismatches, samples, type Case } from './oracle.js';

const refused = (e: unknown) => e instanceof UnsupportedToolError;
const check = (cases: Case[]) => expect(mismatches(cases, (c) => runTool(c.argv, c.input, {}), { refusal: refused })).toEqual([]);
const N = Number(process.env.ORACLE_RUNS ?? 60);

describe('date and expr against coreutils', needs('coreutils', 'bash'), () => {
  it('date -d with the spellings security-patch gates use, and formats', () => {
    const d2 = (a: number, b: number) => fc.integer({ min: a, max: b }).map((n) => String(n).padStart(2, '0'));
    const when = fc.oneof(
      fc.tuple(fc.integer({ min: 1970, max: 2099 }), d2(0, 13), d2(0, 32)).map(([y, m, d]) => `${y}-${m}-${d}`),
      fc.tuple(fc.integer({ min: 2000, max: 2040 }), d2(1, 12), d2(1, 28), d2(0, 24), d2(0, 60), d2(0, 59)).map(([y, m, d, h, mi, s]) => `${y}-${m}-${d} ${h}:${mi}:${s}`),
      fc.tuple(fc.integer({ min: 2000, max: 2040 }), d2(1, 12), d2(1, 28)).map(([y, m, d]) => `${y}${m}${d}`),
      fc.integer({ min: -100000, max: 4102444800 }).map((n) => `@${n}`),
    );
    const fmt = fc.constantFrom('+%s', '+%Y%m%d', '+%F %T', '+%a %b %e %j %u %w %p %I %l %k', '+%-m/%_d/%y %C %Z %z %%', '+%N%n%t%R%D', '');
    check(samples(fc.tuple(when, fmt).map(([w, f]) => ({ argv: ['date', '-d', w, ...(f ? [f] : [])], input: '' })), N));
    check([
      { argv: ['date', '-u', '-d', '2023-05-01', '+%s'], input: '' },
      { argv: ['date', '--date=2023-02-29', '+%s'], input: '' },
      { argv: ['date', '-d', '2024-02-29T10:00Z', '+%s'], input: '' },
    ]);
  });

  it('expr: arithmetic, comparisons, match, keywords, errors', () => {
    const tok = fc.constantFrom('1', '0', '-3', '12', '007', 'a', 'abc', '', '3301', '+', '-', '*', '/', '%', '<', '<=', '=', '!=', '>', '>=', '|', '&', ':', '(', ')', 'length', 'substr', 'index', 'match', 'anti: 3', '[0-9]*', '\\(.\\)', 'product: lmi', '.*: \\(.*\\)');
    check(samples(fc.array(tok, { maxLength: 5 }).map((t) => ({ argv: ['expr', ...t], input: '' })), N * 2));
    check(
      [
        ['expr', '9', '+', '1'],
        ['expr', '10', '/', '0'],
        ['expr', 'a', '+', '1'],
        ['expr', 'product: lmi', ':', 'product: *\\(.*\\)'],
        ['expr', 'substr', 'raphaelin', '1', '4'],
        ['expr', '99999999999999999999', '*', '99'],
        ['expr', '1', '-eq', '1'],
      ].map((argv) => ({ argv, input: '' })),
    );
  });
});

describe('date without an oracle', () => {
  it('needs ctx.now for clock-relative dates and refuses spellings it does not know', () => {
    expect(() => runTool(['date', '+%s'], '', {})).toThrow(UnsupportedToolError);
    expect(runTool(['date', '+%s'], '', { now: 1_700_000_000_500 }).stdout).toBe('1700000000\n');
    expect(runTool(['date', '-d', '', '+%s'], '', { now: 1_700_000_000_500 }).stdout).toBe('1699920000\n');
    expect(() => runTool(['date', '-d', 'next monday'], '', {})).toThrow(/date string/);
  });
});
