// Firehose framing (byte-fed reader) and the client against a scripted device
// and the emulated programmer: configure negotiation, NAKs, logs, rawmode.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildCommand, FirehoseReader, type FirehoseEvent } from '../../src/edl/firehose-xml.js';
import { FirehoseClient, cappedTimeouts, parseStorageInfo } from '../../src/edl/firehose.js';
import { EdlAuthRequiredError, FirehoseNakError } from '../../src/edl/errors.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import { ExitCode, TransportTimeoutError } from '../../src/errors.js';
import { FAST, bytes, startInProcessDevice } from './helpers.js';

const doc = (inner: string): string => `<?xml version="1.0" encoding="UTF-8" ?><data>${inner}</data>`;
const log = (v: string): string => doc(`<log value="${v}" />`);
const ack = (extra = ''): string => doc(`<response value="ACK"${extra} />`);
const nak = (extra = ''): string => doc(`<response value="NAK"${extra} />`);

function drain(r: FirehoseReader): FirehoseEvent[] {
  const out: FirehoseEvent[] = [];
  for (let e = r.next(); e; e = r.next()) out.push(e);
  return out;
}

describe('Firehose framing', () => {
  it('builds one document per command, escaping attribute values', () => {
    expect(buildCommand('program', { SECTOR_SIZE_IN_BYTES: 4096, start_sector: 'NUM_DISK_SECTORS-5.', label: 'a"<b>&', skip: undefined }).toString()).toBe(
      '<?xml version="1.0" ?><data><program SECTOR_SIZE_IN_BYTES="4096" start_sector="NUM_DISK_SECTORS-5." label="a&quot;&lt;b&gt;&amp;" /></data>',
    );
    expect(() => buildCommand('bad tag', {})).toThrow(RangeError);
  });

  it('splits several documents in one read and documents split across reads', () => {
    const r = new FirehoseReader();
    const all = Buffer.from(log('INFO: one') + '\n' + log('INFO: two &amp; more') + ack(' rawmode="false"'));
    r.push(all.subarray(0, 30));
    expect(r.next()).toBeUndefined();
    r.push(all.subarray(30, 101));
    r.push(all.subarray(101));
    expect(drain(r)).toEqual([
      { type: 'log', text: 'INFO: one' },
      { type: 'log', text: 'INFO: two & more' },
      { type: 'response', response: { ack: true, value: 'ACK', rawmode: false, attrs: { value: 'ACK', rawmode: 'false' } } },
    ]);
  });

  it('rawmode="true": bytes glued after </data> are data, not XML; resumeXml() goes back', () => {
    const r = new FirehoseReader();
    const data = Buffer.from('<?xml but really data</data>');
    r.push(Buffer.concat([Buffer.from(ack(' rawmode="true"')), data]));
    const e = drain(r);
    expect(e).toHaveLength(1);
    expect(r.inRawMode).toBe(true);
    expect(r.takeRaw(1000).equals(data)).toBe(true);
    r.resumeXml();
    r.push(Buffer.from(ack()));
    expect(drain(r).map((x) => x.type)).toEqual(['response']);
  });

  it('byte-fed at arbitrary split points: the same events as one big read', () => {
    const stream = Buffer.from(log('INFO: a') + '\n' + log('INFO: b') + ack(' MaxXMLSizeInBytes="4096"') + log('INFO: after') + nak(' rawmode="false"'));
    const whole = new FirehoseReader();
    whole.push(stream);
    const expected = drain(whole);
    expect(expected.map((e) => e.type)).toEqual(['log', 'log', 'response', 'log', 'response']);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
        const r = new FirehoseReader();
        const events: FirehoseEvent[] = [];
        let at = 0;
        for (const c of [...cuts.sort((a, b) => a - b), stream.length]) {
          r.push(stream.subarray(at, c));
          at = c;
          events.push(...drain(r));
        }
        expect(events).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('drops the F0 E9 88 14 marker and reports junk without failing; tolerates malformed log values', () => {
    const r = new FirehoseReader();
    r.push(Buffer.concat([Buffer.from([0xf0, 0xe9, 0x88, 0x14]), Buffer.from('garbage!' + doc('<log value="a < b" />') + ack())]));
    const e = drain(r);
    expect(e[0]).toEqual({ type: 'junk', text: 'garbage!' });
    expect(e[1]).toEqual({ type: 'log', text: 'a < b' });
    expect(e[2]!.type).toBe('response');
  });
});

/** A scripted device: answers each host packet with the listed packets. */
function scripted(answers: ((packet: Buffer) => string[] | Buffer[] | undefined)[]): { host: Transport; seen: Buffer[] } {
  const { host, device } = createMemoryTransportPair({ timeoutMs: 2000 });
  const seen: Buffer[] = [];
  void (async () => {
    for (;;) {
      let p: Buffer;
      try {
        p = await device.read(1 << 24, { timeoutMs: 5000 });
      } catch {
        return;
      }
      seen.push(p);
      const a = answers.shift();
      for (const out of a?.(p) ?? []) await device.write(typeof out === 'string' ? Buffer.from(out) : out);
    }
  })();
  return { host, seen };
}

describe('FirehoseClient', () => {
  it('configure: NAK carrying a smaller size -> configure again with it -> ACK', async () => {
    const dev = scripted([
      () => [log('ERROR: payload too big'), nak(' MaxPayloadSizeToTargetInBytes="65536"')],
      () => [ack(' MemoryName="UFS" MaxPayloadSizeToTargetInBytes="65536" MaxPayloadSizeToTargetInBytesSupported="65536" MaxPayloadSizeFromTargetInBytes="8192" MaxXMLSizeInBytes="4096" TargetName="8150"')],
    ]);
    const logs: string[] = [];
    const c = new FirehoseClient(dev.host, { timeouts: FAST, onLog: (l) => logs.push(l) });
    const r = await c.configure('ufs');
    expect(r).toMatchObject({ maxPayloadToTarget: 65536, maxPayloadFromTarget: 8192, attempts: 2, targetName: '8150', memoryName: 'UFS' });
    expect(dev.seen.map((p) => /MaxPayloadSizeToTargetInBytes="(\d+)"/.exec(p.toString())![1])).toEqual(['1048576', '65536']);
    expect(dev.seen[0]!.toString()).toContain('MemoryName="ufs"');
    expect(dev.seen[0]!.toString()).toContain('ZlpAwareHost="1"');
    expect(logs).toEqual(['ERROR: payload too big']);
  });

  it('configure: a silent programmer is retried until it answers (start-up time)', async () => {
    const dev = scripted([() => [], () => [], () => [ack(' MaxPayloadSizeToTargetInBytes="1048576"')]]);
    const c = new FirehoseClient(dev.host, { timeouts: { ...FAST, configureAttempt: 50, configureTotal: 2000 } });
    const r = await c.configure('emmc');
    expect(r.attempts).toBe(3);
  });

  it('configure never answered: TransportTimeoutError after configureTotal', async () => {
    const dev = scripted([]);
    const c = new FirehoseClient(dev.host, { timeouts: { ...FAST, configureAttempt: 50, configureTotal: 300 } });
    const t0 = Date.now();
    await expect(c.configure('ufs')).rejects.toThrow(/configure: the programmer never answered/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('auth phrase on any spelling/case: EdlAuthRequiredError (exit 6) and the client refuses to send anything else', async () => {
    for (const phrase of ['ERROR: Only nop and sig tag can be recevied before authentication.', 'error: only NOP and SIG tag can be received before authentication']) {
      const dev = scripted([() => [log(phrase), nak()]]);
      const c = new FirehoseClient(dev.host, { timeouts: FAST, programmer: 'prog_firehose_ddr.elf' });
      const err = await c.configure('ufs').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EdlAuthRequiredError);
      expect((err as EdlAuthRequiredError).exitCode).toBe(ExitCode.AUTH_REQUIRED);
      expect((err as EdlAuthRequiredError).logs).toEqual([phrase]);
      await expect(c.nop()).rejects.toBeInstanceOf(EdlAuthRequiredError);
      await expect(c.power('reset')).rejects.toBeInstanceOf(EdlAuthRequiredError);
      expect(dev.seen).toHaveLength(1);
    }
  });

  it('a slow programmer: the auth log before the attempt timed out, the NAK after the retry -> still EdlAuthRequiredError', async () => {
    const phrase = 'ERROR: Only nop and sig tag can be recevied before authentication.';
    const { host, device } = createMemoryTransportPair({ timeoutMs: 2000 });
    void (async () => {
      await device.read(4096, { timeoutMs: 2000 }); // configure #1
      await device.write(Buffer.from(log(phrase)));
      await device.read(4096, { timeoutMs: 2000 }); // configure #2, sent after the 50 ms attempt timed out
      await device.write(Buffer.from(nak()));
    })();
    const c = new FirehoseClient(host, { timeouts: { ...FAST, configureAttempt: 50, configureTotal: 2000 } });
    const err = await c.configure('ufs').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdlAuthRequiredError);
    expect((err as EdlAuthRequiredError).logs).toEqual([phrase]);
  });

  it('NAK with logs: FirehoseNakError carrying the device words and a memory-type hint', async () => {
    const dev = scripted([() => [log('ERROR: Failed to open the SDCC Device slot 0 partition 0'), nak()]]);
    const c = new FirehoseClient(dev.host, { timeouts: FAST });
    const err = (await c.configure('emmc').catch((e: unknown) => e)) as FirehoseNakError;
    expect(err).toBeInstanceOf(FirehoseNakError);
    expect(err.exitCode).toBe(ExitCode.DEVICE_FAIL);
    expect(err.logs).toEqual(['ERROR: Failed to open the SDCC Device slot 0 partition 0']);
    expect(err.hint).toMatch(/--memory ufs/);
  });

  it('program: ACK rawmode, exact bytes in payload-sized writes with the last sector zero-padded, final ACK', async () => {
    const dev = scripted([
      () => [ack(' rawmode="true"')],
      () => undefined,
      () => [log('INFO: Finished programming'), ack(' rawmode="false"')],
    ]);
    const c = new FirehoseClient(dev.host, { timeouts: FAST, maxPayload: 8192 });
    const data = bytes(8192 + 5000, 9);
    const progress: number[] = [];
    async function* src() {
      yield data.subarray(0, 3000);
      yield data.subarray(3000);
    }
    await c.program({ lun: 2, sectorSize: 4096, startSector: 'NUM_DISK_SECTORS-5.', sectors: 4, label: 'x', filename: 'x.img' }, src(), (n) => progress.push(n));
    expect(dev.seen[0]!.toString()).toContain('<program SECTOR_SIZE_IN_BYTES="4096" num_partition_sectors="4" physical_partition_number="2" start_sector="NUM_DISK_SECTORS-5." filename="x.img" label="x" />');
    expect(dev.seen.slice(1).map((p) => p.length)).toEqual([8192, 8192]);
    const sent = Buffer.concat(dev.seen.slice(1));
    expect(sent.subarray(0, data.length).equals(data)).toBe(true);
    expect(sent.subarray(data.length).equals(Buffer.alloc(16384 - data.length))).toBe(true);
    expect(progress).toEqual([8192, 16384]);
  });

  it('program: a source longer than the sectors is refused; a final NAK names the partition', async () => {
    const dev = scripted([() => [ack(' rawmode="true"')], () => [log('ERROR: write failed'), nak(' rawmode="false"')]]);
    const c = new FirehoseClient(dev.host, { timeouts: FAST });
    const err = (await c.program({ lun: 0, sectorSize: 512, startSector: 1, sectors: 1, label: 'boot' }, (async function* () {
      yield bytes(512, 1);
    })()).catch((e: unknown) => e)) as FirehoseNakError;
    expect(err).toBeInstanceOf(FirehoseNakError);
    expect(err.message).toMatch(/<program> boot \(LUN 0, start 1, 1 sectors\) data was refused \(NAK\); device said: "ERROR: write failed"/);

    const dev2 = scripted([() => [ack(' rawmode="true"')]]);
    const c2 = new FirehoseClient(dev2.host, { timeouts: FAST });
    await expect(c2.program({ lun: 0, sectorSize: 512, startSector: 1, sectors: 1 }, (async function* () {
      yield bytes(513, 1);
    })())).rejects.toThrow(/more than 512 bytes/);
  });

  it('read: ZLP, ACK glued to the first data bytes, data split across reads, logs after the response', async () => {
    const payload = bytes(8192, 3);
    const dev = scripted([
      () => [Buffer.concat([Buffer.from(ack(' rawmode="true"')), payload.subarray(0, 100)]), Buffer.alloc(0), payload.subarray(100, 5000), payload.subarray(5000), Buffer.from(ack(' rawmode="false"') + log('INFO: late log'))],
      () => [ack()],
    ]);
    const logs: string[] = [];
    const c = new FirehoseClient(dev.host, { timeouts: FAST, onLog: (l) => logs.push(l) });
    const got: Buffer[] = [];
    await c.read({ lun: 0, sectorSize: 4096, startSector: 0, sectors: 2 }, (b) => void got.push(Buffer.from(b)));
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    await c.setBootableStorageDrive(1);
    expect(logs).toEqual(['INFO: late log']);
    expect(dev.seen[1]!.toString()).toContain('<setbootablestoragedrive value="1" />');
  });

  it('sector-size probe: 512 NAK, 4096 ACK against the emulated UFS programmer; patch/erase/storage info', async () => {
    const dev = startInProcessDevice({ luns: 2, sectors: 64, startInFirehose: true });
    const c = new FirehoseClient(dev.host, { timeouts: FAST });
    await c.configure('ufs');
    expect(await c.probeSectorSize()).toBe(4096);
    const reads = dev.device.commands.filter((x) => x.tag === 'read').map((x) => x.attrs.SECTOR_SIZE_IN_BYTES);
    expect(reads).toEqual(['512', '4096']);
    await c.patch({ sectorSize: 4096, byteOffset: 8, lun: 1, sizeInBytes: 8, startSector: 'NUM_DISK_SECTORS-1.', value: 'NUM_DISK_SECTORS-2' });
    expect(dev.disks[1]!.read(63 * 4096 + 8, 8).readBigUInt64LE(0)).toBe(62n);
    dev.disks[0]!.write(4096 * 3, bytes(4096, 1));
    await c.erase({ lun: 0, sectorSize: 4096, startSector: 3, sectors: 1 });
    expect(dev.disks[0]!.read(4096 * 3, 4096).equals(Buffer.alloc(4096))).toBe(true);
    const info = await c.getStorageInfo(1);
    expect(info).toMatchObject({ totalBlocks: 64, blockSize: 4096, numPhysical: 2, memType: 'UFS' });
    await dev.host.close();
  });

  it('eMMC emulated device: probe says 512', async () => {
    const dev = startInProcessDevice({ memory: 'emmc', sectors: 4096, startInFirehose: true });
    const c = new FirehoseClient(dev.host, { timeouts: FAST });
    await c.configure('emmc');
    expect(await c.probeSectorSize()).toBe(512);
    await dev.host.close();
  });

  it('stalled setup ACK: TransportTimeoutError naming the command and the device logs so far', async () => {
    const dev = scripted([() => [log('INFO: thinking')]]);
    const c = new FirehoseClient(dev.host, { timeouts: FAST });
    const t0 = Date.now();
    const err = await c.erase({ lun: 0, sectorSize: 4096, startSector: 0, sectors: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportTimeoutError);
    expect((err as Error).message).toMatch(/Firehose <erase> \(LUN 0, start 0, 1 sectors\): no response \(device logged: "INFO: thinking"\)/);
    expect(Date.now() - t0).toBeLessThan(FAST.erase + 400);
  });

  it('a device still in Sahara (HELLO instead of XML): clear protocol error, not a silent timeout', async () => {
    const dev = startInProcessDevice({});
    const c = new FirehoseClient(dev.host, { timeouts: FAST });
    await expect(c.configure('ufs')).rejects.toThrow(/still in Sahara mode/);
    await dev.host.close();
  });

  it('storage info parsing: JSON and older key/value logs; timeouts capping', () => {
    expect(parseStorageInfo(['INFO: {"storage_info": {"total_blocks": 100, "block_size": 512, "num_physical": 1, "mem_type": "eMMC"}}'])).toMatchObject({ totalBlocks: 100, blockSize: 512, numPhysical: 1, memType: 'eMMC' });
    expect(parseStorageInfo(['INFO: UFS Total Active LU: 0x6', 'INFO: block_size: 4096'])).toMatchObject({ numPhysical: 6, blockSize: 4096 });
    expect(cappedTimeouts(250).programFinal).toBe(250);
    expect(cappedTimeouts(250).drain).toBe(100);
  });
});
