// Fault injection, observed from outside: over TCP with miflash's own TCP
// transport (raw packets) and with the AOSP client.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TransportClosedError, TransportTimeoutError } from '../../src/errors.js';
import { openTcpTransport } from '../../src/transport/tcp.js';
import { rawCommand, runAospFastboot, spawnCliEmulator, tempDir, withEmulator } from '../helpers/emulator.js';
import { needs } from '../helpers/peers.js';

describe('fault injection', () => {
  it('failOn N answers FAIL to exactly the Nth command, with the given message', async () => {
    await withEmulator({ faults: { failOn: 2, failMessage: 'flash memory worn out' } }, async (emu) => {
      const t = await openTcpTransport(emu.address);
      expect((await rawCommand(t, 'getvar:product')).status).toBe('OKAY');
      expect(await rawCommand(t, 'getvar:product')).toMatchObject({ status: 'FAIL', message: 'flash memory worn out' });
      expect((await rawCommand(t, 'getvar:product')).status).toBe('OKAY');
      await t.close();
    });
  });

  it('failOn a command name FAILs every matching command; the AOSP client reports it', needs('fastboot'), async () => {
    const tmp = tempDir();
    try {
      await withEmulator({ partitions: { boot: 8192 }, faults: { failOn: 'flash:boot', failMessage: 'partition locked' } }, async (emu) => {
        const img = path.join(tmp.dir, 'boot.img');
        writeFileSync(img, randomBytes(4096));
        const r = await runAospFastboot(emu.port, ['flash', 'boot', img]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain("FAILED (remote: 'partition locked')");
        // Other commands are unaffected; the download before it succeeded.
        expect(emu.log.some((l) => l.startsWith('download 4096 '))).toBe(true);
        const ok = await runAospFastboot(emu.port, ['getvar', 'product']);
        expect(ok.code).toBe(0);
      });
    } finally {
      tmp.cleanup();
    }
  });

  it('dropAfterBytes closes the connection mid-download; the download is not logged; the next connection works', async () => {
    await withEmulator({ partitions: { boot: 1 << 20 }, faults: { dropAfterBytes: 100_000 } }, async (emu) => {
      const t = await openTcpTransport(emu.address, { timeoutMs: 3000 });
      expect((await rawCommand(t, 'download:00080000')).status).toBe('DATA');
      const chunk = Buffer.alloc(64 * 1024);
      const err = await (async () => {
        for (let i = 0; i < 8; i++) await t.write(chunk);
        return t.read(256);
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportClosedError);
      expect(emu.log).toEqual([]); // a download is logged only once its data is complete
      await t.close();
      const again = await openTcpTransport(emu.address);
      expect((await rawCommand(again, 'getvar:product')).status).toBe('OKAY');
      await again.close();
      expect(emu.log).toEqual(['getvar:product']);
    });
  });

  it('stallOn stops answering (the host times out) for the rest of that connection only', async () => {
    await withEmulator({ faults: { stallOn: 'getvar:serialno' } }, async (emu) => {
      const t = await openTcpTransport(emu.address);
      expect((await rawCommand(t, 'getvar:product')).status).toBe('OKAY');
      await expect(rawCommand(t, 'getvar:serialno', 300)).rejects.toBeInstanceOf(TransportTimeoutError);
      await expect(rawCommand(t, 'getvar:product', 300)).rejects.toBeInstanceOf(TransportTimeoutError);
      await t.close();
      const again = await openTcpTransport(emu.address);
      expect((await rawCommand(again, 'getvar:product')).status).toBe('OKAY');
      await again.close();
      expect(emu.log).toEqual(['getvar:product', 'getvar:serialno', 'getvar:product', 'getvar:product']);
    });
  });

  it('infoBefore/textBefore precede every OKAY and FAIL (not DATA)', async () => {
    await withEmulator({ faults: { infoBefore: ['erasing keys', 'please wait'], textBefore: ['progress 50%'] } }, async (emu) => {
      const t = await openTcpTransport(emu.address);
      const ok = await rawCommand(t, 'getvar:product');
      expect(ok).toEqual({ status: 'OKAY', message: 'miflash-emu', before: ['INFOerasing keys', 'INFOplease wait', 'TEXTprogress 50%'] });
      const fail = await rawCommand(t, 'getvar:nope');
      expect(fail.status).toBe('FAIL');
      expect(fail.before).toHaveLength(3);
      expect(await rawCommand(t, 'download:00000010')).toEqual({ status: 'DATA', message: '00000010', before: [] });
      await t.close();
    });
  });

  it('the AOSP client shows injected INFO lines as (bootloader) output', needs('fastboot'), async () => {
    await withEmulator({ faults: { infoBefore: ['hello from the bootloader'] } }, async (emu) => {
      const r = await runAospFastboot(emu.port, ['getvar', 'product']);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('(bootloader) hello from the bootloader');
    });
  });

  it('CLI fault flags reach the device (--fail-on, --fail-message, --info-before, --log)', async () => {
    const tmp = tempDir();
    const log = path.join(tmp.dir, 'log');
    const emu = await spawnCliEmulator(['--discard', '--fail-on', 'getvar:serialno', '--fail-message', 'no serial today', '--info-before', 'hi', '--log', log]);
    try {
      const t = await openTcpTransport(emu.address);
      expect(await rawCommand(t, 'getvar:serialno')).toEqual({ status: 'FAIL', message: 'no serial today', before: ['INFOhi'] });
      expect(await rawCommand(t, 'getvar:product')).toMatchObject({ status: 'OKAY', message: 'miflash-emu' });
      await t.close();
      expect(readFileSync(log, 'utf8')).toBe('getvar:serialno\ngetvar:product\n');
    } finally {
      expect(await emu.stop()).toBe(0);
      tmp.cleanup();
    }
  });
});
