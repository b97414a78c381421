// Fastboot-over-UDP (protocol v1) as pure state machines, no sockets or timers:
// the packet codec, the host side (query -> init -> fastboot packets with a
// running sequence number) and the device side (respond once per host packet,
// re-send the last response on a retransmit, hold a read poll until data exists).
//
// Packet: [id][flags][seq hi][seq lo][data...]; flags bit 0 = continuation.

export const UDP_ID = { ERROR: 0x00, QUERY: 0x01, INIT: 0x02, FASTBOOT: 0x03 } as const;
export const UDP_FLAG_CONTINUATION = 0x01;
export const UDP_HEADER_SIZE = 4;
export const UDP_PROTOCOL_VERSION = 1;
/** Query and init must fit this, and every device supports at least it. */
export const UDP_MIN_PACKET_SIZE = 512;
/** What the AOSP host offers in init. */
export const UDP_HOST_MAX_PACKET_SIZE = 8192;

export interface UdpPacket {
  id: number;
  flags: number;
  seq: number;
  data: Buffer;
}

export class UdpProtocolError extends Error {}

export function encodeUdpPacket(p: { id: number; flags?: number; seq: number; data?: Uint8Array }): Buffer {
  const data = p.data ?? new Uint8Array(0);
  const out = Buffer.alloc(UDP_HEADER_SIZE + data.length);
  out[0] = p.id;
  out[1] = p.flags ?? 0;
  out.writeUInt16BE(p.seq & 0xffff, 2);
  out.set(data, UDP_HEADER_SIZE);
  return out;
}

/** undefined for datagrams too short to carry a header (ignored, like any garbage). */
export function decodeUdpPacket(buf: Buffer): UdpPacket | undefined {
  if (buf.length < UDP_HEADER_SIZE) return undefined;
  return { id: buf[0]!, flags: buf[1]!, seq: buf.readUInt16BE(2), data: buf.subarray(UDP_HEADER_SIZE) };
}

const u16pair = (a: number, b: number): Buffer => {
  const d = Buffer.alloc(4);
  d.writeUInt16BE(a, 0);
  d.writeUInt16BE(b, 2);
  return d;
};

const next = (seq: number): number => (seq + 1) & 0xffff;

// ---- host ---------------------------------------------------------------------

export type HostResponse = { kind: 'match'; packet: UdpPacket } | { kind: 'error'; message: string } | { kind: 'stale' };

/**
 * Host side. Usage: send queryPacket() until accept() matches, then
 * initPacket(), then fastbootPacket()s; every matched response advances the
 * sequence. The caller retransmits the same bytes until it gets a match.
 */
export class UdpHostSession {
  private seq = 0;
  private phase: 'query' | 'init' | 'ready' = 'query';
  version = 0;
  maxPacketSize = UDP_MIN_PACKET_SIZE;

  constructor(private readonly hostMaxPacketSize = UDP_HOST_MAX_PACKET_SIZE) {
    if (hostMaxPacketSize < UDP_MIN_PACKET_SIZE || hostMaxPacketSize > 0xffff) {
      throw new RangeError(`UDP max packet size must be ${UDP_MIN_PACKET_SIZE}..65535, got ${hostMaxPacketSize}`);
    }
  }

  get ready(): boolean {
    return this.phase === 'ready';
  }

  /** Largest fastboot payload per packet. */
  get maxData(): number {
    return this.maxPacketSize - UDP_HEADER_SIZE;
  }

  get sequence(): number {
    return this.seq;
  }

  queryPacket(): Buffer {
    return encodeUdpPacket({ id: UDP_ID.QUERY, seq: 0 });
  }

  initPacket(): Buffer {
    this.expectPhase('init');
    return encodeUdpPacket({ id: UDP_ID.INIT, seq: this.seq, data: u16pair(UDP_PROTOCOL_VERSION, this.hostMaxPacketSize) });
  }

  fastbootPacket(data: Uint8Array, continuation: boolean): Buffer {
    this.expectPhase('ready');
    if (data.length > this.maxData) throw new RangeError(`fastboot UDP payload ${data.length} > ${this.maxData}`);
    return encodeUdpPacket({ id: UDP_ID.FASTBOOT, flags: continuation ? UDP_FLAG_CONTINUATION : 0, seq: this.seq, data });
  }

  /** Classify a datagram received while waiting for the answer to `sent`; a match advances the state. */
  accept(sent: Buffer, datagram: Buffer): HostResponse {
    const p = decodeUdpPacket(datagram);
    const s = decodeUdpPacket(sent);
    if (!p || !s) return { kind: 'stale' };
    const sameSeq = s.id === UDP_ID.QUERY || p.seq === s.seq;
    if (p.id === UDP_ID.ERROR && sameSeq) return { kind: 'error', message: p.data.toString('latin1').replace(/[^\x20-\x7e]/g, '?') };
    if (p.id !== s.id || !sameSeq) return { kind: 'stale' };
    switch (p.id) {
      case UDP_ID.QUERY:
        if (this.phase !== 'query') return { kind: 'stale' }; // a late duplicate
        if (p.data.length < 2) throw new UdpProtocolError(`query response carries ${p.data.length} bytes, expected a 2-byte sequence number`);
        this.seq = p.data.readUInt16BE(0);
        this.phase = 'init';
        break;
      case UDP_ID.INIT: {
        if (p.data.length < 4) throw new UdpProtocolError(`init response carries ${p.data.length} bytes, expected version and packet size`);
        const version = p.data.readUInt16BE(0);
        const size = p.data.readUInt16BE(2);
        if (version < 1) throw new UdpProtocolError(`device answered protocol version ${version}`);
        if (size < UDP_MIN_PACKET_SIZE) throw new UdpProtocolError(`device max packet size ${size} is below the protocol minimum ${UDP_MIN_PACKET_SIZE}`);
        this.version = Math.min(version, UDP_PROTOCOL_VERSION);
        this.maxPacketSize = Math.min(size, this.hostMaxPacketSize);
        this.phase = 'ready';
        this.seq = next(this.seq);
        break;
      }
      default:
        this.seq = next(this.seq);
    }
    return { kind: 'match', packet: p };
  }

  private expectPhase(phase: 'init' | 'ready'): void {
    if (this.phase !== phase) throw new UdpProtocolError(`UDP session is in the ${this.phase} phase, not ${phase}`);
  }
}

// ---- device ---------------------------------------------------------------------

export interface DeviceStep {
  /** Datagram to send back (none when a read poll is held or the packet is ignored). */
  reply?: Buffer;
  /** A complete host message (continuation packets joined). */
  message?: Buffer;
  /** The host (re)started the session: abort what was going on. */
  init?: boolean;
}

/**
 * Device side: exactly one response per new host packet, the saved response
 * again for a retransmit (seq == S - 1), and an empty read poll is held until
 * the device has something to say (the host keeps retransmitting meanwhile).
 */
export class UdpDeviceSession {
  private expected: number;
  private last: Buffer | undefined;
  private maxPacketSize = UDP_MIN_PACKET_SIZE;
  private incoming: Buffer[] = [];
  private readonly outbox: Buffer[] = [];
  private held: number | undefined;

  constructor(
    private readonly deviceMaxPacketSize = 1024,
    startSeq = 0,
  ) {
    this.expected = startSeq & 0xffff;
  }

  get initialised(): boolean {
    return this.last !== undefined;
  }

  handle(datagram: Buffer): DeviceStep {
    const p = decodeUdpPacket(datagram);
    if (!p) return {};
    if (p.id === UDP_ID.QUERY) {
      const d = Buffer.alloc(2);
      d.writeUInt16BE(this.expected, 0);
      return { reply: encodeUdpPacket({ id: UDP_ID.QUERY, seq: p.seq, data: d }) };
    }
    if (p.seq === ((this.expected - 1) & 0xffff) && this.last) return { reply: this.last };
    if (p.seq !== this.expected) return {};
    switch (p.id) {
      case UDP_ID.INIT:
        return this.init(p);
      case UDP_ID.FASTBOOT:
        if (!this.initialised) return { reply: this.error(p.seq, 'fastboot packet before init') };
        return p.data.length > 0 ? this.hostData(p) : this.poll(p.seq);
      default:
        return { reply: this.error(p.seq, `unknown packet id 0x${p.id.toString(16).padStart(2, '0')}`) };
    }
  }

  /** The device sends one fastboot message; returns a datagram if a read poll was waiting for it. */
  send(message: Buffer): Buffer | undefined {
    this.outbox.push(message);
    if (this.held === undefined) return undefined;
    const seq = this.held;
    this.held = undefined;
    return this.poll(seq).reply;
  }

  private init(p: UdpPacket): DeviceStep {
    const hostMax = p.data.length >= 4 ? p.data.readUInt16BE(2) : UDP_MIN_PACKET_SIZE;
    this.maxPacketSize = Math.max(UDP_MIN_PACKET_SIZE, Math.min(hostMax, this.deviceMaxPacketSize));
    this.incoming = [];
    this.outbox.length = 0;
    this.held = undefined;
    return { reply: this.respond(UDP_ID.INIT, p.seq, 0, u16pair(UDP_PROTOCOL_VERSION, this.maxPacketSize)), init: true };
  }

  private hostData(p: UdpPacket): DeviceStep {
    this.incoming.push(Buffer.from(p.data));
    const reply = this.respond(UDP_ID.FASTBOOT, p.seq, 0);
    if (p.flags & UDP_FLAG_CONTINUATION) return { reply };
    const message = Buffer.concat(this.incoming);
    this.incoming = [];
    return { reply, message };
  }

  private poll(seq: number): DeviceStep {
    const head = this.outbox[0];
    if (head === undefined) {
      this.held = seq;
      return {};
    }
    const room = this.maxPacketSize - UDP_HEADER_SIZE;
    const part = head.subarray(0, room);
    const rest = head.subarray(part.length);
    if (rest.length > 0) this.outbox[0] = rest;
    else this.outbox.shift();
    return { reply: this.respond(UDP_ID.FASTBOOT, seq, rest.length > 0 ? UDP_FLAG_CONTINUATION : 0, part) };
  }

  private respond(id: number, seq: number, flags: number, data?: Uint8Array): Buffer {
    this.last = encodeUdpPacket({ id, flags, seq, data });
    this.expected = next(this.expected);
    return this.last;
  }

  private error(seq: number, message: string): Buffer {
    return encodeUdpPacket({ id: UDP_ID.ERROR, seq, data: Buffer.from(message, 'latin1') });
  }
}
