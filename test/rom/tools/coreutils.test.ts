// cut, head, tail, wc, cat against GNU coreutils 9.1 (LC_ALL=C).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';
import { corpusCommands } from './corpus.js';
import { needs } from '../../helpers/peers.js';
import { fastbootText, mismatches, samples, type Case } from './oracle.js';

const FILES: Record<string, string> = { f1: 'anti: 3\nproduct: lmi\n', f2: 'x' };
const refused = (e: unknown) => e instanceof UnsupportedToolError;
const check = (cases: Case[]) =>
  expect(mismatches(cases, (c) => runTool(c.argv, c.input, { readFile: (p) => FILES[p] }), { refusal: refused, files: FILES })).toEqual([]);
const N = Number(process.env.ORACLE_RUNS ?? 80);

const num = fc.constantFrom('1', '2', '3', '5', '8', '18', '23', '0');
const range = fc.oneof(
  num,
  fc.tuple(num, num).map(([a, b]) => `${a}-${b}`),
  num.map((a) => `${a}-`),
  num.map((a) => `-${a}`),
);
const list = fc.array(range, { minLength: 1, maxLength: 3 }).map((r) => r.join(','));
const files = fc.subarray(['f1', 'f2', '-', 'nofile'], { maxLength: 2 });

describe('coreutils against the real ones', needs('coreutils', 'bash'), () => {
  it('cut: corpus lines and generated lists, fields, delimiters', () => {
    const corpus = corpusCommands('cut');
    expect(corpus.length).toBeGreaterThan(0);
    const gen = fc.oneof(
      fc.tuple(fc.constantFrom(...corpus), fastbootText).map(([argv, input]) => ({ argv, input })),
      fc
        .tuple(fc.constantFrom('-c', '-b', '-f'), list, fc.option(fc.constantFrom(':', ' ', '.', 'ab', ''), { nil: undefined }), fc.subarray(['-s', '--complement', '--output-delimiter=|']), files, fastbootText)
        .map(([m, l, d, f, fs, input]) => ({ argv: ['cut', m, l, ...(d === undefined ? [] : ['-d', d]), ...f, ...fs], input })),
    );
    check(samples(gen, N * 2));
  });

  it('head and tail: -n -c with signs, obsolete forms, several files', () => {
    const count = fc.tuple(fc.constantFrom('', '+', '-'), fc.constantFrom('0', '1', '2', '3', '10')).map(([s, n]) => s + n);
    const gen = fc
      .tuple(fc.constantFrom('head', 'tail'), fc.oneof(fc.tuple(fc.constantFrom('-n', '-c'), count).map(([o, c]) => [o, c]), fc.constantFrom(['-1'], ['-2'], ['+2'], ['-3c'], [], ['-n1'], ['-q'], ['-v'])), files, fastbootText)
      .map(([t, o, fs, input]) => ({ argv: [t, ...o, ...fs], input }));
    check(samples(gen, N * 2));
  });

  it('wc and cat', () => {
    const gen = fc.oneof(
      fc.tuple(fc.subarray(['-l', '-w', '-c', '-m']), files, fastbootText).map(([o, fs, input]) => ({ argv: ['wc', ...o, ...fs], input })),
      fc.tuple(fc.subarray(['-n', '-b', '-E', '-s']), files, fastbootText).map(([o, fs, input]) => ({ argv: ['cat', ...o, ...fs], input })),
    );
    check([...samples(gen, N * 2), { argv: ['cat', '-n', 'f2', '-'], input: 'a\n\n\nb' }, { argv: ['cat', '-s', '-'], input: '\n\n\na\n\n' }]);
  });
});

describe('sed against GNU sed 4.9', needs('sed', 'bash'), () => {
  const re = fc.constantFrom('a', '[0-9]', '[0-9]*', 'x*', '\\.', '^', '$', ':', ' *', '\\(a\\)', '[a-z]\\+', 'product', '^product: ', '\\(.\\)\\(.\\)');
  const repl = fc.constantFrom('', 'X', '&&', '\\1', '[&]', '\\n', 'a\\/b');
  const sflags = fc.constantFrom('', 'g', 'p', '2', '2g', 'I', 'gp');
  const addr = fc.constantFrom('', '1', '2', '$', '/a/', '/^product/', '1,2', '2,$', '/a/,/b/', '0,/a/', '1~2', '2,+1', '$!', '/x/I', '1!');
  const simple = fc.constantFrom('p', 'd', 'q', 'Q', '=', 'n', 'N', 'G', 'h', 'H', 'x', 'g', 'z', 'P', 'D', 'y/ab/ba/', 'q5', 'a foo', 'i bar', 'c baz');
  const command = fc.oneof(
    fc.tuple(addr, re, repl, sflags).map(([a, r, p, f]) => `${a}s/${r}/${p}/${f}`),
    fc.tuple(addr, simple).map(([a, c]) => a + c),
  );
  const script = fc.array(command, { minLength: 1, maxLength: 3 }).map((cs) => {
    // a/i/c text runs to the end of the line.
    return cs.map((c) => (/[aic] \w+$/.test(c) ? c + '\n' : c + ';')).join('');
  });

  it('corpus lines and generated scripts on fastboot-like output', () => {
    const corpus = corpusCommands('sed');
    expect(corpus.length).toBeGreaterThan(0);
    const gen = fc.oneof(
      fc.tuple(fc.constantFrom(...corpus), fastbootText).map(([argv, input]) => ({ argv, input })),
      fc.tuple(fc.subarray(['-n', '-E', '-s']), script, fastbootText).map(([o, s, input]) => ({
        argv: ['sed', ...o, o.includes('-E') ? s.replace(/\\\(/g, '(').replace(/\\\)/g, ')').replace(/\\\+/g, '+') : s],
        input,
      })),
      fc.tuple(script, fc.subarray(['f1', 'f2', '-']), fastbootText).map(([s, fs, input]) => ({ argv: ['sed', '-e', s, ...fs], input })),
    );
    check(samples(gen, N * 3));
  });

  it('fixed cases: loops, empty matches, errors', () => {
    const cases: [string[], string][] = [
      [['sed', 's/x*/-/g'], 'abc\nxab\n'],
      [['sed', ':a;N;$!ba;s/\\n/,/g'], 'a\nb\nc\n'],
      [['sed', 'N;P;D'], 'a\nb\nc\n'],
      [['sed', '-n', '/anti/{s/.*: //;p}'], 'anti: 3\nx\n'],
      [['sed', 's/a/b'], 'a\n'],
      [['sed', 'k'], 'a\n'],
      [['sed', 's/a/\\1/'], 'a\n'],
      [['sed', 's/a/b/x'], 'a\n'],
      [['sed', 'y/ab/c/'], 'a\n'],
      [['sed', '-n', '$p'], 'a\nb'],
      [['sed', 's|/|_|g'], 'a/b/c\n'],
      [['sed', '-E', 's/(a|ab)(c|bcd)/[\\1,\\2]/'], 'abcd\n'],
      [['sed', 's/\\(a*\\)*/<\\1>/'], 'aab\n'],
      [['sed', 't;s/a/b/;ta;s/$/!/;:a'], 'a\nc\n'],
      [['sed', '2q'], 'a\nb\nc\n'],
      [['sed', 'G'], 'a'],
      [['sed', '-n', 'p;p'], 'a'],
      [['sed', 'x;G'], 'a\nb'],
    ];
    check(cases.map(([argv, input]) => ({ argv, input })));
  });
});

describe('tr against coreutils', needs('coreutils', 'bash'), () => {
  it('generated sets and options on fastboot-like output', () => {
    const set = fc.constantFrom('a-z', 'A-Z', '.', '\\r', '\\n', '[:digit:]', '[:upper:]', '[:space:]', 'abc', ': ', '0-9', '\\015', '[=a=]', 'xy');
    const set2 = fc.constantFrom('A-Z', 'a-z', '_', '[x*]', '[x*2]', 'XYZ', '\\n', '', '-', '[.*3]ab');
    const gen = fc
      .tuple(fc.subarray(['-c', '-d', '-s', '-t']), set, fc.option(set2, { nil: undefined }), fastbootText)
      .map(([o, a, b, input]) => ({ argv: ['tr', ...o, a, ...(b === undefined ? [] : [b])], input }));
    check(samples(gen, N * 2));
  });
});

describe('sort and uniq against coreutils', needs('coreutils', 'bash'), () => {
  it('generated options on fastboot-like output', () => {
    const sortArgs = fc.oneof(
      fc.subarray(['-n', '-r', '-u', '-s', '-f', '-b']),
      fc.tuple(fc.constantFrom('1', '2', '2n', '1,1', '2,2n', '1.2', '2r', '3', '1.3,1.5'), fc.constantFrom([], ['-t', ':'], ['-t', ' ']), fc.subarray(['-n', '-r', '-u'])).map(([k, t, o]) => [...o, ...t, '-k', k]),
    );
    const gen = fc.oneof(
      fc.tuple(sortArgs, fastbootText).map(([a, input]) => ({ argv: ['sort', ...a], input })),
      fc.tuple(fc.subarray(['-c', '-d', '-u', '-i', '-f1', '-s2', '-w3']), fastbootText.map((t) => t.replace(/(\n[^\n]*)/, '$1$1'))).map(([a, input]) => ({ argv: ['uniq', ...a], input })),
    );
    check(samples(gen, N * 2));
  });
});
