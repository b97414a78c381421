import { describe, expect, it } from 'vitest';
import { TransportClosedError, TransportTimeoutError } from '../../src/errors.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';

describe('createMemoryTransportPair', () => {
  it('delivers packets in order, each read returning one packet', async () => {
    const { host, device } = createMemoryTransportPair();
    expect(host.kind).toBe('memory');
    await Promise.all([host.write(Buffer.from('a')), host.write(Buffer.from('bb')), host.write(Buffer.from('ccc'))]);
    expect((await device.read(100)).toString()).toBe('a');
    expect((await device.read(100)).toString()).toBe('bb');
    expect((await device.read(100)).toString()).toBe('ccc');
    await device.write(Buffer.from('OKAY'));
    expect((await host.read(256)).toString()).toBe('OKAY');
  });

  it('a read waiting before the write gets the packet', async () => {
    const { host, device } = createMemoryTransportPair();
    const r = device.read(10);
    await host.write(Buffer.from('later'));
    expect((await r).toString()).toBe('later');
  });

  it('read(max) splits a long packet and keeps the rest for the next read', async () => {
    const { host, device } = createMemoryTransportPair();
    await host.write(Buffer.from('0123456789'));
    await host.write(Buffer.from('X'));
    expect((await device.read(4)).toString()).toBe('0123');
    expect((await device.read(100)).toString()).toBe('456789');
    expect((await device.read(100)).toString()).toBe('X');
  });

  it('copies written data, so the writer may reuse its buffer', async () => {
    const { host, device } = createMemoryTransportPair();
    const buf = Buffer.from('first');
    await host.write(buf);
    buf.write('XXXXX');
    expect((await device.read(10)).toString()).toBe('first');
  });

  it('honours read timeouts and does not lose a packet sent after one', async () => {
    const { host, device } = createMemoryTransportPair();
    await expect(host.read(10, { timeoutMs: 50 })).rejects.toBeInstanceOf(TransportTimeoutError);
    await device.write(Buffer.from('OKAY'));
    expect((await host.read(10, { timeoutMs: 50 })).toString()).toBe('OKAY');
  });

  it('close propagates: queued packets still arrive, then reads and writes fail as closed', async () => {
    const { host, device } = createMemoryTransportPair();
    const pending = host.read(10, { timeoutMs: 5000 });
    await device.write(Buffer.from('OKAY'));
    await device.close();
    expect((await pending).toString()).toBe('OKAY');
    await expect(host.read(10, { timeoutMs: 5000 })).rejects.toBeInstanceOf(TransportClosedError);
    await expect(host.write(Buffer.from('x'))).rejects.toBeInstanceOf(TransportClosedError);
    await expect(device.read(10, { timeoutMs: 5000 })).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('a read pending on the far side fails when this side closes', async () => {
    const { host, device } = createMemoryTransportPair();
    const r = device.read(10, { timeoutMs: 5000 });
    await host.close();
    await expect(r).rejects.toBeInstanceOf(TransportClosedError);
  });
});
