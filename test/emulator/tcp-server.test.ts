// The emulator's TCP server: handshake, framing edge cases, discard mode.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeFrame, encodeHandshake, FrameDecoder } from '../../src/transport/tcp-framing.js';
import { openTcpTransport } from '../../src/transport/tcp.js';
import { rawCommand, withEmulator } from '../helpers/emulator.js';

/** Raw socket client: returns every frame the device sent until it closes or `ms` pass. */
async function rawSession(port: number, wire: Buffer, ms = 500): Promise<{ handshake: string; frames: string[]; closed: boolean }> {
  const s = net.connect(port, '127.0.0.1');
  const dec = new FrameDecoder({ handshake: true });
  const frames: string[] = [];
  let cur: Buffer[] = [];
  let closed = false;
  s.on('data', (d) => {
    dec.push(d);
    for (let p = dec.next(); p; p = dec.next()) {
      cur.push(p.data);
      if (p.end) {
        frames.push(Buffer.concat(cur).toString('latin1'));
        cur = [];
      }
    }
  });
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(wire);
  await new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    s.once('close', () => {
      closed = true;
      clearTimeout(t);
      r();
    });
  });
  s.destroy();
  return { handshake: dec.peerVersion === undefined ? '' : `FB0${dec.peerVersion}`, frames, closed };
}

describe('emulator TCP server', () => {
  it('answers FB01 and handles several commands sent back to back in one segment', async () => {
    await withEmulator({ product: 'burst' }, async (emu) => {
      const wire = Buffer.concat([encodeHandshake(), encodeFrame(Buffer.from('getvar:product')), encodeFrame(Buffer.from('getvar:nope')), encodeFrame(Buffer.from('reboot'))]);
      const r = await rawSession(emu.port, wire);
      expect(r.handshake).toBe('FB01');
      expect(r.frames[0]).toBe('OKAYburst');
      expect(r.frames[1]).toMatch(/^FAIL/);
      expect(r.frames[2]).toBe('OKAY');
      expect(r.closed).toBe(true); // reboot closes the connection
    });
  });

  it('drops a peer whose handshake is not FB01, without answering', async () => {
    await withEmulator({}, async (emu) => {
      const r = await rawSession(emu.port, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
      expect(r.frames).toEqual([]);
      expect(r.closed).toBe(true);
      expect(emu.log).toEqual([]);
      expect(emu.device.notes.at(-1)).toMatch(/^connection dropped: bad fastboot TCP handshake/);
    });
  });

  it('FAILs a command frame over 4096 bytes', async () => {
    await withEmulator({}, async (emu) => {
      const t = await openTcpTransport(emu.address);
      const r = await rawCommand(t, 'oem ' + 'x'.repeat(5000));
      expect(r.status).toBe('FAIL');
      expect(r.message).toContain('5004 bytes');
      expect((await rawCommand(t, 'getvar:product')).status).toBe('OKAY');
      await t.close();
    });
  });

  it('accepts download data in one frame, in tiny frames, and mixed; partition content is exact', async () => {
    await withEmulator({ partitions: { boot: 300_000 } }, async (emu) => {
      const t = await openTcpTransport(emu.address);
      const img = randomBytes(300_000);
      const layouts = [[300_000], Array(300).fill(1000), [1, 99_999, 7, 199_993]];
      for (const sizes of layouts) {
        expect((await rawCommand(t, 'download:000493e0')).status).toBe('DATA');
        let off = 0;
        await Promise.all(sizes.map((n) => t.write(img.subarray(off, (off += n)))));
        expect((await t.read(256, { timeoutMs: 2000 })).toString()).toBe('OKAY');
        expect((await rawCommand(t, 'erase:boot')).status).toBe('OKAY');
        expect((await rawCommand(t, 'flash:boot')).status).toBe('OKAY');
        expect(emu.device.readPartition('boot').equals(img)).toBe(true);
      }
      const sha = createHash('sha256').update(img).digest('hex');
      expect(emu.log.filter((l) => l.startsWith('download'))).toEqual(Array(3).fill(`download 300000 ${sha}`));
      await t.close();
    });
  });

  it('two hosts may connect at once; state (slot) is shared like one physical device', async () => {
    await withEmulator({ slots: ['a', 'b'], store: null }, async (emu) => {
      const a = await openTcpTransport(emu.address);
      const b = await openTcpTransport(emu.address);
      expect((await rawCommand(a, 'set_active:b')).status).toBe('OKAY');
      expect(await rawCommand(b, 'getvar:current-slot')).toMatchObject({ status: 'OKAY', message: 'b' });
      await Promise.all([a.close(), b.close()]);
    });
  });
});
