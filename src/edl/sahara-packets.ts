// Sahara packet layouts (all little-endian; `length` counts the whole packet).
// Shared by the host state machine and the emulated boot ROM.

export const SaharaCmd = {
  HELLO: 0x01,
  HELLO_RESP: 0x02,
  READ_DATA: 0x03,
  END_OF_IMAGE: 0x04,
  DONE: 0x05,
  DONE_RESP: 0x06,
  RESET: 0x07,
  RESET_RESP: 0x08,
  MEM_DEBUG: 0x09,
  CMD_READY: 0x0b,
  SWITCH_MODE: 0x0c,
  EXECUTE: 0x0d,
  EXECUTE_RESP: 0x0e,
  EXECUTE_DATA: 0x0f,
  MEM_DEBUG64: 0x10,
  READ_DATA64: 0x12,
} as const;

export const SaharaLength = {
  HELLO: 0x30,
  READ_DATA: 0x14,
  END_OF_IMAGE: 0x10,
  DONE: 0x08,
  DONE_RESP: 0x0c,
  RESET: 0x08,
  RESET_RESP: 0x08,
  SWITCH_MODE: 0x0c,
  EXECUTE: 0x0c,
  EXECUTE_RESP: 0x10,
  EXECUTE_DATA: 0x0c,
  READ_DATA64: 0x20,
} as const;

/** Command-mode client commands (edl.md §3.6). */
export const SaharaExec = { SERIAL_NUM_READ: 0x01, MSM_HW_ID_READ: 0x02 } as const;

export const SaharaMode = { IMAGE_TX_PENDING: 0, IMAGE_TX_COMPLETE: 1, MEMORY_DEBUG: 2, COMMAND: 3 } as const;

/** The Firehose programmer's image id (EHOSTDL). */
export const FIREHOSE_IMAGE_ID = 13;

/** END_OF_IMAGE status names (openpst / edl status_t; edl's own text table is off by one, so names only). */
const STATUS_NAMES: Record<number, string> = {
  0x00: 'SUCCESS', 0x01: 'NAK_INVALID_CMD', 0x02: 'NAK_PROTOCOL_MISMATCH', 0x03: 'NAK_INVALID_TARGET_PROTOCOL',
  0x04: 'NAK_INVALID_HOST_PROTOCOL', 0x05: 'NAK_INVALID_PACKET_SIZE', 0x06: 'NAK_UNEXPECTED_IMAGE_ID',
  0x07: 'NAK_INVALID_HEADER_SIZE', 0x08: 'NAK_INVALID_DATA_SIZE', 0x09: 'NAK_INVALID_IMAGE_TYPE',
  0x0a: 'NAK_INVALID_TX_LENGTH', 0x0b: 'NAK_INVALID_RX_LENGTH', 0x0c: 'NAK_GENERAL_TX_RX_ERROR',
  0x0d: 'NAK_READ_DATA_ERROR', 0x0e: 'NAK_UNSUPPORTED_NUM_PHDRS', 0x0f: 'NAK_INVALID_PDHR_SIZE',
  0x10: 'NAK_MULTIPLE_SHARED_SEG', 0x11: 'NAK_UNINIT_PHDR_LOC', 0x12: 'NAK_INVALID_DEST_ADDR',
  0x13: 'NAK_INVALID_IMG_HDR_DATA_SIZE', 0x14: 'NAK_INVALID_ELF_HDR', 0x15: 'NAK_UNKNOWN_HOST_ERROR',
  0x16: 'NAK_TIMEOUT_RX', 0x17: 'NAK_TIMEOUT_TX', 0x18: 'NAK_INVALID_HOST_MODE', 0x19: 'NAK_INVALID_MEMORY_READ',
  0x1a: 'NAK_INVALID_DATA_SIZE_REQUEST', 0x1b: 'NAK_MEMORY_DEBUG_NOT_SUPPORTED', 0x1c: 'NAK_INVALID_MODE_SWITCH',
  0x1d: 'NAK_CMD_EXEC_FAILURE', 0x1e: 'NAK_EXEC_CMD_INVALID_PARAM', 0x1f: 'NAK_EXEC_CMD_UNSUPPORTED',
  0x20: 'NAK_EXEC_DATA_INVALID_CLIENT_CMD', 0x21: 'NAK_HASH_TABLE_AUTH_FAILURE', 0x22: 'NAK_HASH_VERIFICATION_FAILURE',
  0x23: 'NAK_HASH_TABLE_NOT_FOUND', 0x24: 'NAK_TARGET_INIT_FAILURE', 0x25: 'NAK_IMAGE_AUTH_FAILURE',
  0x26: 'NAK_INVALID_IMG_HASH_TABLE_SIZE', 0x27: 'NAK_ENUMERATION_FAILURE', 0x28: 'NAK_HW_BULK_TRANSFER_ERROR',
};

export function saharaStatusName(status: number): string {
  return STATUS_NAMES[status] ?? `UNKNOWN_STATUS_0x${status.toString(16)}`;
}

/** True for the statuses that mean "this programmer is not signed for this phone". */
export function isAuthStatus(status: number): boolean {
  return status >= 0x20 && status <= 0x26;
}

export type SaharaPacket =
  | { cmd: 'hello'; version: number; compatible: number; maxLength: number; mode: number }
  | { cmd: 'hello-resp'; version: number; compatible: number; status: number; mode: number }
  | { cmd: 'read-data'; imageId: number; offset: number; length: number; wide: boolean }
  | { cmd: 'end-of-image'; imageId: number; status: number }
  | { cmd: 'done' }
  | { cmd: 'done-resp'; status: number }
  | { cmd: 'reset' }
  | { cmd: 'reset-resp' }
  | { cmd: 'switch-mode'; mode: number }
  | { cmd: 'cmd-ready' }
  | { cmd: 'execute'; clientCmd: number }
  | { cmd: 'execute-resp'; clientCmd: number; dataLength: number }
  | { cmd: 'execute-data'; clientCmd: number }
  | { cmd: 'other'; id: number; length: number };

function header(cmd: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt32LE(cmd, 0);
  b.writeUInt32LE(length, 4);
  return b;
}

export function encodeHello(p: { version?: number; compatible?: number; maxLength?: number; mode?: number } = {}): Buffer {
  const b = header(SaharaCmd.HELLO, SaharaLength.HELLO);
  b.writeUInt32LE(p.version ?? 2, 8);
  b.writeUInt32LE(p.compatible ?? 1, 12);
  b.writeUInt32LE(p.maxLength ?? 0x400, 16);
  b.writeUInt32LE(p.mode ?? SaharaMode.IMAGE_TX_PENDING, 20);
  return b;
}

export function encodeHelloResp(p: { version?: number; compatible?: number; status?: number; mode?: number } = {}): Buffer {
  const b = header(SaharaCmd.HELLO_RESP, SaharaLength.HELLO);
  b.writeUInt32LE(p.version ?? 2, 8);
  b.writeUInt32LE(p.compatible ?? 1, 12);
  b.writeUInt32LE(p.status ?? 0, 16);
  b.writeUInt32LE(p.mode ?? SaharaMode.IMAGE_TX_PENDING, 20);
  return b;
}

export function encodeReadData(imageId: number, offset: number, length: number): Buffer {
  const b = header(SaharaCmd.READ_DATA, SaharaLength.READ_DATA);
  b.writeUInt32LE(imageId, 8);
  b.writeUInt32LE(offset, 12);
  b.writeUInt32LE(length, 16);
  return b;
}

export function encodeReadData64(imageId: number, offset: number, length: number): Buffer {
  const b = header(SaharaCmd.READ_DATA64, SaharaLength.READ_DATA64);
  b.writeBigUInt64LE(BigInt(imageId), 8);
  b.writeBigUInt64LE(BigInt(offset), 16);
  b.writeBigUInt64LE(BigInt(length), 24);
  return b;
}

export function encodeEndOfImage(imageId: number, status: number): Buffer {
  const b = header(SaharaCmd.END_OF_IMAGE, SaharaLength.END_OF_IMAGE);
  b.writeUInt32LE(imageId, 8);
  b.writeUInt32LE(status, 12);
  return b;
}

export const encodeDone = (): Buffer => header(SaharaCmd.DONE, SaharaLength.DONE);
export const encodeReset = (): Buffer => header(SaharaCmd.RESET, SaharaLength.RESET);
export const encodeResetResp = (): Buffer => header(SaharaCmd.RESET_RESP, SaharaLength.RESET_RESP);

export function encodeDoneResp(status: number): Buffer {
  const b = header(SaharaCmd.DONE_RESP, SaharaLength.DONE_RESP);
  b.writeUInt32LE(status, 8);
  return b;
}

export function encodeSwitchMode(mode: number): Buffer {
  const b = header(SaharaCmd.SWITCH_MODE, SaharaLength.SWITCH_MODE);
  b.writeUInt32LE(mode, 8);
  return b;
}

function clientPacket(cmd: number, clientCmd: number): Buffer {
  const b = header(cmd, 0x0c);
  b.writeUInt32LE(clientCmd, 8);
  return b;
}

export const encodeExecute = (clientCmd: number): Buffer => clientPacket(SaharaCmd.EXECUTE, clientCmd);
export const encodeExecuteData = (clientCmd: number): Buffer => clientPacket(SaharaCmd.EXECUTE_DATA, clientCmd);
/** CMD_READY as openpst models it (header + a status word; qdl/edl accept any length >= 8). */
export const encodeCmdReady = (): Buffer => header(SaharaCmd.CMD_READY, 0x0c);

export function encodeExecuteResp(clientCmd: number, dataLength: number): Buffer {
  const b = header(SaharaCmd.EXECUTE_RESP, SaharaLength.EXECUTE_RESP);
  b.writeUInt32LE(clientCmd, 8);
  b.writeUInt32LE(dataLength, 12);
  return b;
}

/** Decode one packet; throws a plain Error describing the problem (callers wrap it). */
export function decodeSaharaPacket(buf: Uint8Array): SaharaPacket {
  if (buf.length < 8) throw new Error(`packet of ${buf.length} bytes is shorter than the 8-byte Sahara header`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = b.readUInt32LE(0);
  const length = b.readUInt32LE(4);
  if (length !== b.length) throw new Error(`command 0x${id.toString(16)}: length field says ${length} bytes, packet has ${b.length}`);
  const need = (n: number, name: string): void => {
    if (length !== n) throw new Error(`${name}: expected length 0x${n.toString(16)}, found 0x${length.toString(16)}`);
  };
  switch (id) {
    case SaharaCmd.HELLO:
      need(SaharaLength.HELLO, 'HELLO');
      return { cmd: 'hello', version: b.readUInt32LE(8), compatible: b.readUInt32LE(12), maxLength: b.readUInt32LE(16), mode: b.readUInt32LE(20) };
    case SaharaCmd.HELLO_RESP:
      need(SaharaLength.HELLO, 'HELLO_RESP');
      return { cmd: 'hello-resp', version: b.readUInt32LE(8), compatible: b.readUInt32LE(12), status: b.readUInt32LE(16), mode: b.readUInt32LE(20) };
    case SaharaCmd.READ_DATA:
      need(SaharaLength.READ_DATA, 'READ_DATA');
      return { cmd: 'read-data', imageId: b.readUInt32LE(8), offset: b.readUInt32LE(12), length: b.readUInt32LE(16), wide: false };
    case SaharaCmd.READ_DATA64: {
      need(SaharaLength.READ_DATA64, 'READ_DATA64');
      const big = (o: number): number => {
        const v = b.readBigUInt64LE(o);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`READ_DATA64: field at 0x${o.toString(16)} = ${v} is too large`);
        return Number(v);
      };
      return { cmd: 'read-data', imageId: big(8), offset: big(16), length: big(24), wide: true };
    }
    case SaharaCmd.END_OF_IMAGE:
      need(SaharaLength.END_OF_IMAGE, 'END_OF_IMAGE');
      return { cmd: 'end-of-image', imageId: b.readUInt32LE(8), status: b.readUInt32LE(12) };
    case SaharaCmd.DONE:
      need(SaharaLength.DONE, 'DONE');
      return { cmd: 'done' };
    case SaharaCmd.DONE_RESP:
      need(SaharaLength.DONE_RESP, 'DONE_RESP');
      return { cmd: 'done-resp', status: b.readUInt32LE(8) };
    case SaharaCmd.RESET:
      need(SaharaLength.RESET, 'RESET');
      return { cmd: 'reset' };
    case SaharaCmd.RESET_RESP:
      need(SaharaLength.RESET_RESP, 'RESET_RESP');
      return { cmd: 'reset-resp' };
    case SaharaCmd.SWITCH_MODE:
      need(SaharaLength.SWITCH_MODE, 'SWITCH_MODE');
      return { cmd: 'switch-mode', mode: b.readUInt32LE(8) };
    case SaharaCmd.CMD_READY:
      return { cmd: 'cmd-ready' };
    case SaharaCmd.EXECUTE:
      need(SaharaLength.EXECUTE, 'EXECUTE');
      return { cmd: 'execute', clientCmd: b.readUInt32LE(8) };
    case SaharaCmd.EXECUTE_RESP:
      need(SaharaLength.EXECUTE_RESP, 'EXECUTE_RESP');
      return { cmd: 'execute-resp', clientCmd: b.readUInt32LE(8), dataLength: b.readUInt32LE(12) };
    case SaharaCmd.EXECUTE_DATA:
      need(SaharaLength.EXECUTE_DATA, 'EXECUTE_DATA');
      return { cmd: 'execute-data', clientCmd: b.readUInt32LE(8) };
    default:
      return { cmd: 'other', id, length };
  }
}
