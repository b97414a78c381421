// Fastboot-over-TCP framing (AOSP fastboot/README.md "TCP Protocol"):
// both sides first exchange "FB" + two-digit version ("FB01"), then every
// packet travels as an 8-byte big-endian length followed by the payload.
//
// FrameDecoder is a byte-fed state machine. It hands out frame data as
// zero-copy slices of the pushed chunks, so a device can consume a large data
// frame piece by piece without ever holding it whole.

export const FRAME_HEADER_SIZE = 8;
export const HANDSHAKE_SIZE = 4;
export const PROTOCOL_VERSION = 1;
/** Largest frame the decoder accepts unless told otherwise (a download is at most 4 GiB - 1). */
export const DEFAULT_MAX_FRAME = 0xffff_ffff;

export class FramingError extends Error {}

/** "FB01" (or another two-digit version). */
export function encodeHandshake(version = PROTOCOL_VERSION): Buffer {
  if (!Number.isInteger(version) || version < 1 || version > 99) throw new RangeError(`bad fastboot TCP version ${version}`);
  return Buffer.from(`FB${String(version).padStart(2, '0')}`, 'ascii');
}

/** Parse the peer's 4-byte handshake; returns its protocol version. */
export function parseHandshake(bytes: Uint8Array): number {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const m = /^FB(\d\d)$/.exec(text);
  if (!m) throw new FramingError(`bad fastboot TCP handshake: expected "FB" + 2 digits, received ${JSON.stringify(text)}`);
  const version = Number(m[1]);
  if (version < 1) throw new FramingError(`bad fastboot TCP handshake: version ${m[1]} is not supported`);
  return version;
}

export function encodeFrameHeader(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad frame length ${length}`);
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeBigUInt64BE(BigInt(length), 0);
  return header;
}

/** Header and payload as two buffers, for a scatter write without copying the payload. */
export function encodeFrameParts(payload: Uint8Array): [Buffer, Uint8Array] {
  return [encodeFrameHeader(payload.length), payload];
}

/** One contiguous buffer (copies the payload; use for small packets). */
export function encodeFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  out.writeBigUInt64BE(BigInt(payload.length), 0);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

/** A slice of one frame. A frame arrives as one or more pieces, in order. */
export interface FramePiece {
  /** Bytes of the frame payload (a view into a pushed chunk; may be empty for a 0-length frame). */
  data: Buffer;
  /** Total payload length of the frame this piece belongs to. */
  frameLength: number;
  /** Offset of `data` within the frame payload. */
  offset: number;
  /** True when this piece completes the frame. */
  end: boolean;
}

export interface FrameDecoderOptions {
  /** Expect a 4-byte "FBxx" handshake before the first frame. */
  handshake?: boolean;
  maxFrameLength?: number;
}

type State = 'handshake' | 'header' | 'payload';

export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private chunkOffset = 0; // read position in chunks[0]
  private bufferedBytes = 0;
  private state: State;
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headFill = 0;
  private frameLength = 0;
  private frameOffset = 0;
  private readonly maxFrameLength: number;
  /** The peer's protocol version once its handshake arrived. */
  peerVersion: number | undefined;

  constructor(opts: FrameDecoderOptions = {}) {
    this.state = opts.handshake ? 'handshake' : 'header';
    this.maxFrameLength = opts.maxFrameLength ?? DEFAULT_MAX_FRAME;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /** Bytes pushed but not yet handed out. */
  get buffered(): number {
    return this.bufferedBytes;
  }

  /** True once the handshake (if any) has been consumed. */
  get handshakeDone(): boolean {
    return this.state !== 'handshake';
  }

  /** Bytes of the current frame not yet handed out (0 between frames). */
  get frameRemaining(): number {
    return this.state === 'payload' ? this.frameLength - this.frameOffset : 0;
  }

  /** Consume the handshake if enough bytes arrived; true once it is done. Throws FramingError. */
  pollHandshake(): boolean {
    if (this.state !== 'handshake') return true;
    if (!this.fillHead(HANDSHAKE_SIZE)) return false;
    this.headFill = 0;
    this.peerVersion = parseHandshake(this.head.subarray(0, HANDSHAKE_SIZE));
    this.state = 'header';
    return true;
  }

  /**
   * Next piece of frame data, at most `max` bytes, or undefined when more input
   * is needed. Throws FramingError on a bad handshake or an oversized frame.
   */
  next(max = Number.MAX_SAFE_INTEGER): FramePiece | undefined {
    if (this.state === 'handshake' && !this.pollHandshake()) return undefined;
    if (this.state === 'header') {
      if (!this.fillHead(FRAME_HEADER_SIZE)) return undefined;
      this.headFill = 0;
      const length = this.head.readBigUInt64BE(0);
      if (length > BigInt(this.maxFrameLength)) {
        throw new FramingError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameLength} bytes`);
      }
      this.frameLength = Number(length);
      this.frameOffset = 0;
      if (this.frameLength === 0) return { data: Buffer.alloc(0), frameLength: 0, offset: 0, end: true };
      this.state = 'payload';
    }
    if (this.bufferedBytes === 0) return undefined;
    const chunk = this.chunks[0]!;
    const take = Math.min(chunk.length - this.chunkOffset, this.frameLength - this.frameOffset, Math.max(1, max));
    const data = chunk.subarray(this.chunkOffset, this.chunkOffset + take);
    this.consume(take);
    const offset = this.frameOffset;
    this.frameOffset += take;
    const end = this.frameOffset === this.frameLength;
    if (end) this.state = 'header';
    return { data, frameLength: this.frameLength, offset, end };
  }

  /** Copy header/handshake bytes (which may straddle chunks) into `head`. */
  private fillHead(want: number): boolean {
    while (this.headFill < want && this.bufferedBytes > 0) {
      const chunk = this.chunks[0]!;
      const take = Math.min(want - this.headFill, chunk.length - this.chunkOffset);
      chunk.copy(this.head, this.headFill, this.chunkOffset, this.chunkOffset + take);
      this.headFill += take;
      this.consume(take);
    }
    return this.headFill === want;
  }

  private consume(n: number): void {
    this.chunkOffset += n;
    this.bufferedBytes -= n;
    if (this.chunkOffset === this.chunks[0]!.length) {
      this.chunks.shift();
      this.chunkOffset = 0;
    }
  }
}
