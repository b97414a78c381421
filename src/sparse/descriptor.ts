// A download payload described, not materialised: header bytes plus ranges of a
// source file. The transfer loop streams these from disk through a small buffer
// pool, so memory stays bounded whatever the image size.

export type Segment =
  /** Literal bytes: sparse headers, FILL patterns. Small. */
  | { kind: 'bytes'; data: Uint8Array }
  /** A range of the source file. */
  | { kind: 'file'; offset: number; length: number }
  /** Zero padding (e.g. a raw image's trailing partial block). */
  | { kind: 'zeros'; length: number };

export interface Payload {
  /** Total bytes; equals the sum of the segment lengths. */
  size: number;
  segments: Segment[];
}

/** An image ready to send: its source file and one payload per download. */
export interface PreparedImage {
  path: string;
  /** 'raw' = the file as is; 'sparse' = sparse pieces (resparsed or converted). */
  format: 'raw' | 'sparse';
  pieces: Payload[];
}

export function segmentLength(s: Segment): number {
  return s.kind === 'bytes' ? s.data.length : s.length;
}
