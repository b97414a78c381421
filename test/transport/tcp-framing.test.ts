import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  encodeFrame,
  encodeFrameHeader,
  encodeFrameParts,
  encodeHandshake,
  FrameDecoder,
  FramingError,
  parseHandshake,
  type FramePiece,
} from '../../src/transport/tcp-framing.js';

function drain(dec: FrameDecoder, max?: number): FramePiece[] {
  const out: FramePiece[] = [];
  for (let p = dec.next(max); p; p = dec.next(max)) out.push(p);
  return out;
}

/** Reassemble frames from pieces, checking offsets are contiguous. */
function frames(pieces: FramePiece[]): Buffer[] {
  const out: Buffer[] = [];
  let cur: Buffer[] = [];
  let expectOffset = 0;
  for (const p of pieces) {
    expect(p.offset).toBe(expectOffset);
    cur.push(p.data);
    expectOffset += p.data.length;
    if (p.end) {
      const f = Buffer.concat(cur);
      expect(f.length).toBe(p.frameLength);
      out.push(f);
      cur = [];
      expectOffset = 0;
    }
  }
  expect(cur).toEqual([]);
  return out;
}

describe('frame encoding', () => {
  it('prefixes an 8-byte big-endian length', () => {
    const f = encodeFrame(Buffer.from('getvar:product'));
    expect(f.subarray(0, 8)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 14]));
    expect(f.subarray(8).toString()).toBe('getvar:product');
    expect(encodeFrameHeader(0x1_0000_0102)).toEqual(Buffer.from([0, 0, 0, 1, 0, 0, 1, 2]));
  });

  it('encodeFrameParts keeps the payload object (no copy)', () => {
    const payload = new Uint8Array(1000);
    const [header, body] = encodeFrameParts(payload);
    expect(body).toBe(payload);
    expect(header.readBigUInt64BE(0)).toBe(1000n);
  });

  it('handshake is FB + two-digit version', () => {
    expect(encodeHandshake().toString()).toBe('FB01');
    expect(parseHandshake(Buffer.from('FB01'))).toBe(1);
    expect(parseHandshake(Buffer.from('FB17'))).toBe(17);
    expect(() => parseHandshake(Buffer.from('HTTP'))).toThrow(FramingError);
    expect(() => parseHandshake(Buffer.from('FB00'))).toThrow(/version 00/);
  });
});

describe('FrameDecoder', () => {
  it('decodes frames split at every possible byte boundary, including inside headers', () => {
    const payloads = [Buffer.from('OKAY'), Buffer.alloc(0), Buffer.from('INFOhello'), Buffer.from('DATA00001000')];
    const wire = Buffer.concat([encodeHandshake(), ...payloads.map(encodeFrame)]);
    for (let split = 0; split <= wire.length; split++) {
      const dec = new FrameDecoder({ handshake: true });
      dec.push(wire.subarray(0, split));
      const first = drain(dec);
      dec.push(wire.subarray(split));
      const all = [...first, ...drain(dec)];
      expect(dec.peerVersion).toBe(1);
      expect(frames(all).map((b) => b.toString())).toEqual(payloads.map((b) => b.toString()));
    }
  });

  it('hands out data as views of the pushed chunk (no copy) and respects max', () => {
    const payload = Buffer.alloc(100_000, 7);
    const wire = encodeFrame(payload);
    const dec = new FrameDecoder();
    dec.push(wire);
    const p1 = dec.next(30_000)!;
    expect(p1.data.length).toBe(30_000);
    expect(p1.data.buffer).toBe(wire.buffer);
    expect(p1.end).toBe(false);
    expect(dec.frameRemaining).toBe(70_000);
    const rest = drain(dec);
    expect(rest.reduce((n, p) => n + p.data.length, 0)).toBe(70_000);
    expect(rest.at(-1)!.end).toBe(true);
    expect(dec.frameRemaining).toBe(0);
  });

  it('yields a partial frame as soon as some payload arrives (large data consumed incrementally)', () => {
    const dec = new FrameDecoder();
    dec.push(encodeFrameHeader(1 << 20));
    expect(dec.next()).toBeUndefined();
    dec.push(Buffer.alloc(4096, 1));
    const p = dec.next()!;
    expect(p).toMatchObject({ frameLength: 1 << 20, offset: 0, end: false });
    expect(p.data.length).toBe(4096);
    expect(dec.next()).toBeUndefined();
  });

  it('rejects frames above the limit and a bad handshake', () => {
    const dec = new FrameDecoder({ maxFrameLength: 100 });
    dec.push(encodeFrameHeader(101));
    expect(() => dec.next()).toThrow(/101 bytes exceeds the limit of 100/);
    const hs = new FrameDecoder({ handshake: true });
    hs.push(Buffer.from('GET / HTTP/1.1'));
    expect(() => hs.next()).toThrow(/bad fastboot TCP handshake/);
  });

  it('property: any chunking and any read sizes reassemble the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 50 }),
        (payloads, cuts, max) => {
          const wire = Buffer.concat(payloads.map((p) => encodeFrame(p)));
          const dec = new FrameDecoder();
          const pieces: FramePiece[] = [];
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const n = cuts[i % cuts.length]!;
            dec.push(wire.subarray(at, at + n));
            at += n;
            pieces.push(...drain(dec, max));
          }
          for (const p of pieces) expect(p.data.length).toBeLessThanOrEqual(max);
          expect(frames(pieces)).toEqual(payloads.map((p) => Buffer.from(p)));
          expect(dec.buffered).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
