// End to end below the CLI: FastbootClient -> UsbTransport (pipelined bulk
// transfers) -> fake usb package -> emulated fastboot device.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TransportError } from '../../src/errors.js';
import { EmulatedFastbootDevice, runFastbootDevice } from '../../src/emulator/fastboot/index.js';
import { FastbootClient } from '../../src/fastboot/client.js';
import { FASTBOOT_USB_MATCH, openUsbTransport } from '../../src/transport/usb.js';
import { FakeUsb, fakeUsbDeviceTransport, fastbootPhone } from '../helpers/fake-usb.js';

const KiB = 1024;

async function setup(latencyMs = 0) {
  const usb = new FakeUsb([fastbootPhone({ ports: [4, 2], latencyMs })]);
  const dev = usb.devices[0]!;
  const device = new EmulatedFastbootDevice({ store: null, product: 'usb-phone', serial: 'ABC123', maxDownloadSize: 8 * 1024 * KiB });
  const served = runFastbootDevice(fakeUsbDeviceTransport(dev), device);
  const t = await openUsbTransport(FASTBOOT_USB_MATCH, { serial: 'ABC123' }, { usb });
  return { dev, device, served, client: new FastbootClient(t, { timeoutMs: 5000 }), t };
}

describe('fastboot over the USB transport (fake bus, emulated device)', () => {
  it('getvar and a 3 MiB download arrive intact, in >= 256 KiB transfers with several in flight', async () => {
    const { dev, device, client } = await setup(1);
    expect(await client.getvar('product')).toBe('usb-phone');
    const img = randomBytes(3 * 1024 * KiB + 17);
    await client.download(img);
    expect(device.log).toContain(`download ${img.length} ${createHash('sha256').update(img).digest('hex')}`);
    const cmd = dev.outRecords.findIndex((r) => r.data.toString('latin1').startsWith('download:'));
    const data = dev.outRecords.slice(cmd + 1);
    expect(Buffer.concat(data.map((r) => r.data)).equals(img)).toBe(true);
    expect(data.slice(0, -1).every((r) => r.size >= 256 * KiB)).toBe(true);
    expect(dev.maxInFlight).toBeGreaterThanOrEqual(2);
    await client.close();
  });

  it('the device rebooting (disconnect) surfaces as a typed transport error on the next command', async () => {
    const { client } = await setup();
    await client.command('reboot');
    const e = await client.getvar('product').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as Error).message).toContain('device disconnected');
  });
});
