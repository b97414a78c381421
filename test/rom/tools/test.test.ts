import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';
import { needs } from '../../helpers/peers.js';
import { mismatches, samples, type Case, type Real } from './oracle.js';

const FILES: Record<string, string> = { f1: 'x\n', empty: '' };
const tokens = fc.constantFrom(
  'a', 'b', '', '1', '01', ' 2 ', '-1', '+3', 'x1', '99999999999999999999', '9223372036854775807',
  '!', '(', ')', '-a', '-o', '-n', '-z', '-e', '-f', '-s', '=', '!=', '==', '-eq', '-ne', '-lt', '-gt', '-le', '-ge', '<', '>',
  'f1', 'empty', 'nofile',
);
const argLists = fc.array(tokens, { maxLength: 6 });

const ours = (shell: 'dash' | 'bash', argv: string[]): Real => runTool(argv, '', { readFile: (p) => FILES[p], shell });

/** The shell prefixes builtin errors with "sh: 1: " (dash) or "sh: line 1: " (bash); the interpreter adds its own. */
const strip = (shell: string) => (r: Real): Real => ({ ...r, stderr: r.stderr.replace(shell === 'dash' ? /^sh: 1: /gm : /^sh: line 1: /gm, '') });

for (const shell of ['dash', 'bash'] as const) {
  describe(`test / [ as ${shell}'s builtin`, needs(shell, 'bash'), () => {
    const run = (cases: Case[]) => {
      const bad = mismatches(cases, (c) => ours(shell, c.argv), {
        files: FILES,
        refusal: (e) => e instanceof UnsupportedToolError,
        wrap: (c) => [shell, '-c', `${c.argv[0]} "$@"`, 'sh', ...c.argv.slice(1)],
      });
      // The oracle's stderr carries the shell's prefix: compare without it.
      expect(bad.map((b) => b as { ours: Real; real: Real }).filter((b) => JSON.stringify(b.ours) !== JSON.stringify(strip(shell)(b.real)))).toEqual([]);
    };

    it('generated argument lists (0-6 words of operators, operands, numbers, files)', () => {
      run(samples(argLists.map((a) => ({ argv: ['[', ...a, ']'], input: '' })), Number(process.env.ORACLE_RUNS ?? 200)));
      run(samples(argLists.map((a) => ({ argv: ['test', ...a], input: '' })), 100));
    });

    it('the forms flash scripts use', () => {
      const forms = [
        ['[', '', 'x', '==', '', 'x', ']'],
        ['[', 'ax', '==', 'x', ']'],
        ['[', '3', '-ge', '3301', ']'],
        ['[', '!', '3400', '-ge', '3301', ']'],
        ['[', '1', '-eq', '0', ']'],
        ['[', '0', '-ne', '0', ']'],
        ['[', '', '-gt', '0', ']'],
        ['[', 'y', '!=', 'Y', ']'],
        ['[', '-f', 'f1', ']'],
        ['[', '!', '-f', 'nofile', ']'],
        ['[', '10', '=', '10', ']'],
        ['[', 'a', '-a', ']'],
        ['[', '1', '-eq', '1'],
        ['test', 'a', 'b', 'c', 'd', 'e'],
      ];
      run(forms.map((argv) => ({ argv, input: '' })));
    });
  });
}

describe('test / [ without an oracle', () => {
  it('dash rejects == with "unexpected operator", bash accepts it', () => {
    expect(ours('dash', ['[', 'a', '==', 'a', ']'])).toEqual({ stdout: '', stderr: '[: a: unexpected operator\n', status: 2 });
    expect(ours('bash', ['[', 'a', '==', 'a', ']'])).toEqual({ stdout: '', stderr: '', status: 0 });
    expect(runTool(['[', 'a', '==', 'a', ']'], '', {}).status).toBe(2); // dash is the default
  });

  it('refuses file tests a plan cannot answer', () => {
    expect(() => ours('dash', ['[', '-d', 'images', ']'])).toThrow(UnsupportedToolError);
    expect(() => ours('dash', ['test', 'a', '-nt', 'b'])).toThrow(/-nt/);
  });
});
