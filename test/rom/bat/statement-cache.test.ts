// The .bat front end parses each statement every time a run reaches it (cmd
// parses after expanding); StatementCache reuses a parse across the explorer's
// runs only when the expanded lines the parser reads are the same, and reads
// (expands) exactly the lines the parser would.
import { describe, expect, it } from 'vitest';
import { BatSyntaxError, parseStatement, StatementCache, type LineSource } from '../../../src/rom/script/bat/parse.js';

/** A line source over fixed texts that counts the lines pulled. */
function source(lines: string[]): LineSource & { pulls: number } {
  let at = 0;
  const src = {
    pulls: 0,
    first: { no: 1, text: lines[0]! },
    pull: () => {
      src.pulls++;
      at++;
      return at < lines.length ? { no: at + 1, text: lines[at]! } : undefined;
    },
  };
  return src;
}

describe('StatementCache', () => {
  it('gives the same tree as a fresh parse, and reads as many lines', () => {
    const cache = new StatementCache();
    const lines = ['if a==a (', 'echo x', ') else (', 'echo y', ')', 'echo after'];
    const fresh = source(lines);
    const expected = parseStatement(fresh);
    const first = source(lines);
    expect(cache.parse(first)).toEqual(expected);
    const again = source(lines);
    expect(cache.parse(again)).toEqual(expected);
    expect([first.pulls, again.pulls]).toEqual([fresh.pulls, fresh.pulls]);
  });

  it('does not reuse a parse when a line the parser reads expanded differently', () => {
    const cache = new StatementCache();
    const a = cache.parse(source(['(', 'echo one', ')']));
    const b = cache.parse(source(['(', 'echo two & echo three', ')']));
    expect(b).toEqual(parseStatement(source(['(', 'echo two & echo three', ')'])));
    expect(b).not.toEqual(a);
    // The first shape is still there.
    expect(cache.parse(source(['(', 'echo one', ')']))).toEqual(a);
  });

  it('distinguishes a statement by its line number', () => {
    const cache = new StatementCache();
    cache.parse(source(['echo x']));
    const moved = { first: { no: 7, text: 'echo x' }, pull: () => undefined };
    expect(cache.parse(moved).cmd.line).toBe(7);
  });

  it('rethrows a cached syntax error', () => {
    const cache = new StatementCache();
    expect(() => cache.parse(source(['echo a && ']))).toThrow(BatSyntaxError);
    expect(() => cache.parse(source(['echo a && ']))).toThrow('&& was unexpected at this time.');
  });

  it('does not remember a parse whose line source failed', () => {
    const cache = new StatementCache();
    let fail = true;
    const src = (): LineSource => ({
      first: { no: 1, text: '(' },
      pull: () => {
        if (fail) throw new BatSyntaxError(2, 'expansion failed');
        return undefined;
      },
    });
    expect(() => cache.parse(src())).toThrow('expansion failed');
    fail = false;
    expect(() => cache.parse(src())).toThrow('the file ends inside a parenthesised block');
  });
});
