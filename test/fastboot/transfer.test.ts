import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AbortedError, BadInputError, TransportClosedError } from '../../src/errors.js';
import { sendPayload, type TransferProgress } from '../../src/fastboot/transfer.js';
import type { Payload } from '../../src/sparse/descriptor.js';
import type { Transport } from '../../src/transport/transport.js';

/** Records every write; each write completes after `delayMs`, or fails when told to. */
class FakeTransport implements Transport {
  readonly id = 'fake';
  readonly kind = 'memory' as const;
  readonly writes: Buffer[] = [];
  readonly buffersSeen = new Set<ArrayBufferLike>();
  inFlight = 0;
  maxInFlightSeen = 0;
  failAtWrite = -1;

  constructor(
    readonly preferredWriteSize = 1024,
    readonly maxInFlight = 3,
    private readonly delayMs = 1,
  ) {}

  async write(data: Uint8Array): Promise<void> {
    const index = this.writes.length;
    this.buffersSeen.add(data.buffer);
    this.writes.push(Buffer.from(data)); // snapshot at call time
    this.inFlight++;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      // The loop must not touch a buffer while its write is in flight.
      if (!Buffer.from(data).equals(this.writes[index]!)) throw new Error(`buffer of write ${index} modified while in flight`);
      if (index === this.failAtWrite) throw new TransportClosedError('fake write');
    } finally {
      this.inFlight--;
    }
  }

  async read(): Promise<Buffer> {
    throw new Error('not used');
  }

  async close(): Promise<void> {}

  sent(): Buffer {
    return Buffer.concat(this.writes);
  }
}

let dir: string;
let file: string;
const content = Buffer.alloc(64 * 1024);
for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 8)) & 0xff;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'miflash-transfer-'));
  file = join(dir, 'src.bin');
  await writeFile(file, content);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mixedPayload(): { payload: Payload; expected: Buffer } {
  const header = Buffer.from('HEADER--');
  const segments: Payload['segments'] = [
    { kind: 'bytes', data: header },
    { kind: 'file', offset: 100, length: 5000 },
    { kind: 'zeros', length: 3000 },
    { kind: 'bytes', data: Buffer.from([1, 2, 3]) },
    { kind: 'file', offset: 40000, length: 20000 },
  ];
  const expected = Buffer.concat([header, content.subarray(100, 5100), Buffer.alloc(3000), Buffer.from([1, 2, 3]), content.subarray(40000, 60000)]);
  return { payload: { size: expected.length, segments }, expected };
}

describe('sendPayload', () => {
  it('sends bytes, file ranges and zeros in order, in full buffers', async () => {
    const t = new FakeTransport(1024, 3);
    const { payload, expected } = mixedPayload();
    const stats = await sendPayload(t, file, payload);
    expect(t.sent().equals(expected)).toBe(true);
    // 1 MiB default buffer: the whole 28 KB payload in one write.
    expect(t.writes.length).toBe(1);
    expect(stats.bytes).toBe(expected.length);
  });

  it('reuses a fixed pool and keeps at most maxInFlight writes outstanding', async () => {
    const t = new FakeTransport(1024, 3, 2);
    const { payload, expected } = mixedPayload();
    const stats = await sendPayload(t, file, payload, { bufferSize: 1000, poolSize: 4 });
    expect(t.sent().equals(expected)).toBe(true);
    expect(t.writes.length).toBe(Math.ceil(expected.length / 1000));
    // Header bytes were coalesced: every write but the last is a full buffer.
    expect(t.writes.slice(0, -1).every((w) => w.length === 1000)).toBe(true);
    expect(stats.buffersAllocated).toBe(4);
    expect(t.buffersSeen.size).toBe(4);
    expect(t.maxInFlightSeen).toBe(3);
    expect(stats.maxInFlightSeen).toBe(3);
  });

  it('pool smaller than the depth limits the depth', async () => {
    const t = new FakeTransport(1024, 8, 2);
    const { payload, expected } = mixedPayload();
    await sendPayload(t, file, payload, { bufferSize: 2048, poolSize: 2 });
    expect(t.sent().equals(expected)).toBe(true);
    expect(t.buffersSeen.size).toBe(2);
    expect(t.maxInFlightSeen).toBeLessThanOrEqual(2);
  });

  it('reports monotonic progress ending at the total', async () => {
    const t = new FakeTransport(1024, 2);
    const { payload } = mixedPayload();
    const events: TransferProgress[] = [];
    await sendPayload(t, file, payload, { bufferSize: 4096, onProgress: (p) => events.push(p) });
    expect(events.length).toBe(Math.ceil(payload.size / 4096));
    for (let i = 1; i < events.length; i++) expect(events[i]!.bytesDone).toBeGreaterThan(events[i - 1]!.bytesDone);
    expect(events.at(-1)!.bytesDone).toBe(payload.size);
    expect(events.every((e) => e.bytesTotal === payload.size && e.rateBytesPerSec >= 0)).toBe(true);
  });

  it('stops between buffers when aborted, with nothing left in flight', async () => {
    const t = new FakeTransport(1024, 2, 5);
    const { payload } = mixedPayload();
    const ctl = new AbortController();
    const p = sendPayload(t, file, payload, {
      bufferSize: 1024,
      onProgress: (e) => {
        if (e.bytesDone >= 4096) ctl.abort();
      },
      signal: ctl.signal,
    });
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(t.inFlight).toBe(0);
    expect(t.writes.length).toBeLessThan(Math.ceil(payload.size / 1024));
    expect(t.writes.length).toBeGreaterThanOrEqual(4);
  });

  it('surfaces a failed write as the transport error and waits for the others', async () => {
    const t = new FakeTransport(1024, 3, 2);
    t.failAtWrite = 2;
    const { payload } = mixedPayload();
    await expect(sendPayload(t, file, payload, { bufferSize: 1024 })).rejects.toBeInstanceOf(TransportClosedError);
    expect(t.inFlight).toBe(0);
    expect(t.writes.length).toBeLessThanOrEqual(2 + 3);
  });

  it('refuses inconsistent payloads and truncated files before or while sending', async () => {
    const t = new FakeTransport();
    await expect(sendPayload(t, file, { size: 10, segments: [{ kind: 'zeros', length: 9 }] })).rejects.toThrow(/does not match the sum/);
    await expect(sendPayload(t, null, { size: 1, segments: [{ kind: 'file', offset: 0, length: 1 }] })).rejects.toBeInstanceOf(BadInputError);
    expect(t.writes.length).toBe(0);
    const beyond: Payload = { size: 2000, segments: [{ kind: 'file', offset: content.length - 1000, length: 2000 }] };
    await expect(sendPayload(t, file, beyond)).rejects.toThrow(/file ended at offset 65536/);
    await expect(sendPayload(t, join(dir, 'missing.img'), beyond)).rejects.toThrow(/cannot open image/);
  });

  it('starts large pool buffers half a page into their allocation (keeps pread off 4K aliasing)', async () => {
    const offsets: number[] = [];
    const t = new FakeTransport(1024, 2, 0);
    const write = t.write.bind(t);
    t.write = (data: Uint8Array) => {
      offsets.push(data.byteOffset % 4096);
      return write(data);
    };
    const segments: Payload['segments'] = Array.from({ length: 4 }, () => ({ kind: 'file' as const, offset: 0, length: content.length }));
    const stats = await sendPayload(t, file, { size: 4 * content.length, segments }, { bufferSize: 64 * 1024 });
    expect(t.sent().equals(Buffer.concat([content, content, content, content]))).toBe(true);
    expect(stats.writes).toBe(4);
    expect(offsets).toEqual([2048, 2048, 2048, 2048]);
  });

  it('reads synchronously from a fast source and moves reads to the thread pool once one is slow', async () => {
    const probe = await open(file, 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => unknown };
    await probe.close();
    const asyncRead = vi.spyOn(proto, 'read');
    const segments: Payload['segments'] = Array.from({ length: 8 }, () => ({ kind: 'file' as const, offset: 0, length: content.length }));
    const expected = Buffer.concat(Array.from({ length: 8 }, () => content));
    // Both halves run on a fake clock: on a loaded machine a real 64 KiB read can be descheduled past the 5 ms
    // threshold, which would test the scheduler, not the switch.
    let now = 0;
    try {
      // Every clock reading 1 ms after the last: every read looks fast.
      const fastClock = vi.spyOn(performance, 'now').mockImplementation(() => (now += 1));
      try {
        const fast = new FakeTransport(1024, 2, 0);
        await sendPayload(fast, file, { size: expected.length, segments }, { bufferSize: 64 * 1024 });
        expect(fast.sent().equals(expected)).toBe(true);
        expect(asyncRead).not.toHaveBeenCalled();
      } finally {
        fastClock.mockRestore();
      }
      // Every clock reading 10 ms after the last: the first read looks slow.
      const clock = vi.spyOn(performance, 'now').mockImplementation(() => (now += 10));
      try {
        const slow = new FakeTransport(1024, 2, 0);
        await sendPayload(slow, file, { size: expected.length, segments }, { bufferSize: 64 * 1024 });
        expect(slow.sent().equals(expected)).toBe(true);
        expect(asyncRead).toHaveBeenCalledTimes(7);
      } finally {
        clock.mockRestore();
      }
    } finally {
      asyncRead.mockRestore();
    }
  });

  it('sends a payload larger than the pool with memory bounded by the pool', async () => {
    const t = new FakeTransport(1024, 2, 0);
    // 64 repetitions of the 64 KiB file = 4 MiB through 3 × 8 KiB buffers.
    const segments: Payload['segments'] = Array.from({ length: 64 }, () => ({ kind: 'file' as const, offset: 0, length: content.length }));
    const stats = await sendPayload(t, file, { size: 64 * content.length, segments }, { bufferSize: 8192 });
    expect(stats.buffersAllocated).toBe(3);
    expect(t.buffersSeen.size).toBe(3);
    expect(t.writes.length).toBe(512);
    const all = t.sent();
    expect(all.subarray(content.length * 63).equals(content)).toBe(true);
  });
});
