import { describe, expect, it } from 'vitest';
import { rebootToEdl } from '../../src/edl/reboot.js';
import { FastbootFailError } from '../../src/fastboot/errors.js';
import { DeviceFailError, TransportClosedError, TransportError } from '../../src/errors.js';

function client(outcomes: Record<string, 'ok' | 'fail' | 'closed' | 'broken'>) {
  const sent: string[] = [];
  return {
    sent,
    async command(cmd: string): Promise<unknown> {
      sent.push(cmd);
      const o = outcomes[cmd] ?? 'fail';
      if (o === 'fail') throw new FastbootFailError(cmd, 'unknown command');
      if (o === 'closed') throw new TransportClosedError('usb:1-4');
      if (o === 'broken') throw new TransportError('usb:1-4: I/O error');
      return { status: 'OKAY' };
    },
  };
}

describe('rebootToEdl (fastboot -> EDL)', () => {
  it('oem edl first; waits for the 9008 device', async () => {
    const c = client({ 'oem edl': 'ok' });
    const r = await rebootToEdl(c, { waitForEdl: async () => 'usb:1-4' });
    expect(c.sent).toEqual(['oem edl']);
    expect(r).toEqual({ command: 'oem edl', device: 'usb:1-4' });
  });

  it('falls back to reboot-edl when oem edl FAILs; a reboot that drops the link counts as done', async () => {
    const c = client({ 'oem edl': 'fail', 'reboot-edl': 'closed' });
    const events: string[] = [];
    const r = await rebootToEdl(c, { onEvent: (e) => events.push(e.type) });
    expect(c.sent).toEqual(['oem edl', 'reboot-edl']);
    expect(r.command).toBe('reboot-edl');
    expect(events).toEqual(['try', 'refused', 'try', 'rebooting']);
  });

  it('both refused: DeviceFailError quoting the bootloader, with the cable/test-point hint; transport errors propagate', async () => {
    const err = (await rebootToEdl(client({})).catch((e: unknown) => e)) as DeviceFailError;
    expect(err).toBeInstanceOf(DeviceFailError);
    expect(err.message).toBe("the bootloader refused to reboot to EDL ('oem edl': unknown command; 'reboot-edl': unknown command)");
    expect(err.hint).toMatch(/test point/);
    await expect(rebootToEdl(client({ 'oem edl': 'broken' }))).rejects.toThrow(/I\/O error/);
  });
});

describe('rebootToEdl with the real FastbootClient against the emulated fastboot device', () => {
  it('oem edl refused (FAIL) -> reboot-edl accepted; the commands reach the device in that order', async () => {
    const { withEmulator } = await import('../helpers/emulator.js');
    const { openTcpTransport } = await import('../../src/transport/tcp.js');
    const { FastbootClient } = await import('../../src/fastboot/client.js');
    await withEmulator({ store: null, faults: { failOn: 'oem', failMessage: 'unknown command' } }, async (emu) => {
      const client = new FastbootClient(await openTcpTransport(emu.address), { timeoutMs: 2000 });
      const events: string[] = [];
      const r = await rebootToEdl(client, { onEvent: (e) => events.push(e.type === 'refused' ? `refused ${e.command}: ${e.message}` : e.type) });
      expect(r.command).toBe('reboot-edl');
      expect(events).toEqual(['try', 'refused oem edl: unknown command', 'try', 'rebooting']);
      expect(emu.log.filter((l) => /edl/.test(l))).toEqual(['oem edl', 'reboot-edl']);
      await client.close().catch(() => undefined);
    });
  });
});
