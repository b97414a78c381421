import { describe, expect, it } from 'vitest';
import {
  SidecarError,
  parseAndroidInfo,
  parseAntiVersion,
  parseCrcList,
  parseMd5Xml,
  parseMisc,
  parseSparseCrcList,
} from '../../src/rom/index.js';
import { fixture } from './helpers.js';

describe('side-car files', () => {
  it('misc.txt (corpus raphaelin and HyperOS liuqin)', () => {
    expect(parseMisc(fixture('xiaomi-raphaelin-v12-misc.txt'))).toEqual({
      device: 'raphaelin',
      build_number: 'V12.0.5.0.QFKINXM',
      userdata_version: '20210315.0000.00',
    });
    expect(parseMisc(fixture('xiaomi-liuqin-hyperos2-misc.txt')).custom_bulid_number).toBe('liuqin.cn.1.1.0049');
    expect(() => parseMisc('device=x\ngarbage\n')).toThrow(/misc\.txt:2: expected key=value/);
  });

  it('md5sum.xml (corpus raphaelin): 79 digests and the security patch level', () => {
    const m = parseMd5Xml(fixture('xiaomi-raphaelin-v12-md5sum.xml'));
    expect(m.digests.size).toBe(79);
    expect(m.digests.get('gpt_both2.bin')).toBe('12d4fb029dcede657f2acff7f9d82a9f');
    expect(m.digests.get('sparsecrclist.txt')).toBe('fb4dfedfaa46d353d9c5000d47336840');
    expect(m.securityPatchLevel).toBe('2021-03-01');
    expect(() => parseMd5Xml('<root><digests><digest hash="md5" name="a.img">xyz</digest></digests></root>')).toThrow(SidecarError);
    expect(() => parseMd5Xml('<root><digests><digest hash="md5" name="../a.img">' + 'a'.repeat(32) + '</digest></digests></root>')).toThrow(/not a bare file name/);
  });

  it('crclist.txt (corpus oxygen): unpadded lowercase hex as Python hex() writes it', () => {
    const c = parseCrcList(fixture('xiaomi-oxygen-miui11-n-images-crclist.txt'));
    expect(c.size).toBe(27);
    expect(c.get('boot')).toBe(0xbcca2e7);
    expect(c.get('userdata')).toBe(0xfb0bda40);
    expect(parseCrcList(fixture('xiaomi-begonia-mtk-images-crclist.txt')).get('logo')).toBe(0x99fef4e);
    expect(() => parseCrcList('CRC-LIST\nboot 12345\n')).toThrow(/crclist\.txt:2: expected a CRC/);
    expect(() => parseCrcList('boot 0x1\n')).toThrow(/CRC-LIST/);
  });

  it('sparsecrclist.txt: old layout (corpus begonia) and the newer per-piece layout', () => {
    const s = parseSparseCrcList(fixture('xiaomi-begonia-mtk-images-sparsecrclist.txt'));
    expect(s.get('system')).toEqual({ crc: 0xb7d66688, count: 27 });
    expect(s.get('vendor')).toEqual({ crc: 0x7e3696c6, count: 10 });
    const n = parseSparseCrcList('SPARSECRC-LIST\nsuper 2 0x1 0x2\n');
    expect(n.get('super')).toEqual({ count: 2, crcs: [1, 2] });
    expect(() => parseSparseCrcList('SPARSECRC-LIST\nsuper 3 0x1 0x2\n')).toThrow(/piece count 3 but 2 CRCs/);
    expect(() => parseSparseCrcList('SPARSECRC-LIST\nsuper 0x1 0\n')).toThrow(/piece count >= 1/);
  });

  it('anti_version.txt: trimmed (CR included), decimal only', () => {
    expect(parseAntiVersion('3\r\n')).toBe(3);
    expect(parseAntiVersion(' 12 \n')).toBe(12);
    expect(() => parseAntiVersion('3a\n')).toThrow(/decimal number/);
    expect(() => parseAntiVersion('1\n2\n')).toThrow(/one line/);
  });

  it('android-info.txt: require/reject/require-for-product, board alias, skipped lines reported', () => {
    const a = parseAndroidInfo('require board=tuna\nrequire version-bootloader=PRIMEKK15|PRIMELC03\nreject version-baseband=X*\nrequire-for-product:toro version-cdma=I515\n!!\n');
    expect(a.requirements).toEqual([
      { kind: 'require', variable: 'product', values: ['tuna'], line: 1 },
      { kind: 'require', variable: 'version-bootloader', values: ['PRIMEKK15', 'PRIMELC03'], line: 2 },
      { kind: 'reject', variable: 'version-baseband', values: ['X*'], line: 3 },
      { kind: 'require', forProduct: 'toro', variable: 'version-cdma', values: ['I515'], line: 4 },
    ]);
    expect(a.skipped).toEqual([{ line: 5, text: '!!' }]);
  });
});
