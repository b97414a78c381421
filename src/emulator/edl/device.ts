// An emulated Qualcomm EDL device: the boot ROM's Sahara, then the Firehose
// programmer it loads, over one packet link. Transport-agnostic: feed host
// packets to receive(); answers come out through `send`. One instance = one
// USB enumeration (a power reset ends it).
import { FirehoseDevice, type FirehoseDeviceOptions, type FirehoseCommandRecord } from './firehose-device.js';
import { SaharaDevice, type SaharaDeviceOptions } from './sahara-device.js';
import type { VirtualDisk } from './disk.js';

export interface EdlEmulatorOptions extends FirehoseDeviceOptions {
  sahara?: SaharaDeviceOptions;
  /** The programmer is already running (a previous session was not reset). */
  startInFirehose?: boolean;
  /** With startInFirehose: print the banner again on connect (some targets do). */
  bannerOnConnect?: boolean;
}

export interface EdlEmulatorLink {
  /** May return a promise while the link is full (backpressure for streamed reads). */
  send(packet: Buffer): void | Promise<void>;
  /** The device left the bus (power reset / off, Sahara RESET). */
  disconnect(reason: string): void;
}

export class EmulatedEdlDevice {
  readonly firehose: FirehoseDevice;
  private readonly sahara: SaharaDevice;
  private mode: 'sahara' | 'firehose' | 'gone' = 'sahara';
  /** Images the boot ROM accepted, by id. */
  loadedImages = new Map<number, Buffer>();
  saharaFailure: string | undefined;
  powerEvents: string[] = [];
  /** Packets received, in order, with the mode they arrived in (for "nothing else was sent" checks). */
  readonly received: { mode: string; bytes: number }[] = [];

  constructor(
    disks: VirtualDisk[],
    readonly opts: EdlEmulatorOptions,
    link: EdlEmulatorLink,
  ) {
    this.firehose = new FirehoseDevice(disks, opts, {
      send: (p) => link.send(p),
      powerOff: (mode) => {
        this.powerEvents.push(mode);
        this.mode = 'gone';
        link.disconnect(`power ${mode}`);
      },
    });
    this.sahara = new SaharaDevice(opts.sahara ?? {}, {
      send: (p) => void link.send(p),
      complete: (images) => {
        this.loadedImages = images;
        this.mode = 'firehose';
        this.firehose.banner();
      },
      reset: () => {
        this.mode = 'gone';
        link.disconnect('sahara reset');
      },
      failed: (reason) => {
        this.saharaFailure = reason;
      },
    });
  }

  get commands(): FirehoseCommandRecord[] {
    return this.firehose.commands;
  }

  get state(): 'sahara' | 'firehose' | 'gone' {
    return this.mode;
  }

  /** Called once the host is connected. */
  start(): void {
    if (this.opts.startInFirehose) {
      this.mode = 'firehose';
      if (this.opts.bannerOnConnect) this.firehose.banner();
    } else {
      this.sahara.start();
    }
  }

  receive(packet: Buffer): void {
    this.received.push({ mode: this.mode, bytes: packet.length });
    if (this.mode === 'sahara') this.sahara.receive(packet);
    else if (this.mode === 'firehose') this.firehose.receive(packet);
  }
}
