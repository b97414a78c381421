// Gate evaluation on device facts: each gate passes on the boundary, refuses
// just past it with a specific message and code, and asks only getvars
// (the unlocked gate reads `oem device-info`).
import { describe, expect, it } from 'vitest';
import { BadInputError, GateRefusedError } from '../../src/errors.js';
import { FastbootFailError, type FastbootClient } from '../../src/fastboot/client.js';
import { DeviceFacts, evaluateGate, parseAnti, type GateStep } from '../../src/plan/gates.js';

function fakeClient(vars: Record<string, string>, deviceInfo: string[] = []): { client: FastbootClient; asked: string[] } {
  const asked: string[] = [];
  const client = {
    async getvar(name: string) {
      asked.push(`getvar:${name}`);
      if (!(name in vars)) throw new FastbootFailError(`getvar:${name}`, 'GetVar Variable Not found');
      return vars[name]!;
    },
    async oem(args: string[]) {
      asked.push(`oem ${args.join(' ')}`);
      return { message: '', info: deviceInfo };
    },
  } as unknown as FastbootClient;
  return { client, asked };
}

const base = { line: 4, onFailure: 'abort' as const, message: 'Missmatching image and device' };

async function gate(step: GateStep, vars: Record<string, string>, info?: string[]) {
  const { client, asked } = fakeClient(vars, info);
  return { out: await evaluateGate(step, new DeviceFacts(client)), asked };
}

describe('gates', () => {
  const product: GateStep = {
    kind: 'gate.product',
    ...base,
    products: ['raphaelin'],
    patterns: ['^product: *raphaelin'],
    match: 'prefix',
    source: { text: '^product: *raphaelin', dialect: 'bre' },
  };

  it('product: prefix pattern evaluated as written; mismatch names both products', async () => {
    expect((await gate(product, { product: 'raphaelin' })).out.ok).toBe(true);
    expect((await gate(product, { product: 'raphaelinx' })).out.ok).toBe(true); // as the vendor grep would
    const { out, asked } = await gate(product, { product: 'raphael' });
    expect(out.ok).toBe(false);
    expect(out.error).toBeInstanceOf(GateRefusedError);
    expect(out.error!.message).toBe("Missmatching image and device: this ROM is for raphaelin but the device reports product 'raphael' (script line 4: ^product: *raphaelin)");
    expect(asked).toEqual(['getvar:product']);
    expect((await gate(product, {})).out.ok).toBe(false);
  });

  it('anti-rollback: missing = 0, equal passes, one more refuses', async () => {
    const anti: GateStep = { kind: 'gate.anti-rollback', ...base, packageVersion: 3, variable: 'anti', from: 'script' };
    expect((await gate(anti, {})).out.ok).toBe(true);
    expect((await gate(anti, { anti: '3' })).out.ok).toBe(true);
    const r = await gate(anti, { anti: '4' });
    expect(r.out.ok).toBe(false);
    expect(r.out.error!.code).toBe('gate.anti-rollback');
    expect(r.out.error!.message).toMatch(/anti-rollback version 4 \(getvar anti\) is higher than this package's 3/);
    expect(parseAnti(' 12\r')).toBe(12);
    expect(parseAnti('abc')).toBe(0);
  });

  it('secure, hw-revision, security patch level', async () => {
    const secure: GateStep = { kind: 'gate.secure', ...base, pattern: '^secure: *yes' };
    expect((await gate(secure, { secure: 'yes' })).out.ok).toBe(true);
    expect((await gate(secure, { secure: 'no' })).out.error!.code).toBe('gate.secure');
    const hw: GateStep = { kind: 'gate.hw-revision', ...base, variable: 'hw-revision', min: 2 };
    expect((await gate(hw, { 'hw-revision': '2' })).out.ok).toBe(true);
    expect((await gate(hw, { 'hw-revision': '1.9' })).out.ok).toBe(false);
    expect((await gate(hw, {})).out.ok).toBe(false);
    const spl: GateStep = { kind: 'gate.security-patch-level', ...base, variable: 'spl', packageLevel: '2025-01-01' };
    expect((await gate(spl, { spl: '2025-01-01' })).out.ok).toBe(true);
    expect((await gate(spl, { spl: '2025-02-01' })).out.error!.message).toMatch(/2025-02-01 is newer than the package's 2025-01-01/);
  });

  it('unlocked: reads oem device-info', async () => {
    const unlocked: GateStep = { kind: 'gate.unlocked', ...base, pattern: 'Device unlocked: true' };
    const yes = await gate(unlocked, {}, ['Device unlocked: true']);
    expect(yes.out.ok).toBe(true);
    expect(yes.asked).toEqual(['oem device-info']);
    expect((await gate(unlocked, {}, ['Device unlocked: false'])).out.error!.code).toBe('gate.unlocked');
  });

  it('android-info: require / reject / prefix / per-product / partition-exists', async () => {
    const info: GateStep = {
      kind: 'gate.android-info',
      ...base,
      file: 'image-shiba.zip',
      requirements: [
        { kind: 'require', variable: 'product', values: ['shiba', 'husky'], line: 1 },
        { kind: 'require', variable: 'version-bootloader', values: ['ripcurrent-14.*'], line: 2 },
        { kind: 'reject', forProduct: 'husky', variable: 'version-baseband', values: ['g5300q'], line: 3 },
        { kind: 'require', variable: 'partition-exists', values: ['vendor_dlkm'], line: 4 },
      ],
    };
    const ok = { product: 'shiba', 'version-bootloader': 'ripcurrent-14.5-1', 'version-baseband': 'g5300q', 'has-slot:vendor_dlkm': 'yes' };
    expect((await gate(info, ok)).out.ok).toBe(true);
    expect((await gate(info, { ...ok, product: 'husky' })).out.error!.message).toMatch(/line 3: reject version-baseband=g5300q/);
    expect((await gate(info, { ...ok, 'version-bootloader': 'ripcurrent-13.1' })).out.error!.message).toMatch(/line 2/);
    const { 'has-slot:vendor_dlkm': _gone, ...noPart } = ok;
    void _gone;
    expect((await gate(info, noPart)).out.error!.message).toMatch(/line 4: require partition-exists=vendor_dlkm/);
    const unread = await gate({ ...info, requirements: null } as GateStep, ok);
    expect(unread.out.error).toBeInstanceOf(BadInputError);
  });

  it('unknown gate: always blocks, exit 2, quoting the line', async () => {
    const unknown: GateStep = { kind: 'gate.unknown', ...base, text: 'fastboot $* getvar foo | grep bar', reason: 'device check miflash cannot interpret' };
    const r = await gate(unknown, {});
    expect(r.out.ok).toBe(false);
    expect(r.out.error!.exitCode).toBe(2);
    expect(r.out.error!.message).toContain('fastboot $* getvar foo | grep bar');
    expect(r.asked).toEqual([]);
  });

  it('facts are cached: each variable is asked once', async () => {
    const { client, asked } = fakeClient({ product: 'x' });
    const facts = new DeviceFacts(client);
    await facts.get('product');
    await facts.get('product');
    await facts.get('anti');
    await facts.get('anti');
    expect(asked).toEqual(['getvar:product', 'getvar:anti']);
  });
});
