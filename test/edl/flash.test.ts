// End to end, in process: a synthetic ROM built on the corpus raphaelin
// rawprogram0.xml / patch0.xml flashed into the emulated EDL device.
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { buildEdlPlan } from '../../src/edl/rom-plan.js';
import { flashEdl, type EdlFlashEvent } from '../../src/edl/flash.js';
import { loadSaharaImages } from '../../src/edl/programmer.js';
import { EdlAuthRequiredError, FirehoseNakError, SaharaError } from '../../src/edl/errors.js';
import { AuthRequiredError, DeviceFailError, ExitCode, TransportTimeoutError } from '../../src/errors.js';
import { parseEdlXml } from '../../src/edl/rawprogram-xml.js';
import { readFileSync } from 'node:fs';
import { FAST, RAPHAELIN_DISK_SECTORS, RAPHAELIN_RAWPROGRAM, makeElf, makeRaphaelinRom, startInProcessDevice, tempDir } from './helpers.js';
import { loadedImageSha256 } from '../../src/emulator/edl/sahara-device.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function rom(opts: Parameters<typeof makeRaphaelinRom>[1] = {}) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return makeRaphaelinRom(t.dir, opts);
}

const N = RAPHAELIN_DISK_SECTORS;
const SS = 4096;

describe('EDL flash of a synthetic raphaelin ROM into the emulated device', () => {
  it('places every file at start_sector x 4096 on LUN 0 (sparse expanded), applies the patches and resets', async () => {
    const r = rom();
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    const images = await loadSaharaImages(plan.programmer!);
    const dev = startInProcessDevice({ sahara: { read64: true } });
    const events: EdlFlashEvent[] = [];
    const report = await flashEdl(dev.host, plan, images, { timeouts: FAST, onEvent: (e) => events.push(e) });
    await dev.done;

    expect(report.sahara).toBe('uploaded');
    expect(report.sectorSize).toBe(4096);
    expect(dev.device.loadedImages.get(13)).toEqual(images.get(13)!.data);
    const disk = dev.disks[0]!;
    // Every program entry with a file lands at its start sector (BackupGPT: NUM_DISK_SECTORS-5).
    const entries = parseEdlXml(readFileSync(RAPHAELIN_RAWPROGRAM, 'utf8'), 'rawprogram0.xml').entries.filter((e) => e.kind === 'program' && e.filename !== '');
    const patched = patchedRanges();
    for (const e of entries) {
      if (e.kind !== 'program') continue;
      const data = r.expected.get(e.filename)!;
      const start = e.label === 'BackupGPT' ? N - 5 : Number(e.startSector);
      const on = disk.read(start * SS, Math.ceil(data.length / SS) * SS);
      const padded = Buffer.concat([data, Buffer.alloc(on.length - data.length)]);
      for (const [s, off, len] of patched) if (s >= start && s < start + on.length / SS) padded.fill(0, (s - start) * SS + off, (s - start) * SS + off + len), on.fill(0, (s - start) * SS + off, (s - start) * SS + off + len);
      expect(on.equals(padded), `${e.label} (${e.filename}) at sector ${start}`).toBe(true);
    }
    // Partition entries around the programs stay untouched (filename="" entries are never written).
    expect(disk.read(8 * SS, 8 * SS).equals(Buffer.alloc(8 * SS))).toBe(true); // ssd
    expect(disk.read(49152 * SS, SS).equals(Buffer.alloc(SS))).toBe(true); // persist

    // Patches: primary header fields and CRCs, backup header fields and CRCs.
    const hdr = disk.read(1 * SS, SS);
    expect(hdr.readBigUInt64LE(32)).toBe(BigInt(N - 1)); // backup header LBA
    expect(hdr.readBigUInt64LE(48)).toBe(BigInt(N - 6)); // last usable LBA
    expect(hdr.readUInt32LE(88)).toBe(crc32(disk.read(2 * SS, 4096)));
    expect(disk.read(2 * SS, SS).readBigUInt64LE(3880)).toBe(BigInt(N - 6)); // userdata last LBA
    const zeroed = Buffer.from(hdr.subarray(0, 92));
    zeroed.writeUInt32LE(0, 16);
    expect(hdr.readUInt32LE(16)).toBe(crc32(zeroed));
    const bhdr = disk.read((N - 1) * SS, SS);
    expect(bhdr.readBigUInt64LE(24)).toBe(BigInt(N - 1));
    expect(bhdr.readBigUInt64LE(48)).toBe(BigInt(N - 6));
    expect(bhdr.readBigUInt64LE(72)).toBe(BigInt(N - 5));
    expect(bhdr.readUInt32LE(88)).toBe(crc32(disk.read((N - 5) * SS, 4096)));
    const bz = Buffer.from(bhdr.subarray(0, 92));
    bz.writeUInt32LE(0, 16);
    expect(bhdr.readUInt32LE(16)).toBe(crc32(bz));

    // Order: configure, probe, programs, DISK patches only, reset last.
    const tags = dev.device.commands.map((c) => c.tag);
    expect(tags[0]).toBe('configure');
    expect(tags.filter((t) => t === 'patch')).toHaveLength(13);
    expect(dev.device.commands.filter((c) => c.tag === 'patch').every((c) => c.attrs.filename === 'DISK')).toBe(true);
    expect(tags.at(-1)).toBe('power');
    expect(dev.device.commands.at(-1)!.attrs.value).toBe('reset');
    expect(dev.device.powerEvents).toEqual(['reset']);
    // BackupGPT's start sector went to the device unchanged.
    expect(dev.device.commands.some((c) => c.tag === 'program' && c.attrs.start_sector === 'NUM_DISK_SECTORS-5.')).toBe(true);
    // Sparse DONT_CARE ranges are not transmitted: userdata sends 4 blocks, not 2004.
    const userdata = dev.device.commands.filter((c) => c.tag === 'program' && c.attrs.label === 'userdata');
    expect(userdata.map((c) => [c.attrs.start_sector, c.attrs.num_partition_sectors])).toEqual([
      ['507904', '1'],
      ['509905', '3'],
    ]);
    expect(events.some((e) => e.type === 'reset')).toBe(true);
    expect(dev.device.firehose.oversizedTransfers).toBe(0);
  });

  it('renegotiates the payload size and never exceeds it; serves a READ_DATA (32-bit) multi-image chain', async () => {
    const r = rom();
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    const images = await loadSaharaImages(plan.programmer!);
    images.set(59, { id: 59, name: 'sequencer_ram.elf', data: makeElf({ bits: 32, segments: [0x900], seed: 3 }) });
    images.set(36, { id: 36, name: 'multi_image_qti.mbn', data: makeElf({ bits: 32, segments: [0x300, 0x1100], seed: 4 }) });
    const dev = startInProcessDevice({ maxPayloadToTarget: 8192, sahara: { chain: [59, 36, 13] } });
    const report = await flashEdl(dev.host, plan, images, { timeouts: FAST });
    await dev.done;
    expect(report.configure.maxPayloadToTarget).toBe(8192);
    expect(report.configure.attempts).toBe(2);
    expect([...dev.device.loadedImages.keys()]).toEqual([59, 36, 13]);
    expect(dev.device.loadedImages.get(36)).toEqual(images.get(36)!.data);
    expect(dev.device.firehose.oversizedTransfers).toBe(0);
    expect(dev.disks[0]!.read(1024 * SS, 3 * SS).equals(r.expected.get('misc.img')!)).toBe(true);
  });

  it('auth-required device: AuthRequiredError (exit 6), only the configure was sent', async () => {
    const r = rom();
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    const images = await loadSaharaImages(plan.programmer!);
    const dev = startInProcessDevice({ authRequired: true, authPhrase: 'ERROR: ONLY NOP AND SIG TAG CAN BE RECEIVED BEFORE AUTHENTICATION.' });
    const err = await flashEdl(dev.host, plan, images, { timeouts: FAST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdlAuthRequiredError);
    expect(err).toBeInstanceOf(AuthRequiredError);
    expect((err as EdlAuthRequiredError).exitCode).toBe(ExitCode.AUTH_REQUIRED);
    expect((err as Error).message).toMatch(/authorised/);
    expect((err as Error).message).toContain('prog_ufs_firehose_sm8150_ddr.elf');
    expect((err as Error).message).toContain('chip serial 0xc51f7828'); // from the programmer's banner
    await new Promise((res) => setTimeout(res, 50));
    expect(dev.device.commands.map((c) => c.tag)).toEqual(['configure']);
    expect(dev.device.received.filter((p) => p.mode === 'firehose')).toHaveLength(1);
    await dev.host.close();
  });

  it('programmer not accepted by the boot ROM: typed Sahara error naming the status', async () => {
    const r = rom();
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    const images = await loadSaharaImages(plan.programmer!);
    const dev = startInProcessDevice({ sahara: { acceptSha256: [loadedImageSha256(makeElf({ seed: 99 }))] } });
    const err = await flashEdl(dev.host, plan, images, { timeouts: FAST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SaharaError);
    expect((err as Error).message).toContain('NAK_HASH_VERIFICATION_FAILURE');
    expect(dev.device.commands).toHaveLength(0);
    await dev.host.close();
  });

  it('programmer already running (no HELLO): skips Sahara and flashes', async () => {
    const r = rom();
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    const images = await loadSaharaImages(plan.programmer!);
    for (const banner of [false, true]) {
      const dev = startInProcessDevice({ startInFirehose: true, bannerOnConnect: banner });
      const report = await flashEdl(dev.host, plan, images, { timeouts: FAST, helloTimeoutMs: 200 });
      await dev.done;
      expect(report.sahara).toBe('firehose-running');
      expect(dev.device.received.every((p) => p.mode !== 'sahara')).toBe(true);
      expect(dev.disks[0]!.read(163840 * SS, 8192 + 100).equals(r.expected.get('recovery.img')!)).toBe(true);
    }
  });

  it('stream-like device (several documents per read) flashes the same bytes', async () => {
    const r = rom();
    const plan = await buildEdlPlan([r.root], { requireFiles: true });
    const images = await loadSaharaImages(plan.programmer!);
    const dev = startInProcessDevice({ coalesce: true });
    await flashEdl(dev.host, plan, images, { timeouts: FAST });
    await dev.done;
    const meta = r.expected.get('metadata.img')!;
    expect(dev.disks[0]!.read(20480 * SS, meta.length).equals(meta)).toBe(true);
    expect(dev.device.powerEvents).toEqual(['reset']);
  });

  describe('injected faults give typed errors within their timeouts', () => {
    const cases: [string, Parameters<typeof startInProcessDevice>[0], (e: unknown) => void][] = [
      ['NAK on program', { faults: { nakTag: 'program' } }, (e) => {
        expect(e).toBeInstanceOf(FirehoseNakError);
        expect(e).toBeInstanceOf(DeviceFailError);
        expect((e as FirehoseNakError).logs).toContain('ERROR: injected failure on <program>');
      }],
      ['NAK on patch', { faults: { nakTag: 'patch' } }, (e) => expect((e as FirehoseNakError).tag).toBe('patch')],
      ['stall on program', { faults: { stallTag: 'program' } }, (e) => expect(e).toBeInstanceOf(TransportTimeoutError)],
      ['stall on power', { faults: { stallTag: 'power' } }, (e) => expect(e).toBeInstanceOf(TransportTimeoutError)],
      ['short read (sector-size probe)', { faults: { shortRead: true } }, (e) => {
        expect(e).toBeInstanceOf(TransportTimeoutError);
        expect((e as Error).message).toMatch(/short read, received 2048 of 4096 bytes/);
      }],
    ];
    for (const [name, opts, check] of cases) {
      it(name, async () => {
        const r = rom();
        const plan = await buildEdlPlan([r.root], { requireFiles: true });
        const images = await loadSaharaImages(plan.programmer!);
        const dev = startInProcessDevice(opts);
        const t0 = Date.now();
        const err = await flashEdl(dev.host, plan, images, { timeouts: FAST }).catch((e: unknown) => e);
        expect(Date.now() - t0).toBeLessThan(3000);
        check(err);
        await dev.host.close();
      });
    }
  });
});

/** [sector, byte offset, length] of every DISK patch of raphaelin patch0.xml. */
function patchedRanges(): [number, number, number][] {
  return [
    [2, 3880, 8], [N - 5, 3880, 8], [1, 48, 8], [N - 1, 48, 8], [1, 32, 8], [N - 1, 24, 8],
    [N - 1, 72, 8], [1, 88, 4], [N - 1, 88, 4], [1, 16, 4], [N - 1, 16, 4],
  ];
}
