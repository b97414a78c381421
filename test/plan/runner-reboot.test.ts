// runPlan across reboots, -w / format, and `update image-*.zip`, against the
// in-process emulator (reboot* closes the link; the device accepts the next
// connection): the device is followed through `reboot-bootloader` on the same
// address and checked by serial number, a device that never comes back or a
// different one is a transport error (5), sleeps really sleep and can be
// aborted, wipes erase and say the filesystem comes from Android, and update
// zips are checked before any write and flashed in AOSP flashall order.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AbortedError, BadInputError, GateRefusedError, TransportError } from '../../src/errors.js';
import { connectFastboot } from '../../src/fastboot/connect.js';
import type { PlanEvent } from '../../src/plan/events.js';
import { startFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { runPlan } from '../../src/plan/runner.js';
import { openRom, planForRom } from '../../src/rom/index.js';
import { withEmulator } from '../helpers/emulator.js';
import { buildGoogleRom, GOOGLE_PARTITIONS, runGoogle, writes, type GoogleRom, type GoogleRomOptions, type Run } from './runner-google-rom.js';
import { execFileSync } from 'node:child_process';
import { needs, peerPath } from '../helpers/peers.js';

// -w and format build ext4 / f2fs images with the host's mke2fs / mkfs.f2fs (tests marked needs());
// without them they erase and say so (tests that look nowhere: mkfsSearchPath []).
const MKFS = needs('mke2fs', 'mkfs.f2fs');
const NO_MKFS = { mkfsSearchPath: [] };
/** Downloads of generated filesystems have unpredictable bytes (UUIDs, timestamps): compare their place only. */
const shape = (log: string[]) => writes(log).map((l) => (l.startsWith('download ') ? 'download' : l));
const F2FS_MAGIC = 0xf2f52010;
const EXT4_MAGIC = 0xef53;
/** e2fsck -fn on a stored ext4 partition: the filesystem miflash flashed is consistent. */
function e2fsckClean(file: string): boolean {
  try {
    execFileSync(peerPath('e2fsck'), ['-fn', file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-reboot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let romCount = 0;

async function googleRom(o: GoogleRomOptions = {}): Promise<GoogleRom> {
  return buildGoogleRom(path.join(work, `rom-${++romCount}`), o);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dl = (b: Buffer) => `download ${b.length} ${sha(b)}`;
const ends = (r: Run, kind: string) => r.events.filter((e): e is Extract<PlanEvent, { event: 'step-end' }> => e.event === 'step-end' && e.kind === kind);

describe('a reboot in the middle of the plan', () => {
  for (const hostMkfs of [true, false]) {
    it(`Google flash-all: follows both reboot-bootloader, sleeps, then -w update in AOSP order, wipes (${hostMkfs ? 'erase + format' : 'erase only: no mkfs tools'}), reboots`, { ...(hostMkfs ? MKFS : {}), timeout: 30_000 }, async () => {
      const rom = await googleRom();
      const r = await runGoogle(rom, { heads: { bootloader: 12 * 1024, radio: 20 * 1024, boot: 16 * 1024, system: rom.systemRaw.length, userdata: 65536, metadata: 65536 }, ...(hostMkfs ? {} : { run: NO_MKFS }) });
      expect(r.error).toBeUndefined();
      const z = rom.zipImages;
      expect(shape(r.log)).toEqual([
        dl(rom.bootloader),
        'flash:bootloader',
        'reboot-bootloader',
        dl(rom.radio),
        'flash:radio',
        'reboot-bootloader',
        // boot-critical first (boot, recovery, vbmeta), then OS images (system, vendor), as AOSP flashall
        dl(z['boot.img']!),
        'flash:boot',
        dl(z['recovery.img']!),
        'flash:recovery',
        dl(z['vbmeta.img']!),
        'flash:vbmeta',
        dl(z['system.img']!),
        'flash:system',
        dl(z['vendor.img']!),
        'flash:vendor',
        ...(hostMkfs
          ? ['erase:userdata', 'download', 'flash:userdata', 'erase:cache', 'download', 'flash:cache', 'erase:metadata', 'download', 'flash:metadata']
          : ['erase:userdata', 'erase:cache', 'erase:metadata']),
        'reboot',
      ].map((l) => (l.startsWith('download ') ? 'download' : l)));
      expect(r.connects).toBe(3);
      // The device is identified again after each reboot, before anything is written to it.
      const log = r.log;
      for (const at of log.flatMap((l, i) => (l === 'reboot-bootloader' ? [i] : []))) expect(log[at + 1]).toBe('getvar:serialno');
      expect(r.heads.bootloader).toEqual(rom.bootloader);
      expect(r.heads.radio).toEqual(rom.radio);
      expect(r.heads.boot).toEqual(z['boot.img']);
      expect(r.heads.system!.equals(rom.systemRaw)).toBe(true);
      if (hostMkfs) expect(r.heads.userdata!.readUInt32LE(1024)).toBe(F2FS_MAGIC);
      else expect(r.heads.userdata!.every((b) => b === 0)).toBe(true);
      const waits = ends(r, 'wait-device');
      expect(waits.map((w) => w.status)).toEqual(['ok', 'ok']);
      const starts = r.events.filter((e) => e.event === 'step-start' && e.kind === 'wait-device');
      expect(starts).toHaveLength(2);
      expect(ends(r, 'sleep').every((s) => s.durationMs >= 950)).toBe(true);
      const notes = r.events.filter((e) => e.event === 'message' && e.level === 'warning').map((e) => (e as { text: string }).text);
      if (hostMkfs) expect(notes.join('\n')).not.toMatch(/-w:/);
      else expect(notes.join('\n')).toMatch(/-w: userdata, cache, metadata erased, not formatted .*Android creates the filesystem/);
      expect(r.asked.map((q) => q.kind)).toEqual(['user-data']);
      const images = [rom.bootloader, rom.radio, ...['boot.img', 'recovery.img', 'vbmeta.img', 'system.img', 'vendor.img'].map((n) => z[n]!)].reduce((n, b) => n + b.length, 0);
      if (hostMkfs) expect(r.result!.bytesSent).toBeGreaterThan(images);
      else expect(r.result!.bytesSent).toBe(images);
    });
  }

  it('split images inside the zip go out in pieces, like flash (small max-download-size)', async () => {
    const rom = await googleRom({ script: 'fastboot --skip-reboot update image-emu-test1.zip\n', systemBlocks: 200 });
    const r = await runGoogle(rom, { emu: { maxDownloadSize: 128 * 1024 }, heads: { system: rom.systemRaw.length } });
    expect(r.error).toBeUndefined();
    expect(writes(r.log).filter((l) => l === 'flash:system').length).toBeGreaterThan(2);
    expect(r.heads.system!.equals(rom.systemRaw)).toBe(true);
    expect(writes(r.log).at(-1)).toBe('flash:vendor'); // --skip-reboot
    expect(r.connects).toBe(1);
  }, 30_000);

  it('a device that does not come back: transport error (5) after the reboot timeout, nothing more sent', async () => {
    const rom = await googleRom({ script: 'fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot-bootloader\nfastboot flash radio radio-emu-1.img\n' });
    const t0 = Date.now();
    const r = await runGoogle(rom, {
      run: { rebootTimeoutMs: 400 },
      reconnect: () => async () => {
        throw new TransportError('connect to tcp:127.0.0.1:1: ECONNREFUSED');
      },
    });
    expect(r.error).toBeInstanceOf(TransportError);
    expect((r.error as TransportError).exitCode).toBe(5);
    expect((r.error as TransportError).code).toBe('transport.reconnect-timeout');
    expect((r.error as Error).message).toMatch(/did not come back within 0.4 s after the reboot \(\d+ attempts; last: connect to .*ECONNREFUSED\)/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.connects).toBeGreaterThan(3);
    expect(writes(r.log)).toEqual([dl(rom.bootloader), 'flash:bootloader', 'reboot-bootloader']);
    expect(ends(r, 'wait-device')[0]).toMatchObject({ status: 'failed' });
    expect(r.events.at(-1)).toMatchObject({ event: 'error', exitCode: 5, code: 'transport.reconnect-timeout' });
  }, 15_000);

  it('a connect attempt that hangs does not stretch the reboot timeout', async () => {
    const rom = await googleRom({ script: 'fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot-bootloader\nfastboot flash radio radio-emu-1.img\n' });
    const t0 = Date.now();
    const r = await runGoogle(rom, { run: { rebootTimeoutMs: 300 }, reconnect: () => () => new Promise<never>(() => {}) });
    expect((r.error as TransportError).code).toBe('transport.reconnect-timeout');
    expect((r.error as Error).message).toMatch(/within 0\.3 s .*still connecting/);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.connects).toBe(2);
  }, 10_000);

  it('another device answering after the reboot is refused (serial number differs)', async () => {
    const rom = await googleRom({ script: 'fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot-bootloader\nfastboot flash radio radio-emu-1.img\n' });
    let otherLog: string[] = [];
    const r = await withEmulator({ product: 'emu', serial: 'OTHER02', partitions: GOOGLE_PARTITIONS }, async (other) => {
      const run = await runGoogle(rom, { reconnect: () => () => connectFastboot({ kind: 'tcp', host: '127.0.0.1', port: other.port }, { timeoutMs: 5000 }) });
      otherLog = [...other.log];
      return run;
    });
    expect(r.error).toBeInstanceOf(TransportError);
    expect((r.error as TransportError).code).toBe('transport.wrong-device');
    expect((r.error as Error).message).toMatch(/serial number 'OTHER02', but the plan started on 'EMU0001'/);
    expect(otherLog).toEqual(['getvar:serialno']);
    expect(r.connects).toBe(2); // refused at once, no polling
  }, 15_000);

  it('reboot fastboot: the device must come back as fastbootd (is-userspace), and max-download-size is asked again', async () => {
    const script = 'fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot fastboot\nfastboot flash radio radio-emu-1.img\n';
    const rom = await googleRom({ script });
    const ok = await runGoogle(rom);
    expect(ok.error).toBeUndefined();
    expect(writes(ok.log)).toEqual([dl(rom.bootloader), 'flash:bootloader', 'reboot-fastboot', dl(rom.radio), 'flash:radio']);
    const after = ok.log.slice(ok.log.indexOf('reboot-fastboot') + 1);
    expect(after.slice(0, 2)).toEqual(['getvar:serialno', 'getvar:is-userspace']);
    expect(after).toContain('getvar:max-download-size'); // the bootloader's limit is forgotten
    const bad = await runGoogle(rom, { emu: { fastbootd: false } }); // comes back as the bootloader (is-userspace: no)
    expect((bad.error as Error & { code: string }).code).toBe('plan.not-fastbootd');
    expect((bad.error as Error).message).toMatch(/after 'reboot fastboot' .* is not in userspace fastboot \(getvar is-userspace: no\)/);
    expect(writes(bad.log)).toEqual([dl(rom.bootloader), 'flash:bootloader', 'reboot-fastboot']);
  });

  it('over UDP too: the same udp: address is polled after the reboot', async () => {
    const rom = await googleRom({ script: 'fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot-bootloader\nfastboot flash radio radio-emu-1.img\n' });
    const store = mkdtempSync(path.join(work, 'udp-store-'));
    const emu = await startFastbootEmulator('udp:127.0.0.1:0', { store, product: 'emu', partitions: GOOGLE_PARTITIONS });
    try {
      const spec = { kind: 'udp' as const, host: '127.0.0.1', port: emu.port };
      const r = await openRom(rom.root);
      const client = await connectFastboot(spec, { timeoutMs: 5000 });
      let connects = 1;
      try {
        const res = await runPlan(await planForRom(r), {
          rom: r,
          client,
          deviceId: emu.address,
          confirm: async () => true,
          reconnect: () => {
            connects++;
            return connectFastboot(spec, { timeoutMs: 5000 });
          },
          reconnectIntervalMs: 50,
        });
        expect(res.status).toBe('ok');
      } finally {
        await client.close().catch(() => {});
      }
      expect(connects).toBe(2);
      expect(writes(emu.log)).toEqual([dl(rom.bootloader), 'flash:bootloader', 'reboot-bootloader', dl(rom.radio), 'flash:radio']);
    } finally {
      await emu.close();
    }
  }, 15_000);

  it('a reboot that is the last device operation needs no reconnect', async () => {
    const rom = await googleRom({ script: 'fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot-bootloader\nsleep 0\n' });
    const r = await runGoogle(rom);
    expect(r.error).toBeUndefined();
    expect(r.connects).toBe(1);
    expect(ends(r, 'wait-device')).toEqual([]);
    expect(r.log).not.toContain('getvar:serialno');
  });

  it('reboot into recovery / Android with device operations after it is refused before any write (2)', async () => {
    for (const [script, what] of [
      ['fastboot flash bootloader bootloader-emu-1.img\nfastboot reboot recovery\nfastboot flash radio radio-emu-1.img\n', /line 2: 'reboot recovery' leaves fastboot for recovery, but device operations follow \(line 3: flash radio/],
      ['fastboot update image-emu-test1.zip\nfastboot flash radio radio-emu-1.img\n', /'update image-emu-test1\.zip' leaves fastboot for android \(update reboots at the end\)/],
    ] as const) {
      const rom = await googleRom({ script });
      const r = await runGoogle(rom);
      expect(r.error).toBeInstanceOf(BadInputError);
      expect((r.error as BadInputError).code).toBe('plan.reboot-then-ops');
      expect((r.error as Error).message).toMatch(what);
      expect(writes(r.log)).toEqual([]);
    }
  });

  it('without a way to reconnect, a plan that reboots mid-way is refused before any write', async () => {
    const rom = await googleRom();
    const r = await runGoogle(rom, { run: { reconnect: undefined } });
    expect((r.error as BadInputError).code).toBe('plan.reconnect-unavailable');
    expect(writes(r.log)).toEqual([]);
  });

  it('sleep is abortable, and an absurd sleep is refused up front', async () => {
    const rom = await googleRom({ script: 'fastboot flash bootloader bootloader-emu-1.img\nsleep 30\nfastboot flash radio radio-emu-1.img\n' });
    const ctl = new AbortController();
    // Abort once the sleep has begun (a fixed timer from the start raced the first flash on a loaded machine).
    let t0 = 0;
    const onEvent = (e: PlanEvent) => {
      if (e.event === 'step-start' && e.kind === 'sleep') {
        t0 = Date.now();
        setTimeout(() => ctl.abort(), 100);
      }
    };
    const r = await runGoogle(rom, { run: { signal: ctl.signal, onEvent } });
    expect(r.error).toBeInstanceOf(AbortedError);
    expect(t0).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(writes(r.log)).toEqual([dl(rom.bootloader), 'flash:bootloader']);

    const long = await runGoogle(rom, { edit: (p) => ({ ...p, steps: p.steps.map((s) => (s.kind === 'sleep' ? { ...s, seconds: 3600 } : s)) }) });
    expect((long.error as BadInputError).code).toBe('plan.sleep-too-long');
    expect(long.firstClientCommands).toEqual([]);
  }, 15_000);
});

describe('-w and format: filesystems built on the host, as AOSP does', () => {
  it('-w erases userdata, cache and metadata, then flashes a fresh f2fs / ext4 of each partition size (AOSP WipeTask)', { ...needs('mke2fs', 'mkfs.f2fs', 'e2fsck'), timeout: 60_000 }, async () => {
    const rom = await googleRom({ script: 'fastboot flash metadata radio-emu-1.img\nfastboot -w\n' });
    const clean: Record<string, boolean> = {};
    const r = await runGoogle(rom, {
      heads: { cache: 2048, userdata: 4096 },
      check: (emu) => {
        for (const p of ['cache', 'metadata']) clean[p] = e2fsckClean(emu.device.partitionPath(p));
      },
    });
    expect(r.error).toBeUndefined();
    expect(shape(r.log)).toEqual(['download', 'flash:metadata', 'erase:userdata', 'download', 'flash:userdata', 'erase:cache', 'download', 'flash:cache', 'erase:metadata', 'download', 'flash:metadata']);
    // AOSP's getvars before each format: the type (twice: WipeTask, then fb_perform_format), the size, the flash block sizes.
    const at = r.log.indexOf('erase:cache');
    expect(r.log.slice(at + 1, at + 5)).toEqual(['getvar:partition-type:cache', 'getvar:partition-size:cache', 'getvar:erase-block-size', 'getvar:logical-block-size']);
    expect(r.heads.userdata!.readUInt32LE(1024)).toBe(F2FS_MAGIC);
    expect(r.heads.cache!.readUInt16LE(1080)).toBe(EXT4_MAGIC);
    expect(clean).toEqual({ cache: true, metadata: true });
    expect(r.asked.map((q) => q.kind)).toEqual(['user-data']);
    expect(r.result!.status).toBe('ok');
  });

  it('format PART and format:ext4 PART: the partition type (or the override) at the partition size', { ...needs('mke2fs', 'mkfs.f2fs', 'e2fsck'), timeout: 60_000 }, async () => {
    const rom = await googleRom({ script: 'fastboot format userdata\nfastboot format:ext4 vendor\n' });
    let vendorClean = false;
    const r = await runGoogle(rom, { heads: { userdata: 4096 }, check: (emu) => void (vendorClean = e2fsckClean(emu.device.partitionPath('vendor'))) });
    expect(r.error).toBeUndefined();
    expect(shape(r.log)).toEqual(['download', 'flash:userdata', 'download', 'flash:vendor']);
    expect(r.heads.userdata!.readUInt32LE(1024)).toBe(F2FS_MAGIC);
    expect(vendorClean).toBe(true);
    const notes = r.events.filter((e) => e.event === 'message' && e.level === 'warning');
    expect(notes).toEqual([]);
  });

  it('a keep-data plan can never wipe, even edited by hand: refused before anything is sent', async () => {
    const rom = await googleRom({ script: 'fastboot flash radio radio-emu-1.img\n' });
    const r = await runGoogle(rom, {
      edit: (p) => ({ ...p, source: { ...p.source, mode: 'keep-data' }, steps: [...p.steps, { kind: 'wipe', line: 9, onFailure: 'abort' }] }),
    });
    expect(r.error).toBeInstanceOf(BadInputError);
    expect((r.error as BadInputError).code).toBe('plan.keep-data-violation');
    expect(r.firstClientCommands).toEqual([]);
  });
});

describe('update image-*.zip: checked before any write', () => {
  const only = 'fastboot --skip-reboot update image-emu-test1.zip\n';
  const refusal = async (o: GoogleRomOptions, mutate?: (rom: GoogleRom) => void) => {
    const rom = await googleRom({ script: only, ...o });
    mutate?.(rom);
    const r = await runGoogle(rom);
    expect(writes(r.log)).toEqual([]);
    return r.error as Error & { code: string; exitCode: number };
  };

  it('a corrupted image inside the zip (CRC-32) -> 2', async () => {
    const e = await refusal({}, (rom) => {
      const zip = path.join(rom.root, rom.zipName);
      const b = readFileSync(zip);
      const at = b.indexOf(rom.zipImages['vbmeta.img']!.subarray(0, 64)); // stored, so its bytes are in the zip as is
      b[at + 100]! ^= 0xff;
      writeFileSync(zip, b);
    });
    expect(e).toBeInstanceOf(BadInputError);
    expect(e.message).toMatch(/image-emu-test1\.zip\/vbmeta\.img: CRC-32 mismatch: the zip says 0x[0-9a-f]+, the data gives 0x[0-9a-f]+/);
  });

  it('an invalid sparse image inside the zip -> 2, naming it', async () => {
    const bad = Buffer.alloc(4096);
    bad.writeUInt32LE(0xed26ff3a, 0);
    bad.writeUInt16LE(1, 4);
    bad.writeUInt16LE(28, 8);
    bad.writeUInt16LE(12, 10);
    bad.writeUInt32LE(4096, 12);
    bad.writeUInt32LE(10, 16); // 10 blocks
    bad.writeUInt32LE(1, 20); // one chunk…
    bad.writeUInt16LE(0xcac1, 28); // …RAW, 1 block, but total_sz says more than the file has
    bad.writeUInt32LE(1, 32);
    bad.writeUInt32LE(12 + 4096, 36);
    const e = await refusal({ extra: [{ name: 'system.img', data: bad }] });
    expect(e).toBeInstanceOf(BadInputError);
    expect(e.message).toMatch(/system\.img/);
    expect(e.message).toMatch(/chunk runs past the end of the file/);
  });

  it('boot.img missing (AOSP requires it) -> 2', async () => {
    const e = await refusal({ omit: ['boot.img'] });
    expect(e.code).toBe('rom.image-missing');
    expect(e.message).toMatch(/boot\.img is missing \(fastboot update requires it\)/);
  });

  it('an invalid super_empty.img is refused before any write, naming it', async () => {
    const e = await refusal({ extra: [{ name: 'super_empty.img', data: Buffer.alloc(4096, 1) }] });
    expect(e.code).toBe('rom.image-invalid');
    expect(e.message).toMatch(/super_empty\.img: not a valid super_empty image/);
  });

  it('android-info.txt: a wrong board -> 3; a hand-made plan without the requirements still gets them checked', async () => {
    const e = await refusal({ board: 'tuna' });
    expect(e).toBeInstanceOf(GateRefusedError);
    expect(e.message).toMatch(/android-info\.txt line 1: require product=tuna but the device reports product: emu/);
    const rom = await googleRom({ script: only, board: 'tuna' });
    const r = await runGoogle(rom, { edit: (p) => ({ ...p, steps: p.steps.map((s) => (s.kind === 'gate.android-info' ? { ...s, requirements: null } : s)) }) });
    expect(r.error).toBeInstanceOf(GateRefusedError);
    expect(writes(r.log)).toEqual([]);
  });

  it('a zip without android-info.txt -> 2 (AOSP: could not read android-info.txt)', async () => {
    const e = await refusal({ androidInfo: null });
    expect(e.code).toBe('rom.android-info-missing');
  });

  it('require partition-exists makes that image mandatory (as AOSP)', async () => {
    const e = await refusal({ androidInfo: 'require board=emu\nrequire partition-exists=dtbo\n' });
    expect(e.code).toBe('rom.image-missing');
    expect(e.message).toMatch(/android-info\.txt requires partition dtbo but dtbo\.img is not in the zip/);
  });

  it('a pending snapshot merge is cancelled before the images (as AOSP); none = nothing sent', async () => {
    const rom = await googleRom({ script: only, omit: ['recovery.img'] });
    const merging = await runGoogle(rom, { emu: { slots: ['a', 'b'], vars: { 'snapshot-update-status': 'merging' } } });
    expect(merging.error).toBeUndefined();
    const sent = writes(merging.log);
    expect(sent).toContain('snapshot-update:cancel');
    expect(sent.indexOf('snapshot-update:cancel')).toBeLessThan(sent.findIndex((l) => l.startsWith('flash:')));
    // a bootloader that cannot cancel FAILs it: the update stops there (exit 4)
    const refused = await runGoogle(rom, { emu: { slots: ['a', 'b'], vars: { 'snapshot-update-status': 'merging' }, faults: { failOn: 'snapshot-update' } } });
    expect(writes(refused.log)).toEqual(['set_active:a', 'snapshot-update:cancel']);
    expect((refused.error as Error & { exitCode: number }).exitCode).toBe(4);
    const none = await runGoogle(rom, { emu: { slots: ['a', 'b'], vars: { 'snapshot-update-status': 'none' } } });
    expect(none.error).toBeUndefined();
    expect(writes(none.log)).not.toContain('snapshot-update:cancel');
  });

  it('A/B device: re-activates the current slot, flashes the current slot, *_other.img to the other one', async () => {
    const rom = await googleRom({ script: only, omit: ['recovery.img'], extra: [{ name: 'system_other.img', data: Buffer.alloc(8192, 7) }] });
    const r = await runGoogle(rom, { emu: { slots: ['a', 'b'] }, heads: { system_b: 8192 } });
    expect(r.error).toBeUndefined();
    expect(writes(r.log).filter((l) => !l.startsWith('download'))).toEqual([
      'set_active:a',
      'flash:boot_a',
      'flash:vbmeta_a',
      'flash:system_a',
      'flash:system_b',
      'flash:vendor_a',
    ]);
    expect(r.heads.system_b!.every((b) => b === 7)).toBe(true);
  });

  it('AOSP options: --slot b flashes slot b (secondary to a), --skip-secondary leaves *_other out, --set-active=a comes after the images', async () => {
    const rom = await googleRom({ script: only, omit: ['recovery.img'], extra: [{ name: 'system_other.img', data: Buffer.alloc(8192, 7) }] });
    const r = await runGoogle(rom, { emu: { slots: ['a', 'b'] }, run: { update: { slot: 'b', setActive: 'a' } } });
    expect(r.error).toBeUndefined();
    expect(writes(r.log).filter((l) => !l.startsWith('download'))).toEqual(['set_active:b', 'flash:boot_b', 'flash:vbmeta_b', 'flash:system_b', 'flash:system_a', 'flash:vendor_b', 'set_active:a']);
    const skip = await runGoogle(rom, { emu: { slots: ['a', 'b'] }, run: { update: { skipSecondary: true, setActive: '' } } });
    expect(writes(skip.log).filter((l) => !l.startsWith('download'))).toEqual(['set_active:a', 'flash:boot_a', 'flash:vbmeta_a', 'flash:system_a', 'flash:vendor_a', 'set_active:a']);
  });
});
