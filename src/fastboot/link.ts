// A device link that survives reboots between bootloader and fastbootd. The
// AOSP client keeps one FastBootDriver and swaps its transport after
// `reboot-fastboot` (reboot_to_userspace_fastboot); commands that must cross
// that boundary (reboot fastboot, update / flashall with super_empty.img) take
// a DeviceLink and read `link.client` after each transition.
import { DeviceFailError } from '../errors.js';
import type { FastbootClient } from './client.js';
import { step, type EventSink } from './events.js';
import { DEFAULT_REBOOT_TIMEOUT_MS, reconnect, waitForDisconnect } from './reconnect.js';
import { getvarOrUndefined } from './slots.js';

export interface DeviceLinkOptions {
  /** Opens a new client on the same device (same address, USB serial or port). Without it the link cannot follow a reboot. */
  reopen?: () => Promise<FastbootClient>;
  /** How the device is named in messages. */
  deviceId: string;
  rebootTimeoutMs?: number;
  reconnectIntervalMs?: number;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** Called with every client the link opens (the caller closes them; the first one is the caller's too). */
  onClient?: (client: FastbootClient) => void | Promise<void>;
}

export class DeviceLink {
  client: FastbootClient;
  /** serialno read before the first reboot: the device must answer with it afterwards. */
  private serial: string | undefined;

  constructor(
    client: FastbootClient,
    readonly opts: DeviceLinkOptions,
  ) {
    this.client = client;
  }

  get canFollow(): boolean {
    return this.opts.reopen !== undefined;
  }

  /** Remembers the serial number the device reported (FlashAllTool reads it anyway), sparing a getvar later. */
  knowSerial(serial: string | undefined): void {
    if (serial !== undefined && serial.trim() !== '') this.serial = serial.trim();
  }

  async isUserspace(): Promise<boolean> {
    return (await getvarOrUndefined(this.client, 'is-userspace'))?.trim() === 'yes';
  }

  /**
   * AOSP reboot_to_userspace_fastboot: reboot-fastboot, wait for the link to
   * drop, open the device again (same serial number), and insist it is
   * fastbootd. The new client asks max-download-size again, as AOSP resets its
   * cached limit (bootloader and fastbootd limits differ).
   */
  async rebootToUserspace(): Promise<void> {
    const reopen = this.opts.reopen;
    if (!reopen) {
      throw new DeviceFailError(`${this.opts.deviceId}: this needs userspace fastboot (fastbootd), and miflash cannot follow this device through a reboot here`, {
        code: 'fastboot.no-reconnect',
        hint: 'run `miflash reboot fastboot` first, then this command again',
      });
    }
    if (this.serial === undefined) this.knowSerial(await getvarOrUndefined(this.client, 'serialno'));
    await step(this.opts.onEvent, 'Rebooting into fastboot', () => this.client.reboot('fastboot'));
    await this.follow(reopen, 'fastboot');
    if (!(await this.isUserspace())) {
      throw new DeviceFailError(`${this.opts.deviceId}: failed to boot into userspace fastboot (getvar is-userspace is not 'yes'); one or more components might be unbootable`, {
        code: 'fastboot.not-fastbootd',
        hint: 'the device came back in the bootloader: reflash its boot images (boot, vendor_boot, dtbo, vbmeta) and retry',
      });
    }
  }

  /** reboot-bootloader, then follow the device back into the bootloader. */
  async rebootToBootloader(): Promise<void> {
    const reopen = this.opts.reopen;
    if (!reopen) throw new DeviceFailError(`${this.opts.deviceId}: miflash cannot follow this device through a reboot here`, { code: 'fastboot.no-reconnect' });
    if (this.serial === undefined) this.knowSerial(await getvarOrUndefined(this.client, 'serialno'));
    await step(this.opts.onEvent, 'Rebooting into bootloader', () => this.client.reboot('bootloader'));
    await this.follow(reopen, 'bootloader');
  }

  /** After a reboot command's OKAY: wait for the link to drop, then for the same device to answer again. */
  async follow(reopen: () => Promise<FastbootClient>, target: string): Promise<void> {
    const timeoutMs = this.opts.rebootTimeoutMs ?? DEFAULT_REBOOT_TIMEOUT_MS;
    const next = await step(this.opts.onEvent, `Waiting for ${this.opts.deviceId} to come back in ${target}`, async () => {
      await waitForDisconnect(this.client.transport);
      return reconnect({
        connect: reopen,
        timeoutMs,
        deviceId: this.opts.deviceId,
        ...(this.opts.reconnectIntervalMs !== undefined ? { intervalMs: this.opts.reconnectIntervalMs } : {}),
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        ...(this.serial !== undefined ? { expectSerial: this.serial } : {}),
      });
    });
    this.client = next;
    await this.opts.onClient?.(next);
  }
}
