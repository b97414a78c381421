// A fake of the `usb` package (v2 legacy API) at the boundary the USB transport
// uses: getDeviceList() -> devices -> interfaces -> endpoints -> transfers.
//
// It models what matters for correctness: libusb's error conventions (negative
// LIBUSB_ERROR_* thrown synchronously, positive LIBUSB_TRANSFER_* status in
// callbacks), in-order completion per endpoint, libusb timeouts, cancellation,
// disconnect, and it records every transfer (size, data, concurrency) so tests
// can assert on them. Device logic (an emulator) plugs in through onOut/pushIn.

import type {
  UsbConfigDescriptorLike,
  UsbDeviceLike,
  UsbEndpointDescriptorLike,
  UsbEndpointLike,
  UsbErrorLike,
  UsbInterfaceDescriptorLike,
  UsbInterfaceLike,
  UsbModuleLike,
  UsbTransferLike,
} from '../../src/transport/usb-module.js';
import { LIBUSB } from '../../src/transport/usb-module.js';
import { TransportClosedError, TransportTimeoutError } from '../../src/errors.js';

export class FakeUsbError extends Error implements UsbErrorLike {
  constructor(readonly errno: number) {
    super(ERRNO_NAMES[errno] ?? `LIBUSB errno ${errno}`);
  }
}

const ERRNO_NAMES: Record<number, string> = {
  [-1]: 'LIBUSB_ERROR_IO',
  [-3]: 'LIBUSB_ERROR_ACCESS',
  [-4]: 'LIBUSB_ERROR_NO_DEVICE',
  [-6]: 'LIBUSB_ERROR_BUSY',
  [-7]: 'LIBUSB_ERROR_TIMEOUT',
  [-9]: 'LIBUSB_ERROR_PIPE',
  [-11]: 'LIBUSB_ERROR_NO_MEM',
  [-12]: 'LIBUSB_ERROR_NOT_SUPPORTED',
  1: 'LIBUSB_TRANSFER_ERROR',
  2: 'LIBUSB_TRANSFER_TIMED_OUT',
  3: 'LIBUSB_TRANSFER_CANCELLED',
  4: 'LIBUSB_TRANSFER_STALL',
  5: 'LIBUSB_TRANSFER_NO_DEVICE',
  6: 'LIBUSB_TRANSFER_OVERFLOW',
};

export interface FakeEndpointSpec {
  address: number;
  /** default 'bulk' */
  type?: 'bulk' | 'interrupt';
  maxPacketSize?: number;
}

export interface FakeInterfaceSpec {
  number: number;
  alt?: number;
  class: number;
  subclass: number;
  protocol: number;
  endpoints: FakeEndpointSpec[];
}

/** What an OUT transfer does: complete fully, fail, complete short, or never complete. */
export type OutOutcome = 'ok' | 'hang' | { errno: number; actual?: number } | { actual: number };

export interface FakeDeviceSpec {
  vendorId: number;
  productId: number;
  bus?: number;
  ports?: number[];
  address?: number;
  serial?: string | null;
  product?: string;
  interfaces: FakeInterfaceSpec[];
  /** errno thrown by open() */
  openError?: number;
  /** errno thrown by claim() */
  claimError?: number;
  kernelDriverActive?: boolean;
  /** errno thrown by detachKernelDriver() */
  detachError?: number;
  /** Delay before a transfer completes (ms; 0 = next macrotask). */
  latencyMs?: number;
  /** libusb's own timeouts; false models a stack whose callback never comes. */
  honorTimeouts?: boolean;
  /** Per-OUT-transfer outcome (index counts submitted OUT transfers from 0). */
  outBehaviour?: (t: { index: number; size: number; data: Buffer }) => OutOutcome;
  /** errno thrown by submit() of an OUT transfer of this size (e.g. NO_MEM above a size). */
  submitError?: (size: number) => number | undefined;
}

export const fastbootInterface = (number = 0, mps = 512): FakeInterfaceSpec => ({
  number,
  class: 0xff,
  subclass: 0x42,
  protocol: 0x03,
  endpoints: [
    { address: 0x81, maxPacketSize: mps },
    { address: 0x01, maxPacketSize: mps },
  ],
});

export const edlInterface = (protocol = 0xff, mps = 512): FakeInterfaceSpec => ({
  number: 0,
  class: 0xff,
  subclass: 0xff,
  protocol,
  endpoints: [
    { address: 0x81, maxPacketSize: mps },
    { address: 0x01, maxPacketSize: mps },
  ],
});

/** An adb-style interface: ff/42/01 (must never match fastboot). */
export const adbInterface = (number = 0): FakeInterfaceSpec => ({ ...fastbootInterface(number), protocol: 0x01 });

interface PendingTransfer {
  t: FakeTransfer;
  buf: Buffer;
  timer?: NodeJS.Timeout;
  outcome?: OutOutcome;
  index: number;
}

export interface OutRecord {
  size: number;
  data: Buffer;
  /** Transfers pending on this endpoint when this one was submitted (including itself). */
  depth: number;
}

class FakeTransfer implements UsbTransferLike {
  constructor(
    private readonly ep: FakeEndpoint,
    readonly timeout: number,
    readonly callback: (error: UsbErrorLike | undefined, buffer: Buffer, actualLength: number) => void,
  ) {}
  submit(buffer: Buffer): this {
    this.ep.submit(this, buffer);
    return this;
  }
  cancel(): boolean {
    return this.ep.cancel(this);
  }
}

export class FakeEndpoint implements UsbEndpointLike {
  readonly direction: 'in' | 'out';
  readonly transferType: number;
  timeout = 0;
  readonly address: number;
  readonly descriptor: UsbEndpointDescriptorLike;
  private readonly pending: PendingTransfer[] = [];
  private busy = false;

  constructor(
    private readonly dev: FakeDevice,
    spec: FakeEndpointSpec,
  ) {
    this.address = spec.address;
    this.direction = spec.address & 0x80 ? 'in' : 'out';
    const attrs = spec.type === 'interrupt' ? 3 : LIBUSB.TRANSFER_TYPE_BULK;
    this.descriptor = { bEndpointAddress: spec.address, bmAttributes: attrs, wMaxPacketSize: spec.maxPacketSize ?? 512 };
    this.transferType = attrs;
  }

  makeTransfer(timeout: number, callback: (error: UsbErrorLike | undefined, buffer: Buffer, actualLength: number) => void): FakeTransfer {
    return new FakeTransfer(this, timeout, callback);
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  submit(t: FakeTransfer, buf: Buffer): void {
    const dev = this.dev;
    if (dev.disconnected) throw new FakeUsbError(LIBUSB.ERROR_NO_DEVICE);
    if (!dev.isOpen) throw new FakeUsbError(LIBUSB.ERROR_IO);
    if (this.direction === 'out') {
      const errno = dev.spec.submitError?.(buf.length);
      if (errno !== undefined) throw new FakeUsbError(errno);
    }
    const p: PendingTransfer = { t, buf, index: 0 };
    this.pending.push(p);
    dev.maxInFlight = Math.max(dev.maxInFlight, this.pending.length);
    if (this.direction === 'out') {
      p.index = dev.outRecords.length;
      const data = Buffer.from(buf);
      dev.outRecords.push({ size: buf.length, data, depth: this.pending.length });
      p.outcome = dev.spec.outBehaviour?.({ index: p.index, size: buf.length, data }) ?? 'ok';
    } else {
      dev.inRequests.push(buf.length);
    }
    if (t.timeout > 0 && dev.spec.honorTimeouts !== false) {
      p.timer = setTimeout(() => this.finish(p, new FakeUsbError(LIBUSB.TRANSFER_TIMED_OUT), 0), t.timeout);
    }
    this.kick();
  }

  cancel(t: FakeTransfer): boolean {
    const p = this.pending.find((x) => x.t === t);
    if (!p) return false;
    this.dev.cancels++;
    setImmediate(() => this.finish(p, new FakeUsbError(LIBUSB.TRANSFER_CANCELLED), 0));
    return true;
  }

  /** Device unplugged: every pending transfer fails with NO_DEVICE. */
  failAll(errno: number): void {
    for (const p of [...this.pending]) setImmediate(() => this.finish(p, new FakeUsbError(errno), 0));
  }

  /** Process the head of the queue (libusb completes one endpoint's transfers in order). */
  kick(): void {
    if (this.busy || this.pending.length === 0 || this.dev.disconnected) return;
    const head = this.pending[0]!;
    if (this.direction === 'out') {
      if (head.outcome === 'hang') return;
      this.busy = true;
      this.later(() => {
        this.busy = false;
        if (this.pending[0] !== head) return this.kick();
        const o = head.outcome!;
        if (o === 'ok') {
          this.finish(head, undefined, head.buf.length);
          this.dev.delivered(head.buf);
        } else if (o !== 'hang' && 'errno' in o) this.finish(head, new FakeUsbError(o.errno), o.actual ?? 0);
        else if (o !== 'hang') {
          this.finish(head, undefined, o.actual);
          this.dev.delivered(head.buf.subarray(0, o.actual));
        }
      });
      return;
    }
    const packet = this.dev.peekIn();
    if (packet === undefined) return;
    this.busy = true;
    this.later(() => {
      this.busy = false;
      if (this.pending[0] !== head) return this.kick();
      const want = head.buf.length;
      const mps = this.descriptor.wMaxPacketSize;
      if (packet.length > want && want % mps !== 0) {
        this.dev.shiftIn();
        return this.finish(head, new FakeUsbError(LIBUSB.TRANSFER_OVERFLOW), 0);
      }
      const n = Math.min(want, packet.length);
      packet.copy(head.buf, 0, 0, n);
      if (n === packet.length) this.dev.shiftIn();
      else this.dev.replaceInHead(packet.subarray(n));
      this.finish(head, undefined, n);
    });
  }

  private later(fn: () => void): void {
    const ms = this.dev.spec.latencyMs ?? 0;
    if (ms > 0) setTimeout(fn, ms);
    else setImmediate(fn);
  }

  private finish(p: PendingTransfer, err: FakeUsbError | undefined, actual: number): void {
    const i = this.pending.indexOf(p);
    if (i < 0) return;
    this.pending.splice(i, 1);
    if (p.timer) clearTimeout(p.timer);
    p.t.callback(err, p.buf, actual);
    this.kick();
  }
}

export class FakeInterface implements UsbInterfaceLike {
  interfaceNumber: number;
  altSetting = 0;
  descriptor: UsbInterfaceDescriptorLike;
  endpoints: FakeEndpoint[];
  claimed = false;
  detached = false;

  constructor(
    private readonly dev: FakeDevice,
    private readonly alts: FakeInterfaceSpec[],
  ) {
    this.interfaceNumber = alts[0]!.number;
    this.descriptor = dev.descriptorOf(alts[0]!);
    this.endpoints = alts[0]!.endpoints.map((e) => dev.endpoint(e));
  }
  claim(): void {
    if (this.dev.disconnected) throw new FakeUsbError(LIBUSB.ERROR_NO_DEVICE);
    if (this.dev.spec.claimError !== undefined) throw new FakeUsbError(this.dev.spec.claimError);
    this.claimed = true;
  }
  release(callback?: (error?: UsbErrorLike) => void): void {
    this.claimed = false;
    this.dev.released++;
    setImmediate(() => callback?.());
  }
  isKernelDriverActive(): boolean {
    return !!this.dev.spec.kernelDriverActive && !this.detached;
  }
  detachKernelDriver(): void {
    if (this.dev.spec.detachError !== undefined) throw new FakeUsbError(this.dev.spec.detachError);
    this.detached = true;
  }
  setAltSetting(altSetting: number, callback?: (error: UsbErrorLike | undefined) => void): void {
    const spec = this.alts.find((a) => (a.alt ?? 0) === altSetting);
    if (!spec) return void setImmediate(() => callback?.(new FakeUsbError(LIBUSB.ERROR_NOT_FOUND)));
    this.altSetting = altSetting;
    this.descriptor = this.dev.descriptorOf(spec);
    this.endpoints = spec.endpoints.map((e) => this.dev.endpoint(e));
    setImmediate(() => callback?.(undefined));
  }
}

export class FakeDevice implements UsbDeviceLike {
  busNumber: number;
  deviceAddress: number;
  portNumbers: number[] | undefined;
  deviceDescriptor;
  interfaces: FakeInterface[] | undefined;
  timeout = 1000;
  isOpen = false;
  disconnected = false;
  // records
  readonly outRecords: OutRecord[] = [];
  readonly inRequests: number[] = [];
  maxInFlight = 0;
  cancels = 0;
  opens = 0;
  closes = 0;
  released = 0;
  stringReads = 0;
  private readonly inQueue: Buffer[] = [];
  private readonly endpointsByAddr = new Map<number, FakeEndpoint>();
  private outListeners: ((data: Buffer) => void)[] = [];

  constructor(readonly spec: FakeDeviceSpec) {
    this.busNumber = spec.bus ?? 1;
    this.deviceAddress = spec.address ?? 5;
    this.portNumbers = spec.ports ?? [4];
    this.deviceDescriptor = {
      idVendor: spec.vendorId,
      idProduct: spec.productId,
      iSerialNumber: spec.serial ? 3 : 0,
      iProduct: spec.product ? 2 : 0,
    };
  }

  get configDescriptor(): UsbConfigDescriptorLike | undefined {
    if (this.disconnected) return undefined;
    const byNumber = new Map<number, FakeInterfaceSpec[]>();
    for (const i of this.spec.interfaces) byNumber.set(i.number, [...(byNumber.get(i.number) ?? []), i]);
    return { interfaces: [...byNumber.values()].map((alts) => alts.map((a) => this.descriptorOf(a))) };
  }

  descriptorOf(i: FakeInterfaceSpec): UsbInterfaceDescriptorLike {
    return {
      bInterfaceNumber: i.number,
      bAlternateSetting: i.alt ?? 0,
      bInterfaceClass: i.class,
      bInterfaceSubClass: i.subclass,
      bInterfaceProtocol: i.protocol,
      endpoints: i.endpoints.map((e) => ({ bEndpointAddress: e.address, bmAttributes: e.type === 'interrupt' ? 3 : 2, wMaxPacketSize: e.maxPacketSize ?? 512 })),
    };
  }

  endpoint(spec: FakeEndpointSpec): FakeEndpoint {
    let ep = this.endpointsByAddr.get(spec.address);
    if (!ep) {
      ep = new FakeEndpoint(this, spec);
      this.endpointsByAddr.set(spec.address, ep);
    }
    return ep;
  }

  open(): void {
    if (this.disconnected) throw new FakeUsbError(LIBUSB.ERROR_NO_DEVICE);
    if (this.spec.openError !== undefined) throw new FakeUsbError(this.spec.openError);
    this.opens++;
    this.isOpen = true;
    const byNumber = new Map<number, FakeInterfaceSpec[]>();
    for (const i of this.spec.interfaces) byNumber.set(i.number, [...(byNumber.get(i.number) ?? []), i]);
    this.interfaces = [...byNumber.values()].map((alts) => new FakeInterface(this, alts));
  }

  close(): void {
    this.closes++;
    this.isOpen = false;
    this.interfaces = undefined;
  }

  interface(addr: number): FakeInterface {
    if (!this.interfaces) throw new Error('Device must be open before searching for interfaces');
    const i = this.interfaces.find((x) => x.interfaceNumber === addr);
    if (!i) throw new Error(`Interface not found for address: ${addr}`);
    return i;
  }

  getStringDescriptor(index: number, callback: (error?: UsbErrorLike, value?: string) => void): void {
    this.stringReads++;
    if (!this.isOpen) return void setImmediate(() => callback(new FakeUsbError(LIBUSB.ERROR_IO)));
    const value = index === 3 ? this.spec.serial ?? undefined : index === 2 ? this.spec.product : undefined;
    setImmediate(() => (value === undefined ? callback(new FakeUsbError(LIBUSB.ERROR_PIPE)) : callback(undefined, value)));
  }

  // ---- device side ----

  /** The device sends one bulk IN "packet" (a device-side transfer; empty = ZLP). */
  pushIn(data: Buffer | string): void {
    this.inQueue.push(Buffer.from(data));
    for (const ep of this.endpointsByAddr.values()) if (ep.direction === 'in') ep.kick();
  }

  /** Called with the bytes of every completed OUT transfer (in order). */
  onOut(listener: (data: Buffer) => void): void {
    this.outListeners.push(listener);
  }

  /** Everything the host wrote, concatenated. */
  get written(): Buffer {
    return Buffer.concat(this.outRecords.map((r) => r.data));
  }

  /** Unplug: pending transfers fail with NO_DEVICE, later calls throw ERROR_NO_DEVICE. */
  disconnect(): void {
    this.disconnected = true;
    for (const ep of this.endpointsByAddr.values()) ep.failAll(LIBUSB.TRANSFER_NO_DEVICE);
  }

  /** Unplug once the host has read everything the device sent (a reboot after OKAY). */
  disconnectWhenDrained(maxWaitMs = 1000): void {
    const start = Date.now();
    const check = (): void => {
      if (this.inQueue.length === 0 || Date.now() - start >= maxWaitMs) this.disconnect();
      else setTimeout(check, 1);
    };
    check();
  }

  delivered(data: Buffer): void {
    for (const l of this.outListeners) l(Buffer.from(data));
  }
  peekIn(): Buffer | undefined {
    return this.inQueue[0];
  }
  shiftIn(): void {
    this.inQueue.shift();
  }
  replaceInHead(rest: Buffer): void {
    this.inQueue[0] = rest;
  }
}

export class FakeUsb implements UsbModuleLike {
  readonly devices: FakeDevice[];
  listError?: number;
  constructor(specs: FakeDeviceSpec[]) {
    this.devices = specs.map((s) => new FakeDevice(s));
  }
  getDeviceList(): FakeDevice[] {
    if (this.listError !== undefined) throw new FakeUsbError(this.listError);
    return this.devices.filter((d) => !d.disconnected);
  }
}

/** A typical phone in fastboot mode (Google's VID, fastboot PID). */
export const fastbootPhone = (over: Partial<FakeDeviceSpec> = {}): FakeDeviceSpec => ({
  vendorId: 0x18d1,
  productId: 0x4ee0,
  serial: 'ABC123',
  product: 'Android',
  interfaces: [fastbootInterface()],
  ...over,
});

/** A Qualcomm device in EDL mode; iProduct carries the serial as qdl expects. */
export const edlPhone = (over: Partial<FakeDeviceSpec> = {}): FakeDeviceSpec => ({
  vendorId: 0x05c6,
  productId: 0x9008,
  product: 'QUSB__BULK_SN:0AA94EFD',
  interfaces: [edlInterface()],
  ...over,
});

/**
 * The device end of a fake USB device as a Transport, so an emulated device
 * (runFastbootDevice, the EDL emulator's serveOnTransport) can sit behind the
 * real UsbTransport: read() = the next OUT transfer the host completed (ZLPs
 * only end a transfer and are not delivered), write() = one IN packet.
 */
export function fakeUsbDeviceTransport(dev: FakeDevice): import('../../src/transport/transport.js').Transport {
  const inbox: Buffer[] = [];
  const waiters: { max: number; resolve(b: Buffer): void; reject(e: Error): void; timer: NodeJS.Timeout }[] = [];
  let closed = false;
  const serve = (): void => {
    while (waiters.length > 0) {
      const head = inbox[0];
      if (head === undefined) {
        if (!closed) return;
        const w = waiters.shift()!;
        clearTimeout(w.timer);
        w.reject(new TransportClosedError('fake usb device read'));
        continue;
      }
      const w = waiters.shift()!;
      clearTimeout(w.timer);
      if (head.length <= w.max) inbox.shift();
      else inbox[0] = head.subarray(w.max);
      w.resolve(head.subarray(0, w.max));
    }
  };
  dev.onOut((data) => {
    if (data.length === 0) return;
    inbox.push(data);
    serve();
  });
  return {
    id: `fake-usb-device:${dev.busNumber}-${(dev.portNumbers ?? []).join('.')}`,
    kind: 'memory',
    preferredWriteSize: 1024 * 1024,
    maxInFlight: 1,
    async write(data: Uint8Array): Promise<void> {
      if (closed || dev.disconnected) throw new TransportClosedError('fake usb device write');
      dev.pushIn(Buffer.from(data));
    },
    read(max: number, opts?: { timeoutMs?: number }): Promise<Buffer> {
      const timeoutMs = Math.min(opts?.timeoutMs ?? 30_000, 2_147_483_647);
      return new Promise<Buffer>((resolve, reject) => {
        const w = {
          max,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new TransportTimeoutError('fake usb device read', timeoutMs));
          }, timeoutMs),
        };
        waiters.push(w);
        serve();
      });
    },
    async close(): Promise<void> {
      // The device going away (reboot): the host sees a disconnect.
      closed = true;
      serve();
      dev.disconnectWhenDrained();
    },
  };
}
