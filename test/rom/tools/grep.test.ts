import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { ToolLimitError, UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';
import { corpusCommands } from './corpus.js';
import { needs } from '../../helpers/peers.js';
import { fastbootText, mismatches, samples, type Case } from './oracle.js';

const ours = (argv: string[], input: string, files: Record<string, string> = {}) =>
  runTool(argv, input, { readFile: (p) => files[p] });

/** Patterns from a small BRE/ERE grammar over the alphabet fastboot prints. */
const lit = fc.constantFrom('a', 'b', 'x', 'p', 'o', 'd', 'u', 'c', 't', ':', ' ', '1', '0', '3', '.', '-', 'product', 'anti', 'yes', 'lmi', 'FAILED', 'version');
const common = fc.constantFrom('.', '[0-9]', '[[:digit:]]', '[^ ]', '[a-z]', '[[:alpha:]_]', '[]a]', '[^:]', '\\w', '\\W', '\\s', '\\<', '\\>', '\\b', '[[:space:]]', '[.]');
function posixPattern(ere: boolean): fc.Arbitrary<string> {
  const star = ere ? fc.constantFrom('*', '+', '?', '{1,2}', '{2}', '{0,}', '{,1}') : fc.constantFrom('*', '\\+', '\\?', '\\{1,2\\}', '\\{2\\}', '\\{,1\\}');
  const { atom } = fc.letrec<{ atom: string; seq: string; alt: string }>((tie) => ({
    atom: fc.oneof(
      { weight: 5, arbitrary: lit },
      { weight: 3, arbitrary: common },
      { weight: 1, arbitrary: tie('alt').map((a) => (ere ? `(${a})` : `\\(${a}\\)`)) },
    ),
    seq: fc
      .array(fc.tuple(tie('atom'), fc.option(star, { freq: 3 })).map(([a, s]) => a + (s ?? '')), { minLength: 1, maxLength: 3 })
      .map((xs) => xs.join('')),
    alt: fc.array(tie('seq'), { minLength: 1, maxLength: 2 }).map((xs) => xs.join(ere ? '|' : '\\|')),
  }));
  return fc
    .tuple(fc.boolean(), atom, fc.array(atom, { maxLength: 2 }), fc.boolean(), fc.boolean())
    .map(([caret, a, more, dollar, backref]) => {
      let p = (caret ? '^' : '') + a + more.join('') + (dollar ? '$' : '');
      if (backref && /\\?\(/.test(p)) p += '\\1';
      return p;
    });
}

const pcrePattern = fc
  .array(
    fc.oneof(
      lit,
      fc.constantFrom('\\d+', '\\d', '[0-9]+', '\\K', '(?=\\d)', '(?<=: )', '(?!x)', '\\s*', '.*?', '.+', '\\w+?', '(a|ab)', '(?:an|a)', '\\b', '[^:]*', '\\.'),
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((xs) => xs.join(''));

const flags = fc.subarray(['-i', '-v', '-c', '-o', '-x', '-w', '-n', '-q', '-b', '-h', '-H'], { maxLength: 3 });

const refused = (e: unknown) => e instanceof UnsupportedToolError;
const check = (cases: Case[]) =>
  expect(mismatches(cases, (c) => ours(c.argv, c.input), { refusal: refused })).toEqual([]);
const N = Number(process.env.ORACLE_RUNS ?? 100);

describe('grep against GNU grep (LC_ALL=C)', needs('grep', 'bash'), () => {
  it('every grep in the corpus scripts, on fastboot-like output', () => {
    const cmds = corpusCommands('grep');
    expect(cmds.length).toBeGreaterThan(5);
    check(samples(fc.record({ argv: fc.constantFrom(...cmds), input: fastbootText }), N));
  });

  it('generated BRE patterns and options', () => {
    check(samples(fc.tuple(posixPattern(false), flags, fastbootText).map(([p, f, input]) => ({ argv: ['grep', ...f, '-e', p], input })), N));
  });

  it('generated ERE patterns and options', () => {
    check(samples(fc.tuple(posixPattern(true), flags, fastbootText).map(([p, f, input]) => ({ argv: ['grep', '-E', ...f, p], input })), N));
  });

  it('generated -P patterns', () => {
    check(samples(fc.tuple(pcrePattern, flags, fastbootText).map(([p, f, input]) => ({ argv: ['grep', '-P', ...f, p], input })), N));
  });

  it('-F, several patterns, pattern lists with newlines', () => {
    const gen = fc
      .tuple(fc.array(lit, { minLength: 1, maxLength: 3 }), flags, fc.boolean(), fastbootText)
      .map(([ps, f, fixed, input]) => ({ argv: ['grep', ...(fixed ? ['-F'] : []), ...f, ...ps.flatMap((p) => ['-e', p])], input }));
    check([
      ...samples(gen, N),
      { argv: ['grep', '-o', 'a\nb'], input: 'xab\nb\n' },
      { argv: ['fgrep', '-c', 'a.b'], input: 'a.b\naxb\n' },
      { argv: ['egrep', 'a|b'], input: 'xb\n' },
    ]);
  });

  it('edge cases: syntax errors, warnings, binary input, empty matches, usage', () => {
    const cases: [string[], string][] = [
      [['grep', '[[:foo:]]'], 'a\n'],
      [['grep', '[:space:]'], 'a\n'],
      [['grep', 'a\\{1'], 'a\n'],
      [['grep', '\\(a'], 'a\n'],
      [['grep', 'a\\)'], 'a\n'],
      [['grep', '\\(a\\)\\2'], 'a\n'],
      [['grep', '-E', '*a'], '*a\n'],
      [['grep', '-E', 'a{1,x}'], 'a{1,x}\n'],
      [['grep', '-E', 'x{2,1}'], 'x\n'],
      [['grep', '*a'], '*a\n'],
      [['grep', '-o', ''], 'ab\n'],
      [['grep', '-c', ''], '\n\n'],
      [['grep', '-o', 'b*'], 'abbc\n'],
      [['grep', '-w', ''], 'ab\n'],
      [['grep', '-x', ''], '\n'],
      [['grep', 'a'], 'a\0b\nc\n'],
      [['grep', '-c', 'a'], 'a\0b\nc\n'],
      [['grep', '-k', 'a'], 'a\n'],
      [['grep', '--co', 'a'], 'a\n'],
      [['grep', '-e'], 'a\n'],
      [['grep'], 'a\n'],
      [['grep', '-P', 'a', '-e', 'b'], 'a\n'],
      [['grep', '-P', 'a**'], 'a\n'],
      [['grep', '-P', '(?<=a+)b'], 'ab\n'],
      [['grep', '-P', 'a{2,1}'], 'a\n'],
      [['grep', '-m', '1', 'a'], 'a\na\n'],
      [['grep', '-m0', 'a'], 'a\n'],
      [['grep', '-oE', 'a|ab'], 'xab\n'],
      [['grep', '-o', '\\(a\\|ab\\)\\(c\\|bcd\\)'], 'abcd\n'],
      [['grep', '-oP', '(a|ab)(c|bcd)'], 'abcd\n'],
      [['grep', '-ow', 'a'], 'aa a\n'],
      [['grep', 'a', '-c'], 'a\n'],
      [['grep', '--', '-a'], '-a\n'],
      [['grep', '^product: *lmi$'], 'product: lmi\r\n'],
      [['grep', '-i', 'PRODUCT'], 'product: lmi\n'],
      [['grep', '-oP', 'anti: \\K[0-9]+'], '(bootloader) anti: 4\nanti: 12\n'],
      [['grep', '-l', 'a'], 'a\n'],
      [['grep', '-L', 'a'], 'a\n'],
      [['grep', '-L', 'a'], 'b\n'],
    ];
    check(cases.map(([argv, input]) => ({ argv, input })));
  });
});

describe('grep without an oracle', () => {
  it('reads file operands through ctx.readFile and reports missing files as GNU grep does', () => {
    expect(ours(['grep', 'anti', 'images/a.txt', 'nope'], '', { 'images/a.txt': 'anti: 3\n' })).toEqual({
      stdout: 'images/a.txt:anti: 3\n',
      stderr: 'grep: nope: No such file or directory\n',
      status: 2,
    });
    expect(ours(['grep', '-q', 'anti', 'nope', 'a'], '', { a: 'anti\n' }).status).toBe(0);
    expect(ours(['grep', '-s', 'anti', 'nope'], '').stderr).toBe('');
    expect(ours(['grep', '-h', 'x', 'a', '-'], 'x\n', { a: 'x\n' }).stdout).toBe('x\nx\n');
  });

  it('refuses options it does not implement, by name', () => {
    expect(() => ours(['grep', '-A', '1', 'x'], '')).toThrow(UnsupportedToolError);
    expect(() => ours(['grep', '-r', 'x'], '')).toThrow(/option -r/);
    expect(() => ours(['grep', '-P', '(?i)x'], '')).toThrow(UnsupportedToolError);
  });

  it('bounds catastrophic patterns: pruning keeps (a*)*b linear, back references hit the step budget', () => {
    const long = 'a'.repeat(5000);
    const t0 = Date.now();
    expect(ours(['grep', '-E', '(a*)*b'], long + '\n').status).toBe(1);
    expect(ours(['grep', '-P', '(a+)+b'], long + '\n').status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(() => ours(['grep', '-E', '(a*)*\\1b'], 'a'.repeat(3000) + '\n')).toThrow(ToolLimitError);
  });
});
