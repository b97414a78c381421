import { describe, expect, it } from 'vitest';
import { FastbootFailError, FastbootProtocolError } from '../../src/fastboot/errors.js';
import { FB_RESPONSE_MAX, parseReply, ReplyMachine } from '../../src/fastboot/response.js';
import { encodeCommand, parseFastbootNumber, splitVarLine } from '../../src/fastboot/client.js';
import { BadInputError, DeviceFailError, ExitCode } from '../../src/errors.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('parseReply', () => {
  it('parses each status', () => {
    expect(parseReply(b('OKAY0.4'), 'getvar:version')).toEqual({ kind: 'OKAY', message: '0.4' });
    expect(parseReply(b('FAILnope'), 'x')).toEqual({ kind: 'FAIL', message: 'nope' });
    expect(parseReply(b('INFOhello'), 'x')).toEqual({ kind: 'INFO', message: 'hello' });
    expect(parseReply(b('TEXTraw text'), 'x')).toEqual({ kind: 'TEXT', message: 'raw text' });
    expect(parseReply(b('DATA0000abcd'), 'x')).toEqual({ kind: 'DATA', size: 0xabcd });
    expect(parseReply(b('OKAY'), 'x')).toEqual({ kind: 'OKAY', message: '' });
  });

  it('refuses unknown statuses, short and malformed replies', () => {
    expect(() => parseReply(b('WHAT is this'), 'getvar:x')).toThrow(/unknown reply status "WHAT"/);
    expect(() => parseReply(b('OK'), 'x')).toThrow(FastbootProtocolError);
    expect(() => parseReply(b('DATA12'), 'x')).toThrow(/malformed DATA/);
    expect(() => parseReply(b('DATAzzzzzzzz'), 'x')).toThrow(/malformed DATA/);
  });

  it('enforces the 256-byte reply limit', () => {
    const max = b('OKAY' + 'v'.repeat(FB_RESPONSE_MAX - 4));
    expect(parseReply(max, 'x')).toEqual({ kind: 'OKAY', message: 'v'.repeat(252) });
    const over = b('OKAY' + 'v'.repeat(FB_RESPONSE_MAX - 3));
    expect(() => parseReply(over, 'getvar:fingerprint')).toThrow(/257 bytes exceeds the 256-byte limit/);
  });
});

describe('ReplyMachine', () => {
  it('keeps waiting through INFO and TEXT, collecting them', () => {
    const m = new ReplyMachine('oem hello');
    expect(m.feed(b('INFOline 1'))).toEqual({ kind: 'info', message: 'line 1' });
    expect(m.feed(b('TEXTsome'))).toEqual({ kind: 'text', message: 'some' });
    expect(m.done).toBe(false);
    expect(m.feed(b('OKAYdone'))).toEqual({ kind: 'okay', message: 'done' });
    expect(m.done).toBe(true);
    expect(m.info).toEqual(['line 1']);
    expect(m.text).toEqual(['some']);
    expect(() => m.feed(b('OKAY'))).toThrow(/after the exchange ended/);
  });

  it('turns FAIL into a typed error with the command and device message', () => {
    const m = new ReplyMachine('flash:boot_a');
    m.feed(b('INFOchecking'));
    let err: unknown;
    try {
      m.feed(b('FAILpartition locked'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FastbootFailError);
    expect(err).toBeInstanceOf(DeviceFailError);
    const f = err as FastbootFailError;
    expect(f.command).toBe('flash:boot_a');
    expect(f.deviceMessage).toBe('partition locked');
    expect(f.info).toEqual(['checking']);
    expect(f.exitCode).toBe(ExitCode.DEVICE_FAIL);
    expect(f.message).toContain("'flash:boot_a'");
    expect(f.message).toContain('partition locked');
  });

  it('refuses a DATA size other than the one asked for', () => {
    const m = new ReplyMachine('download:00001000', { kind: 'exact', size: 0x1000 });
    expect(() => m.feed(b('DATA00000fff'))).toThrow(/asked for 4095 bytes .* offered 4096/);
    const ok = new ReplyMachine('download:00001000', { kind: 'exact', size: 0x1000 });
    expect(ok.feed(b('DATA00001000'))).toEqual({ kind: 'data', size: 4096 });
  });

  it('refuses DATA where no data phase exists, and oversize uploads', () => {
    expect(() => new ReplyMachine('getvar:x').feed(b('DATA00000010'))).toThrow(/unexpected DATA/);
    expect(() => new ReplyMachine('fetch:x', { kind: 'upTo', max: 16 }).feed(b('DATA00000011'))).toThrow(/17 bytes, more than the 16/);
    expect(new ReplyMachine('upload', { kind: 'upTo', max: 16 }).feed(b('DATA00000010'))).toEqual({ kind: 'data', size: 16 });
  });
});

describe('commands and values', () => {
  it('accepts commands up to 4096 bytes and refuses longer or non-ASCII ones', () => {
    expect(encodeCommand('oem ' + 'a'.repeat(4092)).length).toBe(4096);
    expect(() => encodeCommand('oem ' + 'a'.repeat(4093))).toThrow(/4097 bytes, over the 4096-byte limit/);
    expect(() => encodeCommand('oem \u00e9')).toThrow(BadInputError);
    expect(() => encodeCommand('getvar:a\0b')).toThrow(/position 8/);
    expect(() => encodeCommand('')).toThrow(BadInputError);
  });

  it('splits getvar-all lines at the last ": "', () => {
    expect(splitVarLine('partition-size:boot_a: 0x4000000')).toEqual(['partition-size:boot_a', '0x4000000']);
    expect(splitVarLine('version:0.4')).toEqual(['version', '0.4']);
    expect(splitVarLine('odd')).toEqual(['odd', '']);
  });

  it('parses numbers like AOSP (hex with 0x, decimal, whitespace)', () => {
    expect(parseFastbootNumber(' 0x10000000 ')).toBe(0x10000000);
    expect(parseFastbootNumber('536870912')).toBe(536870912);
    expect(parseFastbootNumber('0X20')).toBe(32);
    expect(parseFastbootNumber('ten')).toBeUndefined();
    expect(parseFastbootNumber('')).toBeUndefined();
  });
});
