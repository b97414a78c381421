import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { evalExpr, parseExpr, parsePatchValue, usesDiskSize, ExprSyntaxError, ExprEvalError } from '../../src/edl/expr.js';
import { BadInputError } from '../../src/errors.js';

type Gen = { text: string; value: bigint; overflow: boolean };
const ev = (s: string, n?: bigint): bigint => evalExpr(parseExpr(s), n);

describe('NUM_DISK_SECTORS expression grammar', () => {
  it('evaluates the forms found in rawprogram/patch files', () => {
    expect(ev('NUM_DISK_SECTORS-5.', 1000n)).toBe(995n);
    expect(ev('NUM_DISK_SECTORS-1', 1000n)).toBe(999n);
    expect(ev('(4096*NUM_DISK_SECTORS)-20480.', 1000n)).toBe(4096n * 1000n - 20480n);
    expect(ev('0x6000')).toBe(0x6000n);
    expect(ev('507904')).toBe(507904n);
    expect(ev(' 2 + 3 * 4 ')).toBe(14n);
    expect(ev('(2+3)*4')).toBe(20n);
    expect(ev('100/7')).toBe(14n);
    expect(ev('10-4-3')).toBe(3n); // left associative
    expect(usesDiskSize(parseExpr('6'))).toBe(false);
    expect(usesDiskSize(parseExpr('(NUM_DISK_SECTORS)'))).toBe(true);
  });

  it('parses patch values, including CRC32(start,length)', () => {
    const v = parsePatchValue('CRC32(NUM_DISK_SECTORS-5.,4096)');
    expect(v.kind).toBe('crc32');
    if (v.kind === 'crc32') {
      expect(evalExpr(v.start, 100n)).toBe(95n);
      expect(evalExpr(v.length)).toBe(4096n);
    }
    const plain = parsePatchValue('NUM_DISK_SECTORS-6.');
    expect(plain.kind === 'expr' && evalExpr(plain.expr, 10n)).toBe(4n);
  });

  it('rejects everything outside the grammar with a BadInputError naming the position', () => {
    for (const bad of ['', 'process.exit(1)', 'NUM_DISK_SECTORS-', '1+', '(1', '1)', 'NUM_DISK_SECTORSX', '2**3', '1;2', 'CRC32(1,2)', '0x', 'eval("1")', '1 2']) {
      const err = (() => {
        try {
          parseExpr(bad);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, bad).toBeInstanceOf(ExprSyntaxError);
      expect(err).toBeInstanceOf(BadInputError);
    }
    expect(() => parsePatchValue('CRC32(1)')).toThrow(/expected ","/);
    expect(() => parsePatchValue('CRC32(1,2) + 1')).toThrow(ExprSyntaxError);
    expect(() => parseExpr('1 + x')).toThrow(/character 5/);
  });

  it('refuses negative, overflowing, divide-by-zero and unknown-size evaluations', () => {
    expect(() => ev('NUM_DISK_SECTORS-5', 3n)).toThrow(ExprEvalError);
    expect(() => ev('1/0')).toThrow(/division by zero/);
    expect(() => ev('0xffffffffffffffff+1')).toThrow(ExprEvalError);
    expect(() => ev('NUM_DISK_SECTORS')).toThrow(/NUM_DISK_SECTORS is not known/);
    // An overflowing intermediate is refused even when a later *0 would hide it (CI's property counterexample).
    expect(() => ev('(0.+(NUM_DISK_SECTORS+(((0x4804*NUM_DISK_SECTORS)*(99996.*81051.))*0.)))', 123456n)).toThrow(/outside 0\.\.2\^64-1/);
  });

  it('agrees with BigInt arithmetic on random well-formed expressions', () => {
    const leaf = fc.oneof(
      fc.bigInt({ min: 0n, max: 100000n }).map((v) => ({ text: `${v}.`, value: v, overflow: false })),
      fc.bigInt({ min: 0n, max: 100000n }).map((v) => ({ text: `0x${v.toString(16)}`, value: v, overflow: false })),
      fc.constant({ text: 'NUM_DISK_SECTORS', value: 123456n, overflow: false }),
    );
    const expr = fc.letrec((tie) => ({
      e: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.tuple(tie('e'), fc.constantFrom('+', '*'), tie('e')).map(([a, op, b]) => {
          const x = a as Gen;
          const y = b as Gen;
          const value = op === '+' ? x.value + y.value : x.value * y.value;
          // Any intermediate beyond u64 makes the whole expression an error, even if a later `*0` would
          // bring it back in range (the target evaluates in 64 bits; miflash refuses rather than wrap).
          return { text: `(${x.text}${op}${y.text})`, value, overflow: x.overflow || y.overflow || value >= 1n << 64n };
        }),
      ),
    })).e;
    fc.assert(
      fc.property(expr, (e) => {
        const x = e as Gen;
        if (x.overflow) expect(() => ev(x.text, 123456n)).toThrow(ExprEvalError);
        else expect(ev(x.text, 123456n)).toBe(x.value);
      }),
      { numRuns: 200 },
    );
  });
});
