// awk against GNU awk (gawk 5.2, LC_ALL=C).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { ToolLimitError, UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';
import { needs } from '../../helpers/peers.js';
import { fastbootText, mismatches, samples, type Case } from './oracle.js';

const FILES: Record<string, string> = { f1: 'anti: 3\nproduct: lmi\n' };
const ours = (c: Case) => runTool(c.argv, c.input, { readFile: (p) => FILES[p] });
const check = (cases: Case[]) =>
  expect(mismatches(cases, ours, { files: FILES, refusal: (e) => e instanceof UnsupportedToolError, wrap: (c) => ['gawk', ...c.argv.slice(1)] })).toEqual([]);
const N = Number(process.env.ORACLE_RUNS ?? 100);

const patterns = [
  '', 'NR==2', '/anti/', '/^product/', '$1=="product:"', '$2 > 3', '$2 ~ /^[0-9]+$/', '$2 !~ /a/', 'NF>2', 'length($0)>12',
  'NR==1,NR==2', '/a/,/b/', '!/FAILED/', 'NR%2', '$NF == "true"', '$2+0 >= 10', '$1 < "m"', 'match($0, /[0-9]+/)',
];
const actions = [
  '{print $2}', '{print $NF}', '{print NF, NR}', '{$2=""; print}', '{print $1 + 0, $2 * 2, $2 / 4, $2 % 3}',
  '{sub(/[0-9]+/, "<&>"); print}', '{gsub(/[aeiou]/, "#")} 1', '{n += $2} END {print n, NR}', '{printf "%s-%d|%5.2f|%x\\n", $1, $2, $2, $2}',
  '{print substr($0, 2, 3), substr($0, 0), substr($0, 5)}', '{print index($0, ":"), length($1), length}', '{k = split($0, a, ":"); print k, a[1], a[2]}',
  '{print RSTART, RLENGTH}', '{print toupper($1), tolower($0)}', '{for (i = NF; i > 0; i--) printf "%s ", $i; print ""}',
  '{print ($2 > 10) ? "big" : "small"}', '{x = x $1} END {print x}', '{print -$2, !$2, $2^2, $2 == 3}', '{if ($2 == "lmi") print "yes"; else print "no"}',
  '{print int($2/3), 0.1+0.2, 1e6, 1e-5, 123456789012, 100/3}', '{c[$1]++} END {for (k in c) n++; print n}', '{NF = 1; print; print NF}', '{$5 = "x"; print; print NF}',
  '{print $0 > 5}', '{print; next; print "never"}', '{print $1; exit 3} END {print "end"}', '{s = sprintf("%c%c", 65, "bc"); print s, sprintf("%5s|%-5s|", "a", "b")}',
  '{print ($1, $2) in a, "x" in a; a[$1, $2] = 1}', '{while (i < 3) {i++; if (i == 2) continue; print i}}', '{do k++; while (k < 2); print k}',
  '{print gsub(/x*/, "-"), $0}', '{print 1 " " 2, 1 - -1, 2 ^ 3 ^ 2, -2 ^ 2}', '{$0 = "a b c"; print NF, $2}', '{print $(1+1), $ NF}',
];
const program = fc.tuple(fc.constantFrom(...patterns), fc.constantFrom(...actions)).map(([p, a]) => (a.startsWith('{') ? `${p} ${a}` : `${p} ${a}`).trim());
const fsOpt = fc.constantFrom([], ['-F', ':'], ['-F', ': '], ['-F', ':[ \\t]*'], ['-F', 't'], ['-F', ' '], ['-F', '.'], ['-v', 'OFS=-'], ['-v', 'x=3']);

describe('awk against gawk', needs('gawk', 'bash'), () => {
  it('generated programs on fastboot-like output', () => {
    const gen = fc.tuple(fsOpt, program, fastbootText).map(([o, p, input]) => ({ argv: ['awk', ...o, p], input }));
    check(samples(gen, N * 2));
  });

  it('the shapes flash scripts use, files and assignments, errors', () => {
    check(
      [
        [['awk', '-F', ': ', '{print $2}'], 'product: lmi\r\nFinished. Total time: 0.001s\n'],
        [['awk', '/anti/{print $2}'], '(bootloader) anti: 4\n'],
        [['awk', '-F:', '/^anti/ {gsub(/ /, "", $2); print $2}'], 'anti: 12\n'],
        [['awk', '{print $1}', 'f1', 'x=1', '-'], 'stdin line\n'],
        [['awk', 'BEGIN {printf "%d %s\\n", "3abc", 0.1 * 3}'], ''],
        [['awk', 'BEGIN {x["a"]; print length(x); exit 4}'], ''],
        [['awk', '{print FILENAME, FNR, NR}', 'f1', 'f1'], ''],
        [['awk', 'END {print $0, NF}'], 'a b\nc d e\n'],
        [['awk', 'BEGIN { if (!(3 in a)) print "no"; print length(a) }'], ''],
        [['awk', '{ $3 = "z"; $1 = ""; print; print NF }'], 'a b\n'],
        [['awk', '{ print $1 == $2, $1 < $2 }'], '10 9\nabc abd\n1e1 10\n 0x1A 26\n'],
      ].map(([argv, input]) => ({ argv: argv as string[], input: input as string })),
    );
  });
});

describe('awk errors, bounds and refusals', () => {
  it('syntax errors and division by zero are status 2 (gawk adds the source line and a caret)', () => {
    expect(runTool(['awk', '{print $1'], 'x\n', {})).toMatchObject({ stdout: '', status: 2 });
    expect(runTool(['awk', '{print 1 / $1}'], '0\n', {})).toMatchObject({ status: 2, stderr: expect.stringContaining('division by zero') });
  });

  it('an endless loop stops at the step budget; unsupported constructs are named', () => {
    expect(() => runTool(['awk', 'BEGIN { while (1) x++ }'], '', {})).toThrow(ToolLimitError);
    expect(() => runTool(['awk', '{ getline; print }'], 'a\n', {})).toThrow(/getline/);
    expect(() => runTool(['awk', '{ print > "out" }'], 'a\n', {})).toThrow(/redirection/);
    expect(() => runTool(['awk', 'function f() { return 1 } { print f() }'], 'a\n', {})).toThrow(/function/);
    expect(() => runTool(['awk', 'BEGIN { system("reboot") }'], '', {})).toThrow(/system/);
  });
});
