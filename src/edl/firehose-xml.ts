// Firehose framing. Host -> target: one XML document per command
// (<?xml ...?><data><TAG .../></data>). Target -> host: a stream of documents
// holding <log value=".."/> and <response value="ACK|NAK" .../>; after a
// response with rawmode="true" the bytes that follow are raw data, not XML.
// FirehoseReader is byte-fed: it splits documents at "<?xml" / "</data>",
// tolerates several documents (or a document plus raw bytes) in one read and
// keeps raw bytes aside for the caller.
import { XMLParser } from 'fast-xml-parser';

export type AttrValue = string | number | boolean | bigint | undefined;

function escapeAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One command document. Attributes with value undefined are omitted. */
export function buildCommand(tag: string, attrs: Record<string, AttrValue> = {}): Buffer {
  if (!/^[A-Za-z_][\w.-]*$/.test(tag)) throw new RangeError(`bad Firehose tag ${JSON.stringify(tag)}`);
  const parts = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}="${escapeAttr(String(v))}"`);
  return Buffer.from(`<?xml version="1.0" ?><data><${tag}${parts.length ? ' ' + parts.join(' ') : ''} /></data>`, 'utf8');
}

export interface FirehoseResponse {
  ack: boolean;
  /** Verbatim value attribute ("ACK" / "NAK"). */
  value: string;
  /** true / false when the attribute is present. */
  rawmode: boolean | undefined;
  attrs: Record<string, string>;
}

export type FirehoseEvent =
  | { type: 'log'; text: string }
  | { type: 'response'; response: FirehoseResponse }
  /** Something that is not a Firehose document (kept for diagnostics, never fatal by itself). */
  | { type: 'junk'; text: string };

const XML_START = Buffer.from('<?xml');
const DATA_END = Buffer.from('</data>');
const JUNK = Buffer.from([0xf0, 0xe9, 0x88, 0x14]);

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  processEntities: true,
});

export class FirehoseReader {
  private buf: Buffer = Buffer.alloc(0);
  private raw = false;
  private readonly events: FirehoseEvent[] = [];

  /** Add bytes read from the device. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.buf = this.buf.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.buf, bytes]);
  }

  /** True after a rawmode="true" response, until resumeXml(). */
  get inRawMode(): boolean {
    return this.raw;
  }

  /** Bytes held (XML not yet complete, or raw bytes that arrived with a response). */
  get buffered(): number {
    return this.buf.length;
  }

  /** Next complete event, or undefined when more bytes are needed (or in raw mode). */
  next(): FirehoseEvent | undefined {
    for (;;) {
      const e = this.events.shift();
      if (e) return e;
      if (this.raw || !this.parseOne()) return undefined;
    }
  }

  /** In raw mode: take up to `max` buffered raw bytes. */
  takeRaw(max: number): Buffer {
    const n = Math.min(max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Leave raw mode: what is buffered now is XML again. */
  resumeXml(): void {
    this.raw = false;
  }

  /** Parse one document from the buffer into events; false when incomplete. */
  private parseOne(): boolean {
    this.dropJunkMarkers();
    const start = this.buf.indexOf(XML_START);
    if (start < 0) {
      // Keep a possible partial "<?xml" at the end; anything before it that is not blank is junk.
      const keep = Math.min(this.buf.length, XML_START.length - 1);
      const head = this.buf.subarray(0, this.buf.length - keep).toString('latin1');
      if (head.trim() !== '') this.events.push({ type: 'junk', text: head });
      this.buf = this.buf.subarray(this.buf.length - keep);
      return this.events.length > 0;
    }
    if (start > 0) {
      const head = this.buf.subarray(0, start).toString('latin1');
      if (head.trim() !== '') this.events.push({ type: 'junk', text: head });
    }
    const end = this.buf.indexOf(DATA_END, start);
    if (end < 0) {
      this.buf = this.buf.subarray(start);
      return this.events.length > 0;
    }
    const docEnd = end + DATA_END.length;
    const doc = this.buf.subarray(start, docEnd).toString('utf8');
    this.buf = this.buf.subarray(docEnd);
    for (const e of parseDocument(doc)) {
      this.events.push(e);
      if (e.type === 'response' && e.response.rawmode === true) {
        this.raw = true;
        break;
      }
    }
    // Newlines between documents are not data, but after rawmode=true every byte is data.
    if (!this.raw) this.buf = trimLeadingBlank(this.buf);
    return true;
  }

  private dropJunkMarkers(): void {
    for (let i = this.buf.indexOf(JUNK); i >= 0; i = this.buf.indexOf(JUNK)) {
      this.buf = Buffer.concat([this.buf.subarray(0, i), this.buf.subarray(i + JUNK.length)]);
    }
  }
}

function trimLeadingBlank(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && (b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x20 || b[i] === 0x09 || b[i] === 0)) i++;
  return b.subarray(i);
}

type Node = Record<string, unknown> & { ':@'?: Record<string, string> };

/** Events of one document, in order. Falls back to a tolerant scan when the XML is not well-formed. */
export function parseDocument(doc: string): FirehoseEvent[] {
  let nodes: Node[];
  try {
    nodes = parser.parse(doc) as Node[];
  } catch {
    return scanLoose(doc);
  }
  const data = nodes.find((n) => 'data' in n);
  if (!data) return [{ type: 'junk', text: doc }];
  const out: FirehoseEvent[] = [];
  for (const child of data.data as Node[]) {
    const tag = Object.keys(child).find((k) => k !== ':@');
    const attrs = child[':@'] ?? {};
    if (tag === 'log') out.push({ type: 'log', text: attrs.value ?? '' });
    else if (tag === 'response') out.push({ type: 'response', response: toResponse(attrs) });
    else if (tag && tag !== '#text') out.push({ type: 'log', text: `<${tag}> ${JSON.stringify(attrs)}` });
  }
  return out;
}

function toResponse(attrs: Record<string, string>): FirehoseResponse {
  const value = attrs.value ?? '';
  const rm = attrs.rawmode?.toLowerCase();
  return { ack: value.toUpperCase() === 'ACK', value, rawmode: rm === undefined ? undefined : rm === 'true', attrs };
}

/** Regex scan for log/response elements of a document the XML parser rejected (stray '<' or '&' in a log). */
function scanLoose(doc: string): FirehoseEvent[] {
  const out: FirehoseEvent[] = [];
  const re = /<(log|response)\b([^>]*?)\/?>/g;
  for (let m = re.exec(doc); m; m = re.exec(doc)) {
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([\w.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]!] = a[2] ?? a[3] ?? '';
    out.push(m[1] === 'log' ? { type: 'log', text: attrs.value ?? '' } : { type: 'response', response: toResponse(attrs) });
  }
  return out.length > 0 ? out : [{ type: 'junk', text: doc }];
}
