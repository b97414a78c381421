// findstr has no oracle on Linux: these cases follow Microsoft's findstr documentation and its documented quirks.
import { describe, expect, it } from 'vitest';
import { runTool } from '../../../src/rom/script/tools/index.js';
import { UnsupportedToolError } from '../../../src/rom/script/tools/errors.js';

const run = (argv: string[], input = '') => runTool(argv, input, { readFile: (p) => (p === 'a.txt' ? 'anti: 3\r\n' : undefined) });
const GETVAR = 'product: raphaelin\r\nFinished. Total time: 0.001s\r\n';

describe('findstr (spec-based)', () => {
  it('the gates vendor .bat files write', () => {
    expect(run(['findstr', '/r', '/c:^product: *raphaelin'], GETVAR)).toEqual({ stdout: 'product: raphaelin\r\n', stderr: '', status: 0 });
    expect(run(['findstr', '/r', '/c:^product: *raphaelin'], 'product: lmi\r\n').status).toBe(1);
    expect(run(['findstr', '/r', '/c:^product: *raphaelin$'], GETVAR).status).toBe(0); // $ before CR LF
    expect(run(['findstr', '/c:product: raphaelin'], GETVAR).status).toBe(0);
    expect(run(['findstr', '/c:product:  raphaelin'], GETVAR).status).toBe(1); // /c: is one literal string
  });

  it('space-separated alternatives without /c:, and /c: strings literal unless /r', () => {
    expect(run(['findstr', 'lmi raphaelin'], GETVAR).stdout).toBe('product: raphaelin\r\n');
    expect(run(['findstr', '/c:lmi raphaelin'], GETVAR).status).toBe(1);
    expect(run(['findstr', '/c:p.oduct'], GETVAR).status).toBe(1);
    expect(run(['findstr', '/r', '/c:p.oduct'], GETVAR).status).toBe(0);
    expect(run(['findstr', '/l', 'p.oduct'], GETVAR).status).toBe(1);
    expect(run(['findstr', 'p.oduct'], GETVAR).status).toBe(0); // regex by default
  });

  it('/i /v /n /x /b /e and combined option letters', () => {
    expect(run(['findstr', '/i', 'PRODUCT'], GETVAR).status).toBe(0);
    expect(run(['findstr', 'PRODUCT'], GETVAR).status).toBe(1);
    expect(run(['findstr', '/v', 'product'], GETVAR).stdout).toBe('Finished. Total time: 0.001s\r\n');
    expect(run(['findstr', '/n', 'Finished'], GETVAR).stdout).toBe('2:Finished. Total time: 0.001s\r\n');
    expect(run(['findstr', '/x', '/c:product: raphaelin'], GETVAR).status).toBe(0);
    expect(run(['findstr', '/x', 'raphaelin'], GETVAR).status).toBe(1);
    expect(run(['findstr', '/b', 'raphaelin'], GETVAR).status).toBe(1);
    expect(run(['findstr', '/e', 'raphaelin'], GETVAR).status).toBe(0);
    expect(run(['findstr', '/RI', '/C:^PRODUCT: *RAPH'], GETVAR).status).toBe(0);
    expect(run(['findstr', '-i', 'product'], GETVAR).status).toBe(0);
  });

  it('regex dialect: classes, word anchors, escapes, leading *', () => {
    expect(run(['findstr', '/r', '/c:anti: [0-9]'], 'anti: 3\n').status).toBe(0);
    expect(run(['findstr', '/r', '/c:anti: [^0-9]'], 'anti: 3\n').status).toBe(1);
    expect(run(['findstr', '/r', '\\<ant'], 'x anti\n').status).toBe(0);
    expect(run(['findstr', '/r', 'nti\\>'], 'x anti\n').status).toBe(0);
    expect(run(['findstr', '/r', '\\.'], 'ab\n').status).toBe(1);
    expect(run(['findstr', '/r', '*a'], '*a\n').status).toBe(0);
  });

  it('quirks: an unterminated last line gets CR LF, and $ does not match it', () => {
    expect(run(['findstr', 'x'], 'x')).toEqual({ stdout: 'x\r\n', stderr: '', status: 0 });
    expect(run(['findstr', '/r', 'x$'], 'x').status).toBe(1);
    expect(run(['findstr', '/r', 'x$'], 'x\n').status).toBe(0);
  });

  it('files, bad command lines and refusals', () => {
    expect(run(['findstr', 'anti', 'a.txt']).stdout).toBe('anti: 3\r\n');
    expect(run(['findstr', 'anti', 'nope.txt']).stderr).toBe('FINDSTR: Cannot open nope.txt\n');
    expect(run(['findstr'], '')).toEqual({ stdout: '', stderr: 'FINDSTR: Bad command line\n', status: 2 });
    expect(run(['findstr', '/k', 'x'], '').status).toBe(2);
    expect(() => run(['findstr', '/s', 'x'], '')).toThrow(UnsupportedToolError);
    expect(() => run(['findstr', '/r', '[a-z]'], '')).toThrow(/collation|ASCII/);
  });
});
