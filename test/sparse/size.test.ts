import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { formatSize, parseSize } from '../../src/cli/size.js';

describe('parseSize (src/cli/size.ts)', () => {
  it('accepts plain, binary-suffixed and hex sizes', () => {
    expect(parseSize('123')).toBe(123);
    expect(parseSize('64K')).toBe(65536);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('256M')).toBe(256 * 1024 * 1024);
    expect(parseSize('1G')).toBe(1024 ** 3);
    expect(parseSize('1.5K')).toBe(1536);
    expect(parseSize('512MiB')).toBe(512 * 1024 * 1024);
    expect(parseSize('2KB')).toBe(2048);
    expect(parseSize('0x20000000')).toBe(0x20000000);
    expect(parseSize(' 4096 ')).toBe(4096);
  });

  it('rejects garbage, fractions of a byte and overflow with the option name', () => {
    expect(() => parseSize('12Q', '--limit')).toThrow(/invalid --limit '12Q'/);
    expect(() => parseSize('')).toThrow(BadInputError);
    expect(() => parseSize('-5')).toThrow(BadInputError);
    expect(() => parseSize('0.3')).toThrow(/not a whole number/);
    expect(() => parseSize('99999999T')).toThrow(/too large/);
  });

  it('formats sizes for humans', () => {
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.50 KiB');
    expect(formatSize(256 * 1024 * 1024)).toBe('256 MiB');
  });
});
