// The one interface every fastboot/EDL link implements (USB, TCP, UDP, in-memory).
//
// Packet semantics follow the USB model, which TCP/UDP framing reproduces:
//  - write(): sends one packet (a command) or one piece of a data phase.
//    Several writes may be in flight at once (the transfer loop relies on it);
//    they reach the device in call order.
//  - read(max): returns the next packet the device sent, at most `max` bytes
//    (over TCP: the rest of the current frame, up to `max`).

export interface IoOptions {
  /** Per-operation timeout; transports must never wait forever. */
  timeoutMs?: number;
}

export interface Transport {
  /** How the user would name this device, e.g. "tcp:127.0.0.1:5554" or "usb:1-4.2". */
  readonly id: string;
  readonly kind: 'usb' | 'tcp' | 'udp' | 'memory';
  /** Preferred size of one data-phase write (USB: >= 256 KiB). */
  readonly preferredWriteSize: number;
  /** How many data-phase writes the transfer loop may keep in flight. */
  readonly maxInFlight: number;
  write(data: Uint8Array, opts?: IoOptions): Promise<void>;
  read(maxLength: number, opts?: IoOptions): Promise<Buffer>;
  close(): Promise<void>;
}

export const DEFAULT_IO_TIMEOUT_MS = 30_000;
