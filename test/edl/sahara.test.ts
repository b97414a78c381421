// The Sahara host state machine, fed bytes (no I/O), plus runSahara against
// the emulated boot ROM for the multi-image chain and the "already running" cases.
import { describe, expect, it } from 'vitest';
import { SaharaHost, runSahara, type SaharaImage } from '../../src/edl/sahara.js';
import {
  decodeSaharaPacket,
  encodeDoneResp,
  encodeEndOfImage,
  encodeHello,
  encodeReadData,
  encodeReadData64,
  encodeCmdReady,
  encodeExecuteResp,
} from '../../src/edl/sahara-packets.js';
import { EdlProtocolError, SaharaError } from '../../src/edl/errors.js';
import { DeviceFailError, TransportTimeoutError } from '../../src/errors.js';
import { bytes, makeElf, startInProcessDevice } from './helpers.js';

const prog = bytes(0x3000, 42);
const images = (extra: [number, Uint8Array][] = []): Map<number, SaharaImage> =>
  new Map<number, SaharaImage>([[13, { id: 13, name: 'prog_firehose_ddr.elf', data: prog }], ...extra.map(([id, data]): [number, SaharaImage] => [id, { id, name: `img${id}.elf`, data }])]);

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('SaharaHost (byte-fed)', () => {
  it('HELLO -> HELLO_RESP with the exact bytes of edl.md §3.3', () => {
    const host = new SaharaHost(images());
    // Real HELLO bytes from bkerler/edl #97.
    const hello = Buffer.from('01000000' + '30000000' + '02000000' + '01000000' + '00040000' + '00000000' + '00'.repeat(24), 'hex');
    const step = host.receive(hello);
    expect(step.error).toBeUndefined();
    expect(step.writes.map(hex)).toEqual(['020000003000000002000000010000000000000000000000' + '00'.repeat(24)]);
    expect(step.events).toEqual([{ type: 'hello', version: 2, mode: 0 }]);
  });

  it('READ_DATA (32) and READ_DATA64 are answered with exactly the requested bytes', () => {
    const host = new SaharaHost(images());
    host.receive(encodeHello());
    const r32 = host.receive(Buffer.from('03000000' + '14000000' + '0d000000' + '00000000' + '34000000', 'hex'));
    expect(r32.writes).toHaveLength(1);
    expect(hex(r32.writes[0]!)).toBe(hex(prog.subarray(0, 0x34)));
    // READ_DATA64 real bytes (bkerler/edl #398): image 13, offset 0, 0x40.
    const r64 = host.receive(Buffer.from('12000000' + '20000000' + '0d00000000000000' + '0000000000000000' + '4000000000000000', 'hex'));
    expect(hex(r64.writes[0]!)).toBe(hex(prog.subarray(0, 0x40)));
    const mid = host.receive(encodeReadData64(13, 0x1234, 0x777));
    expect(hex(mid.writes[0]!)).toBe(hex(prog.subarray(0x1234, 0x1234 + 0x777)));
    expect(mid.events).toContainEqual({ type: 'served', imageId: 13, offset: 0x1234, length: 0x777 });
  });

  it('END_OF_IMAGE(0) -> DONE; DONE_RESP(1) completes', () => {
    const host = new SaharaHost(images());
    host.receive(encodeHello());
    host.receive(encodeReadData(13, 0, 16));
    const eoi = host.receive(encodeEndOfImage(13, 0));
    expect(eoi.writes.map(hex)).toEqual(['0500000008000000']);
    expect(host.complete).toBe(false);
    const done = host.receive(encodeDoneResp(1));
    expect(done.writes).toEqual([]);
    expect(host.complete).toBe(true);
    expect(done.events).toContainEqual({ type: 'complete', imagesServed: [13] });
  });

  it('multi-image chain: DONE_RESP(0) then a new HELLO for the next image', () => {
    const host = new SaharaHost(images([[59, bytes(100, 1)], [36, bytes(200, 2)]]));
    for (const id of [59, 36]) {
      expect(host.receive(encodeHello()).writes).toHaveLength(1);
      expect(host.receive(encodeReadData(id, 0, 10)).writes[0]!.length).toBe(10);
      host.receive(encodeEndOfImage(id, 0));
      host.receive(encodeDoneResp(0));
      expect(host.complete).toBe(false);
    }
    host.receive(encodeHello());
    host.receive(encodeReadData(13, 0, 10));
    host.receive(encodeEndOfImage(13, 0));
    host.receive(encodeDoneResp(1));
    expect(host.complete).toBe(true);
    expect(host.imagesServed).toEqual([59, 36, 13]);
  });

  it('MSM8916 quirk: DONE_RESP(0) after the only image (13) counts as complete', () => {
    const host = new SaharaHost(images());
    host.receive(encodeHello());
    host.receive(encodeEndOfImage(13, 0));
    host.receive(encodeDoneResp(0));
    expect(host.complete).toBe(true);
  });

  it('unknown image id: RESET sent, typed error asking for the multi-image list', () => {
    const host = new SaharaHost(images());
    host.receive(encodeHello());
    const step = host.receive(encodeReadData(59, 0, 0x40));
    expect(step.writes.map(hex)).toEqual(['0700000008000000']);
    expect(step.error).toBeInstanceOf(SaharaError);
    expect(step.error!.message).toMatch(/unknown Sahara image id 59 \(images provided: 13\)/);
    expect((step.error as SaharaError).hint).toMatch(/qsahara_device_programmer\.xml/);
  });

  it('request past the end of the file, rejected image, crash-dump mode, bad lengths: typed errors', () => {
    let host = new SaharaHost(images());
    host.receive(encodeHello());
    expect(host.receive(encodeReadData(13, 0x2ff0, 0x20)).error!.message).toMatch(/bytes 12272\.\.12304 of image 13 .* only 12288 bytes/);

    host = new SaharaHost(images());
    host.receive(encodeHello());
    const rej = host.receive(encodeEndOfImage(13, 0x22));
    expect(rej.error).toBeInstanceOf(DeviceFailError);
    expect(rej.error!.message).toContain('NAK_HASH_VERIFICATION_FAILURE (0x22)');
    expect((rej.error as SaharaError).hint).toMatch(/not signed for this phone/);
    expect(rej.writes).toEqual([]); // qdl sends nothing back

    host = new SaharaHost(images());
    expect(host.receive(encodeHello({ mode: 2 })).error!.message).toMatch(/memory-debug \(crash dump\)/);

    host = new SaharaHost(images());
    const short = Buffer.from(encodeHello().subarray(0, 40));
    short.writeUInt32LE(40, 4);
    const bad = host.receive(short);
    expect(bad.error).toBeInstanceOf(EdlProtocolError);
    expect(bad.error!.message).toMatch(/HELLO: expected length 0x30, found 0x28/);

    host = new SaharaHost(images());
    const lying = Buffer.from(encodeHello());
    lying.writeUInt32LE(0x40, 4);
    expect(host.receive(lying).error!.message).toMatch(/length field says 64 bytes, packet has 48/);

    host = new SaharaHost(images());
    expect(host.receive(encodeReadData(13, 0, 4)).error!.message).toMatch(/READ_DATA received while wait-hello/);
  });

  it('encoders and decoder agree', () => {
    expect(decodeSaharaPacket(encodeReadData64(13, 5, 6))).toEqual({ cmd: 'read-data', imageId: 13, offset: 5, length: 6, wide: true });
    expect(decodeSaharaPacket(encodeEndOfImage(13, 0x25))).toEqual({ cmd: 'end-of-image', imageId: 13, status: 0x25 });
  });
});

describe('runSahara over a transport (emulated boot ROM)', () => {
  it('uploads an ELF64 programmer through READ_DATA64 in shuffled 4 KiB pieces', async () => {
    const elf = makeElf({ bits: 64, segments: [0x2800, 0x1fff] });
    const dev = startInProcessDevice({ sahara: { read64: true } });
    const served: number[] = [];
    const r = await runSahara(dev.host, new Map([[13, { id: 13, name: 'p.elf', data: elf }]]), {
      onEvent: (e) => e.type === 'served' && served.push(e.offset),
    });
    expect(r).toEqual({ mode: 'uploaded', imagesServed: [13], chip: {} });
    expect(dev.device.loadedImages.get(13)).toEqual(elf);
    expect(served.slice(0, 2)).toEqual([0, 0x40]);
    expect(served.slice(2)).not.toEqual([...served.slice(2)].sort((a, b) => a - b)); // not in file order
    await dev.host.close();
  });

  it('serves a chain 59 -> 36 -> 13 with READ_DATA (ELF32)', async () => {
    const imgs = new Map<number, SaharaImage>();
    for (const [id, seed] of [[59, 1], [36, 2], [13, 3]] as const) imgs.set(id, { id, name: `i${id}`, data: makeElf({ bits: 32, segments: [0x1500], seed }) });
    const dev = startInProcessDevice({ sahara: { chain: [59, 36, 13] } });
    const r = await runSahara(dev.host, imgs);
    expect(r).toEqual({ mode: 'uploaded', imagesServed: [59, 36, 13], chip: {} });
    expect([...dev.device.loadedImages.entries()].map(([id, d]) => [id, d.equals(imgs.get(id)!.data)])).toEqual([[59, true], [36, true], [13, true]]);
    await dev.host.close();
  });

  it('programmer already running: banner -> returns it as pending; silence -> firehose-running after the hello timeout', async () => {
    const banner = startInProcessDevice({ startInFirehose: true, bannerOnConnect: true });
    const r1 = await runSahara(banner.host, new Map(), { helloTimeoutMs: 500 });
    expect(r1.mode).toBe('firehose-running');
    expect(r1.mode === 'firehose-running' && r1.pending.toString()).toMatch(/^<\?xml.*Binary build date/);
    expect(banner.device.received).toEqual([]); // nothing sent
    await banner.host.close();

    const silent = startInProcessDevice({ startInFirehose: true });
    const t0 = Date.now();
    const r2 = await runSahara(silent.host, new Map(), { helloTimeoutMs: 150 });
    expect(r2).toEqual({ mode: 'firehose-running', pending: Buffer.alloc(0) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(silent.device.received).toEqual([]);
    await silent.host.close();
  });

  it('truncated programmer: the host refuses the out-of-range request (typed error, RESET sent)', async () => {
    const dev = startInProcessDevice({});
    const truncated = makeElf().subarray(0, 0x40 + 56); // segments requested past the end
    const err = await runSahara(dev.host, new Map([[13, { id: 13, name: 'p.elf', data: truncated }]]), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SaharaError);
    expect((err as Error).message).toMatch(/bytes 64\.\.176 of image 13 \(p\.elf\), which has only 120 bytes/);
    await dev.done; // the device saw the RESET and left the bus
    expect(dev.device.state).toBe('gone');
  });

  it('boot ROM that hangs mid-upload: TransportTimeoutError within the Sahara timeout', async () => {
    const dev = startInProcessDevice({ sahara: { hangAfterRequests: 3 } });
    const t0 = Date.now();
    const err = await runSahara(dev.host, new Map([[13, { id: 13, name: 'p.elf', data: makeElf() }]]), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportTimeoutError);
    expect((err as Error).message).toMatch(/waiting for the next request from the boot ROM: timed out after 200 ms/);
    expect(Date.now() - t0).toBeLessThan(1000);
    await dev.host.close();
  });
});

describe('Sahara command mode (mode switch) for chip information', () => {
  it('byte-fed: HELLO_RESP(mode 3) -> CMD_READY -> EXECUTE/EXECUTE_RESP/EXECUTE_DATA -> SWITCH_MODE(0) -> upload', () => {
    const host = new SaharaHost(images(), { chipInfo: true });
    const s1 = host.receive(encodeHello({ version: 2 }));
    expect(decodeSaharaPacket(s1.writes[0]!)).toMatchObject({ cmd: 'hello-resp', mode: 3 });
    const s2 = host.receive(encodeCmdReady());
    expect(decodeSaharaPacket(s2.writes[0]!)).toEqual({ cmd: 'execute', clientCmd: 1 });
    const s3 = host.receive(encodeExecuteResp(1, 4));
    expect(decodeSaharaPacket(s3.writes[0]!)).toEqual({ cmd: 'execute-data', clientCmd: 1 });
    const serial = Buffer.from('28781fc5', 'hex');
    const s4 = host.receive(serial);
    expect(decodeSaharaPacket(s4.writes[0]!)).toEqual({ cmd: 'execute', clientCmd: 2 });
    host.receive(encodeExecuteResp(2, 8));
    const hw = Buffer.alloc(8);
    hw.writeBigUInt64LE(0x000e60e100720000n);
    const s6 = host.receive(hw);
    expect(decodeSaharaPacket(s6.writes[0]!)).toEqual({ cmd: 'switch-mode', mode: 0 });
    expect(s6.events).toContainEqual({ type: 'chip-info', chip: { serial: 0xc51f7828, hwid: '000e60e100720000', msmId: 0x000e60e1, oemId: 0x72 } });
    const s7 = host.receive(encodeHello());
    expect(decodeSaharaPacket(s7.writes[0]!)).toMatchObject({ cmd: 'hello-resp', mode: 0 });
  });

  it('against the emulated boot ROM, v2 (serial + HWID) and v3 (no HWID: refused, skipped), then the upload', async () => {
    for (const version of [2, 3]) {
      const dev = startInProcessDevice({ sahara: { version, serial: 0x1234abcd } });
      const r = await runSahara(dev.host, new Map([[13, { id: 13, name: 'p.elf', data: makeElf() }]]), { chipInfo: true, timeoutMs: 500 });
      expect(r.mode).toBe('uploaded');
      if (r.mode !== 'uploaded') return;
      expect(r.chip.serial).toBe(0x1234abcd);
      expect(r.chip.oemId).toBe(version === 2 ? 0x72 : undefined);
      expect(dev.device.loadedImages.has(13)).toBe(true);
      await dev.host.close();
    }
  });
});
