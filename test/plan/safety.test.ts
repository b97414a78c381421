// Safety audit of the runner with hand-edited plans: each test tries to get
// around a ground rule (files outside the ROM, locks disguised as other steps,
// keep-data plans that wipe, a weakened anti-rollback gate, slots the device
// does not have) and asserts that only getvars reach the device.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError, BadInputError, DeviceFailError, GateRefusedError } from '../../src/errors.js';
import { connectFastboot } from '../../src/fastboot/connect.js';
import type { FaultOptions } from '../../src/emulator/fastboot/index.js';
import { runPlan, type ConfirmRequest } from '../../src/plan/runner.js';
import { FlashPlanSchema, type FlashPlan, type PlanStep } from '../../src/plan/schema.js';
import { openRom, planForRom, type Rom } from '../../src/rom/index.js';
import { buildSyntheticRom, type SyntheticRom } from '../../src/rom/synthetic.js';
import { REPO_ROOT as REPO, withEmulator } from '../helpers/emulator.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'miflash-safety-'));
let syn: SyntheticRom;
let rom: Rom;
let antiRom: Rom;

beforeAll(async () => {
  syn = await buildSyntheticRom(path.join(work, 'land'), { from: 'land', seed: 5 });
  writeFileSync(path.join(work, 'outside.img'), Buffer.alloc(4096, 0x5a));
  symlinkSync(path.join(work, 'outside.img'), path.join(syn.root, 'images', 'evil.img'));
  rom = await openRom(syn.root);
  const anti = await buildSyntheticRom(path.join(work, 'anti'), { from: 'land', seed: 6, anti: 1 });
  antiRom = await openRom(anti.root);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const op = { line: 1, onFailure: 'abort' as const };
const unchecked = { line: 1, onFailure: 'ignore' as const, vendorUnchecked: true };

function plan(steps: PlanStep[], mode: FlashPlan['source']['mode'] = 'clean'): FlashPlan {
  return { version: 1, source: { script: 'edited.json', dialect: 'sh', mode, family: 'xiaomi' }, warnings: [], steps };
}

async function run(p: FlashPlan, o: { vars?: Record<string, string>; faults?: FaultOptions; slots?: string[]; r?: Rom; sparseLimit?: number } = {}) {
  return withEmulator(
    { product: syn.product, partitions: { misc: 65536, boot: 1 << 20, logo: 1 << 20, splash: 1 << 20, metadata: 65536 }, vars: o.vars ?? {}, faults: o.faults ?? {}, store: null, ...(o.slots ? { slots: o.slots } : {}) },
    async (emu) => {
      const client = await connectFastboot({ kind: 'tcp', host: '127.0.0.1', port: emu.port }, { timeoutMs: 5000 });
      const asked: ConfirmRequest[] = [];
      let error: unknown;
      try {
        await runPlan(p, { rom: o.r ?? rom, client, deviceId: emu.address, confirm: async (q) => (asked.push(q), true), ...(o.sparseLimit ? { sparseLimit: o.sparseLimit } : {}) });
      } catch (err) {
        error = err;
      } finally {
        await client.close().catch(() => {});
      }
      return { error, asked, writes: emu.log.filter((l) => !l.startsWith('getvar:')) };
    },
  );
}

describe('files never escape the ROM', () => {
  it('a symlink inside the ROM pointing outside is refused before anything is written', async () => {
    // logo has no crclist entry, so no checksum happens to catch the foreign bytes.
    const r = await run(plan([{ kind: 'flash', ...op, partition: 'logo', file: 'images/evil.img' }]));
    expect(r.error).toBeInstanceOf(BadInputError);
    expect((r.error as BadInputError).message).toMatch(/images\/evil\.img.*outside the ROM/);
    expect(r.writes).toEqual([]);
  });

  it('a gate value file symlinked outside the ROM is not read (the plan is the one without the file)', async () => {
    const root = path.join(work, 'spl-link');
    mkdirSync(path.join(root, 'images'), { recursive: true });
    copyFileSync(path.join(REPO, 'fixtures/variants/v7a-security-patch-flash_all.sh'), path.join(root, 'flash_all.sh'));
    writeFileSync(path.join(work, 'outside-spl.txt'), '2099-01-01\n');
    symlinkSync(path.join(work, 'outside-spl.txt'), path.join(root, 'images/security_patch_level.txt'));
    const p = await planForRom(await openRom(root));
    expect(JSON.stringify(p.steps)).not.toContain('2099');
    rmSync(path.join(root, 'images/security_patch_level.txt'));
    const absent = await planForRom(await openRom(root));
    expect(p.steps).toEqual(absent.steps);
  });

  it('Windows separators are not valid in plan files (on Windows they would climb out of the ROM)', () => {
    for (const file of ['images\\..\\..\\evil.img', '..\\evil.img', '\\\\server\\share\\x.img']) {
      const r = FlashPlanSchema.safeParse(plan([{ kind: 'flash', ...op, partition: 'boot', file }]));
      expect(r.success, file).toBe(false);
    }
  });
});

describe('locks in disguise', () => {
  const failingErase: PlanStep = { kind: 'erase', ...unchecked, partition: 'misc' };

  it('`oem lock` written as an opaque oem step never runs after a warning', async () => {
    const r = await run(plan([failingErase, { kind: 'oem', ...unchecked, args: ['lock'] }]), { faults: { failOn: 'erase:misc' } });
    expect(r.error).toBeInstanceOf(DeviceFailError);
    expect((r.error as DeviceFailError).code).toBe('plan.lock-refused');
    expect(r.writes.some((l) => /lock/i.test(l))).toBe(false);
  });

  it('`oem LOCK` asks the lock confirmation like `oem lock`', async () => {
    const r = await run(plan([{ kind: 'oem', ...unchecked, args: ['LOCK'] }]));
    expect(r.asked.map((q) => q.kind)).toEqual(['lock']);
  });

  it('`flashing lock_critical` never runs after a warning', async () => {
    const r = await run(plan([failingErase, { kind: 'flashing', ...unchecked, sub: 'lock_critical' }]), { faults: { failOn: 'erase:misc' } });
    expect((r.error as DeviceFailError).code).toBe('plan.lock-refused');
    expect(r.writes.some((l) => /lock/i.test(l))).toBe(false);
  });
});

describe('keep-data plans never touch user data', () => {
  for (const [what, step] of [
    ['erase metadata', { kind: 'erase', ...op, partition: 'metadata' }],
    ['erase USERDATA (case)', { kind: 'erase', ...op, partition: 'USERDATA' }],
    ['erase userdata_ab', { kind: 'erase', ...op, partition: 'userdata_ab' }],
    ['flashing unlock (wipes data)', { kind: 'flashing', ...op, sub: 'unlock' }],
    ['oem unlock (wipes data)', { kind: 'oem', ...op, args: ['unlock'] }],
  ] as Array<[string, PlanStep]>) {
    it(`refuses ${what} before anything is written`, async () => {
      const r = await run(plan([{ kind: 'flash', ...op, partition: 'boot', file: 'images/boot.img' }, step], 'keep-data'));
      expect(r.error).toBeInstanceOf(BadInputError);
      expect((r.error as BadInputError).code).toBe('plan.keep-data-violation');
      expect(r.writes).toEqual([]);
    });
  }
});

describe('anti-rollback', () => {
  it('a hand-edited gate with a higher package version does not override images/anti_version.txt', async () => {
    const p = plan([
      { kind: 'gate.anti-rollback', ...op, packageVersion: 99, variable: 'anti', from: 'script' },
      { kind: 'flash', ...op, partition: 'boot', file: 'images/boot.img' },
    ]);
    const r = await run(p, { vars: { anti: '3' }, r: antiRom });
    expect(r.error).toBeInstanceOf(GateRefusedError);
    expect((r.error as GateRefusedError).message).toMatch(/anti-rollback version 3 .* higher than this package's 1/);
    expect(r.writes).toEqual([]);
  });
});

describe('slots are checked before the first write', () => {
  it('a slot the device does not have is refused before an earlier erase runs', async () => {
    const p = plan([
      { kind: 'erase', ...op, partition: 'misc' },
      { kind: 'flash', ...op, partition: 'boot', file: 'images/boot.img', flags: { slot: 'c' } },
    ]);
    const r = await run(p, { slots: ['a', 'b'] });
    expect(r.error).toBeInstanceOf(BadInputError);
    expect((r.error as Error).message).toMatch(/slot 'c'/);
    expect(r.writes).toEqual([]);
  });

  it('set_active of a missing slot is refused before an earlier erase runs', async () => {
    const p = plan([
      { kind: 'erase', ...op, partition: 'misc' },
      { kind: 'set-active', ...op, slot: 'c' },
    ]);
    const r = await run(p, { slots: ['a', 'b'] });
    expect(r.error).toBeInstanceOf(BadInputError);
    expect(r.writes).toEqual([]);
  });
});

describe('lock confirmation', () => {
  it('a device answering an empty product does not make an empty answer confirm the lock', async () => {
    const r = await run(plan([{ kind: 'lock', ...unchecked, command: 'oem lock' }]), { vars: { product: '' } });
    const q = r.asked.find((a) => a.kind === 'lock')!;
    expect(q.expect).toBeTruthy();
  });
});

describe('download limit', () => {
  it('a -S too small to split an image is refused before an earlier erase runs', async () => {
    // splash.img is 8177 raw bytes: at -S 4096 it must be split into 4096-byte blocks, which cannot fit with headers.
    const p = plan([
      { kind: 'erase', ...op, partition: 'misc' },
      { kind: 'flash', ...op, partition: 'splash', file: 'images/splash.img' },
    ]);
    const r = await run(p, { sparseLimit: 4096 });
    expect(r.error).toBeInstanceOf(BadInputError);
    expect((r.error as Error).message).toMatch(/images\/splash\.img.*4096/);
    expect(r.writes).toEqual([]);
  });
});

describe('Ctrl-C', () => {
  it('during the image checks stops them (not only before the first write)', async () => {
    const p = await planForRom(rom, { mode: 'clean' });
    const partitions = Object.fromEntries(syn.partitions.map((x) => [x.name, x.size]));
    await withEmulator({ product: syn.product, partitions, store: null }, async (emu) => {
      const client = await connectFastboot({ kind: 'tcp', host: '127.0.0.1', port: emu.port }, { timeoutMs: 5000 });
      const ctl = new AbortController();
      const verified = new Set<string>();
      let clock = 0;
      try {
        const err = await runPlan(p, {
          rom,
          client,
          deviceId: emu.address,
          confirm: async () => true,
          signal: ctl.signal,
          now: () => (clock += 1000), // no throttling: every verify event is seen
          onEvent: (e) => {
            if (e.event !== 'verify') return;
            verified.add(e.file);
            ctl.abort();
          },
        }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AbortedError);
        expect([...verified]).toHaveLength(1);
        expect(emu.log.filter((l) => !l.startsWith('getvar:'))).toEqual([]);
      } finally {
        await client.close().catch(() => {});
      }
    });
  });
});

describe('product gate', () => {
  it('a script whose product check ignores its result still gets the blocking misc.txt check', async () => {
    const root = path.join(work, 'unchecked-product');
    mkdirSync(path.join(root, 'images'), { recursive: true });
    writeFileSync(
      path.join(root, 'flash_all.sh'),
      'fastboot $* getvar product 2>&1 | grep "^product: *land"\nfastboot $* flash boot `dirname $0`/images/boot.img\nif [ $? -ne 0 ] ; then echo "Flash boot error"; exit 1; fi\n',
    );
    writeFileSync(path.join(root, 'misc.txt'), 'device=land\n');
    writeFileSync(path.join(root, 'images', 'boot.img'), Buffer.alloc(4096, 1));
    const r = await openRom(root);
    const p = await planForRom(r, { mode: 'clean' });
    await withEmulator({ product: 'cepheus', partitions: { boot: 1 << 20 }, store: null }, async (emu) => {
      const client = await connectFastboot({ kind: 'tcp', host: '127.0.0.1', port: emu.port }, { timeoutMs: 5000 });
      try {
        const err = await runPlan(p, { rom: r, client, deviceId: emu.address, confirm: async () => true }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GateRefusedError);
        expect((err as Error).message).toMatch(/this ROM is for land \(misc\.txt\).*the device answered product: cepheus/);
        expect(emu.log.filter((l) => !l.startsWith('getvar:'))).toEqual([]);
      } finally {
        await client.close().catch(() => {});
      }
    });
  });
});
