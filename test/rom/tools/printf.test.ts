// printf against dash's builtin (Debian's /bin/sh).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';
import { needs } from '../../helpers/peers.js';
import { mismatches, samples, type Case, type Real } from './oracle.js';

describe("printf as dash's builtin", needs('dash', 'bash'), () => {
  it('generated formats and arguments', () => {
    const piece = fc.constantFrom('%s', '%d', '%i', '%x', '%X', '%o', '%u', '%c', '%b', '%5s', '%-4d|', '%04d', '%+d', '% d', '%.2s', '%#x', '%#o', '%.3d', '%*d', '%%', '\\n', '\\t', '\\101', '\\0101', 'abc', ':', '\\q', '%z');
    const arg = fc.constantFrom('1', '0', '-1', '255', '12abc', 'abc', '', "'A", '0x1f', '010', ' 12', '99999999999999999999', 'a\\tb', 'x\\cy', '\\0101', 'lmi');
    const gen = fc.tuple(fc.array(piece, { minLength: 1, maxLength: 4 }), fc.array(arg, { maxLength: 4 })).map(([p, a]) => ({ argv: ['printf', p.join(''), ...a], input: '' }));
    const cases: Case[] = [...samples(gen, Number(process.env.ORACLE_RUNS ?? 120)), { argv: ['printf', '%s\\n', 'a', 'b', 'c'], input: '' }, { argv: ['printf', 'x\\n', 'a'], input: '' }];
    const strip = (r: Real): Real => ({ ...r, stderr: r.stderr.replace(/^sh: 1: /gm, '') });
    const bad = mismatches(cases, (c) => runTool(c.argv, '', {}), {
      refusal: (e) => e instanceof UnsupportedToolError,
      wrap: (c) => ['dash', '-c', 'printf "$@"', 'sh', ...c.argv.slice(1)],
    }) as { ours: Real; real: Real }[];
    expect(bad.filter((b) => JSON.stringify(b.ours) !== JSON.stringify(strip(b.real)))).toEqual([]);
  });
});
