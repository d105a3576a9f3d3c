import { Buffer } from 'node:buffer';

/*
 * The FastCGI protocol (FastCGI Specification 1.0), as nginx's fastcgi module
 * speaks it: a pure codec with no I/O and no project imports.
 *
 * Requests (the client side): BEGIN_REQUEST, PARAMS records and their empty
 * terminator, STDIN records and their empty terminator. Like nginx, every
 * record is padded so that its content plus padding is a multiple of 8.
 *
 * Replies: RecordParser splits the STDOUT / STDERR / END_REQUEST stream into
 * events without copying data (every data event is a subarray of a chunk that
 * was fed), resumable at any byte; CgiHeaderParser reads the CGI response
 * header at the head of the STDOUT stream.
 *
 * Strings are byte strings: one char is one byte ('latin1'), as everywhere in
 * redis2d.
 */

export const FCGI_VERSION_1 = 1;
export const FCGI_HEADER_LEN = 8;

/* record types */
export const FCGI_BEGIN_REQUEST = 1;
export const FCGI_ABORT_REQUEST = 2;
export const FCGI_END_REQUEST = 3;
export const FCGI_PARAMS = 4;
export const FCGI_STDIN = 5;
export const FCGI_STDOUT = 6;
export const FCGI_STDERR = 7;
export const FCGI_DATA = 8;
export const FCGI_GET_VALUES = 9;
export const FCGI_GET_VALUES_RESULT = 10;
export const FCGI_UNKNOWN_TYPE = 11;

/* BEGIN_REQUEST roles and flags */
export const FCGI_RESPONDER = 1;
export const FCGI_AUTHORIZER = 2;
export const FCGI_FILTER = 3;
export const FCGI_KEEP_CONN = 1;

/* END_REQUEST protocol status */
export const FCGI_REQUEST_COMPLETE = 0;
export const FCGI_CANT_MPX_CONN = 1;
export const FCGI_OVERLOADED = 2;
export const FCGI_UNKNOWN_ROLE = 3;

/** the largest content of one record (a 16-bit length) */
export const FCGI_MAX_CONTENT = 65535;
/**
 * The largest PARAMS record content encodeParams writes: a multiple of 8, so
 * the record needs no padding. php-fpm refuses a PARAMS record whose content
 * plus padding exceeds 65535, and decodes each PARAMS record on its own, so
 * encodeParams also packs whole pairs into a record whenever they fit.
 */
export const FCGI_PARAMS_RECORD_MAX = 65528;
/** nginx sends a request body in STDIN records of at most 32 KiB */
export const FCGI_STDIN_RECORD_MAX = 32768;

export type Bytes = Buffer | string;
export type ParamPair = [Bytes, Bytes];

const ZEROS = Buffer.alloc(8);

function bytes(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
}

/** padding after `len` content bytes, to a multiple of 8 (nginx pads every record) */
export function paddingFor(len: number): number {
  return (8 - (len & 7)) & 7;
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff) throw new RangeError(`FastCGI request id out of range: ${id}`);
}

function writeHeader(buf: Buffer, at: number, type: number, id: number, len: number, padding: number): void {
  buf[at] = FCGI_VERSION_1;
  buf[at + 1] = type;
  buf[at + 2] = (id >> 8) & 0xff;
  buf[at + 3] = id & 0xff;
  buf[at + 4] = (len >> 8) & 0xff;
  buf[at + 5] = len & 0xff;
  buf[at + 6] = padding;
  buf[at + 7] = 0;
}

/** the 8-byte header of one record */
export function recordHeader(type: number, id: number, contentLength: number, paddingLength: number): Buffer {
  checkId(id);
  if (contentLength < 0 || contentLength > FCGI_MAX_CONTENT) throw new RangeError(`FastCGI record content too long: ${contentLength}`);
  if (paddingLength < 0 || paddingLength > 255) throw new RangeError(`FastCGI record padding out of range: ${paddingLength}`);
  const h = Buffer.allocUnsafe(FCGI_HEADER_LEN);
  writeHeader(h, 0, type, id, contentLength, paddingLength);
  return h;
}

/** one record with `content` (at most 65535 bytes), padded to a multiple of 8, in one buffer */
export function encodeRecord(type: number, id: number, content: Bytes = ''): Buffer {
  const c = bytes(content);
  checkId(id);
  if (c.length > FCGI_MAX_CONTENT) throw new RangeError(`FastCGI record content too long: ${c.length}`);
  const pad = paddingFor(c.length);
  const out = Buffer.allocUnsafe(FCGI_HEADER_LEN + c.length + pad);
  writeHeader(out, 0, type, id, c.length, pad);
  c.copy(out, FCGI_HEADER_LEN);
  out.fill(0, FCGI_HEADER_LEN + c.length);
  return out;
}

/** BEGIN_REQUEST: role (responder by default) and the FCGI_KEEP_CONN flag */
export function encodeBeginRequest(id: number, keepConn: boolean, role: number = FCGI_RESPONDER): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(role, 0);
  body[2] = keepConn ? FCGI_KEEP_CONN : 0;
  return encodeRecord(FCGI_BEGIN_REQUEST, id, body);
}

export function encodeAbortRequest(id: number): Buffer {
  return encodeRecord(FCGI_ABORT_REQUEST, id);
}

/** the bytes a name or value length takes: 1 below 128, else 4 */
function lengthSize(len: number): number {
  return len > 127 ? 4 : 1;
}

function writeLength(buf: Buffer, at: number, len: number): number {
  if (len > 127) {
    if (len > 0x7fffffff) throw new RangeError(`FastCGI name or value too long: ${len}`);
    buf.writeUInt32BE((len | 0x80000000) >>> 0, at);
    return at + 4;
  }
  buf[at] = len;
  return at + 1;
}

/** the encoded size of one name-value pair */
export function pairLength(name: Bytes, value: Bytes): number {
  const n = name.length; // a byte string has one char per byte
  const v = value.length;
  return lengthSize(n) + lengthSize(v) + n + v;
}

/**
 * The size of all pairs encoded back to back: what nginx puts in its single
 * PARAMS record (nginx refuses more than 65535 with "fastcgi request record
 * is too big: N"; encodeParams splits instead).
 */
export function paramsLength(pairs: readonly ParamPair[]): number {
  let len = 0;
  for (const [n, v] of pairs) len += pairLength(n, v);
  return len;
}

/** one name-value pair: lengths (1 or 4 bytes each), name, value */
export function encodePair(name: Bytes, value: Bytes): Buffer {
  const n = bytes(name);
  const v = bytes(value);
  const out = Buffer.allocUnsafe(lengthSize(n.length) + lengthSize(v.length) + n.length + v.length);
  let at = writeLength(out, 0, n.length);
  at = writeLength(out, at, v.length);
  at += n.copy(out, at);
  v.copy(out, at);
  return out;
}

/**
 * PARAMS records carrying `pairs` (without the empty terminator, see
 * encodeParamsEnd), in one buffer. Pairs are packed into records of at most
 * FCGI_PARAMS_RECORD_MAX content bytes, a pair starting a new record when it
 * does not fit in the current one; only a pair bigger than a whole record is
 * split across records, filling the current one first (legal FastCGI,
 * which php-fpm does not accept).
 * No pairs, no records.
 */
export function encodeParams(id: number, pairs: readonly ParamPair[], recordMax: number = FCGI_PARAMS_RECORD_MAX): Buffer {
  checkId(id);
  if (!Number.isInteger(recordMax) || recordMax < 8 || recordMax > FCGI_MAX_CONTENT) throw new RangeError(`bad PARAMS record size: ${recordMax}`);
  const encoded = pairs.map(([n, v]) => encodePair(n, v));
  /* plan the records: content lengths */
  const records: number[] = [];
  let cur = 0;
  for (const p of encoded) {
    let len = p.length;
    if (cur > 0 && cur + len > recordMax && len <= recordMax) {
      records.push(cur);
      cur = 0;
    }
    while (cur + len > recordMax) {
      const take = recordMax - cur;
      records.push(recordMax);
      len -= take;
      cur = 0;
    }
    cur += len;
  }
  if (cur > 0) records.push(cur);
  let total = 0;
  for (const r of records) total += FCGI_HEADER_LEN + r + paddingFor(r);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  let pi = 0; // pair index
  let po = 0; // offset inside that pair
  for (const r of records) {
    const pad = paddingFor(r);
    writeHeader(out, at, FCGI_PARAMS, id, r, pad);
    at += FCGI_HEADER_LEN;
    let left = r;
    while (left > 0) {
      const p = encoded[pi]!;
      const n = Math.min(left, p.length - po);
      p.copy(out, at, po, po + n);
      at += n;
      left -= n;
      po += n;
      if (po === p.length) {
        pi++;
        po = 0;
      }
    }
    out.fill(0, at, at + pad);
    at += pad;
  }
  return out;
}

/** the empty PARAMS record that ends the parameters */
export function encodeParamsEnd(id: number): Buffer {
  return encodeRecord(FCGI_PARAMS, id);
}

/**
 * Records of `type` carrying `data`, split into records of at most
 * `recordMax` content bytes, as buffers to write in order (header, a subarray
 * of `data`, padding...): the data is not copied. Empty data gives no records
 * (an empty record would end the stream: see encodeStreamEnd).
 */
export function encodeStream(type: number, id: number, data: Bytes, recordMax: number = FCGI_STDIN_RECORD_MAX): Buffer[] {
  checkId(id);
  if (!Number.isInteger(recordMax) || recordMax < 1 || recordMax > FCGI_MAX_CONTENT) throw new RangeError(`bad record size: ${recordMax}`);
  const d = bytes(data);
  const out: Buffer[] = [];
  for (let at = 0; at < d.length; at += recordMax) {
    const len = Math.min(recordMax, d.length - at);
    const pad = paddingFor(len);
    out.push(recordHeader(type, id, len, pad), d.subarray(at, at + len));
    if (pad) out.push(ZEROS.subarray(0, pad));
  }
  return out;
}

/** STDIN records for a piece of the request body, nginx's 32 KiB at most each (see encodeStream) */
export function encodeStdin(id: number, chunk: Bytes, recordMax: number = FCGI_STDIN_RECORD_MAX): Buffer[] {
  return encodeStream(FCGI_STDIN, id, chunk, recordMax);
}

/** the empty record that ends a stream (STDIN, STDOUT, STDERR, DATA) */
export function encodeStreamEnd(type: number, id: number): Buffer {
  return encodeRecord(type, id);
}

/** the empty STDIN record that ends the request body */
export function encodeStdinEnd(id: number): Buffer {
  return encodeRecord(FCGI_STDIN, id);
}

/** END_REQUEST (the application side; for test backends) */
export function encodeEndRequest(id: number, appStatus: number, protocolStatus: number = FCGI_REQUEST_COMPLETE): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(appStatus >>> 0, 0);
  body[4] = protocolStatus;
  return encodeRecord(FCGI_END_REQUEST, id, body);
}

/* ------------------------------------------------------------------ */
/* Decoding, the application side (test backends, round trips)         */

export interface FcgiRecord {
  version: number;
  type: number;
  requestId: number;
  /** a subarray of the input */
  content: Buffer;
  paddingLength: number;
}

/**
 * Split a complete byte stream into records (no checks beyond framing).
 * Returns the records and the offset of the first byte not part of a
 * complete record.
 */
export function splitRecords(buf: Buffer): { records: FcgiRecord[]; rest: number } {
  const records: FcgiRecord[] = [];
  let at = 0;
  while (buf.length - at >= FCGI_HEADER_LEN) {
    const len = (buf[at + 4]! << 8) | buf[at + 5]!;
    const pad = buf[at + 6]!;
    const end = at + FCGI_HEADER_LEN + len + pad;
    if (end > buf.length) break;
    records.push({
      version: buf[at]!,
      type: buf[at + 1]!,
      requestId: (buf[at + 2]! << 8) | buf[at + 3]!,
      content: buf.subarray(at + FCGI_HEADER_LEN, at + FCGI_HEADER_LEN + len),
      paddingLength: pad,
    });
    at = end;
  }
  return { records, rest: at };
}

/**
 * Decode a complete name-value pair stream (the concatenated content of the
 * PARAMS records). Names and values are subarrays of `buf`. Throws on a
 * truncated pair.
 */
export function decodeParams(buf: Buffer): Array<[Buffer, Buffer]> {
  const out: Array<[Buffer, Buffer]> = [];
  let at = 0;
  const readLen = (): number => {
    if (at >= buf.length) throw new Error('truncated FastCGI name-value pair');
    const b = buf[at]!;
    if (b < 128) {
      at += 1;
      return b;
    }
    if (at + 4 > buf.length) throw new Error('truncated FastCGI name-value pair length');
    const len = buf.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return len;
  };
  while (at < buf.length) {
    const nl = readLen();
    const vl = readLen();
    if (at + nl + vl > buf.length) throw new Error('truncated FastCGI name-value pair');
    out.push([buf.subarray(at, at + nl), buf.subarray(at + nl, at + nl + vl)]);
    at += nl + vl;
  }
  return out;
}

/* ------------------------------------------------------------------ */
/* The reply stream, the web server side                              */

export type RecordEvent =
  /** STDOUT content: a subarray of the chunk fed (never empty) */
  | { type: 'stdout'; data: Buffer }
  /** an empty STDOUT record: the application closed its stdout */
  | { type: 'stdout-end' }
  /** STDERR content: a subarray of the chunk fed (never empty) */
  | { type: 'stderr'; data: Buffer }
  /** END_REQUEST, its content and padding read */
  | { type: 'end'; appStatus: number; protocolStatus: number }
  /** bytes after END_REQUEST (a subarray of the chunk fed) */
  | { type: 'trailing'; data: Buffer }
  /** a protocol error, in nginx's words; the parser stops */
  | { type: 'error'; message: string };

const enum St {
  Header,
  Content,
  Padding,
  Done,
  Failed,
}

/**
 * The reply stream of one request, parsed as nginx's
 * ngx_http_fastcgi_process_record does: version 1, the types nginx accepts
 * (STDOUT, STDERR, END_REQUEST; anything else is an invalid record type) and
 * the request id nginx sent (1 by default), each byte checked as it arrives.
 * Feed it chunks split anywhere; each call returns the events that chunk
 * completed.
 */
export class RecordParser {
  private st: St = St.Header;
  private hdrGot = 0;
  private type = 0;
  private lenHi = 0;
  private length = 0;
  private padding = 0;
  private left = 0;
  private readonly endBody = Buffer.alloc(8);
  private endGot = 0;

  constructor(private readonly requestId: number = 1) {
    checkId(requestId);
  }

  /** END_REQUEST has been read (with its padding) */
  get ended(): boolean {
    return this.st === St.Done;
  }

  get failed(): boolean {
    return this.st === St.Failed;
  }

  /** the bytes seen so far end exactly at a record boundary */
  get atBoundary(): boolean {
    return this.st === St.Done || (this.st === St.Header && this.hdrGot === 0);
  }

  feed(chunk: Buffer): RecordEvent[] {
    const out: RecordEvent[] = [];
    const n = chunk.length;
    let i = 0;
    /* every turn consumes at least one byte, or leaves the loop */
    while (i < n) {
      switch (this.st) {
        case St.Header: {
          const ch = chunk[i++]!;
          const err = this.headerByte(ch);
          if (err !== undefined) {
            this.st = St.Failed;
            out.push({ type: 'error', message: err });
            return out;
          }
          if (this.hdrGot === FCGI_HEADER_LEN) this.recordStart(out);
          break;
        }
        case St.Content: {
          const take = Math.min(this.left, n - i);
          const data = chunk.subarray(i, i + take);
          i += take;
          this.left -= take;
          if (this.type === FCGI_STDOUT) out.push({ type: 'stdout', data });
          else if (this.type === FCGI_STDERR) out.push({ type: 'stderr', data });
          else {
            const room = Math.min(8 - this.endGot, data.length);
            data.copy(this.endBody, this.endGot, 0, room);
            this.endGot += room;
          }
          if (this.left === 0) this.contentDone(out);
          break;
        }
        case St.Padding: {
          const take = Math.min(this.left, n - i);
          i += take;
          this.left -= take;
          if (this.left === 0) this.recordDone(out);
          break;
        }
        case St.Done:
          out.push({ type: 'trailing', data: chunk.subarray(i) });
          return out;
        case St.Failed:
          return out;
      }
    }
    return out;
  }

  /** take one header byte; an error message if nginx would refuse it */
  private headerByte(ch: number): string | undefined {
    switch (this.hdrGot++) {
      case 0:
        if (ch !== FCGI_VERSION_1) return `upstream sent unsupported FastCGI protocol version: ${ch}`;
        return undefined;
      case 1:
        if (ch !== FCGI_STDOUT && ch !== FCGI_STDERR && ch !== FCGI_END_REQUEST) return `upstream sent invalid FastCGI record type: ${ch}`;
        this.type = ch;
        return undefined;
      case 2:
        if (ch !== this.requestId >> 8) return `upstream sent unexpected FastCGI request id high byte: ${ch}`;
        return undefined;
      case 3:
        if (ch !== (this.requestId & 0xff)) return `upstream sent unexpected FastCGI request id low byte: ${ch}`;
        return undefined;
      case 4:
        this.lenHi = ch;
        return undefined;
      case 5:
        this.length = (this.lenHi << 8) | ch;
        return undefined;
      case 6:
        this.padding = ch;
        return undefined;
      default:
        return undefined; // reserved
    }
  }

  private recordStart(out: RecordEvent[]): void {
    this.hdrGot = 0;
    if (this.type === FCGI_END_REQUEST) {
      this.endGot = 0;
      this.endBody.fill(0);
    }
    if (this.length > 0) {
      this.st = St.Content;
      this.left = this.length;
      return;
    }
    this.contentDone(out);
  }

  private contentDone(out: RecordEvent[]): void {
    if (this.type === FCGI_STDOUT && this.length === 0) out.push({ type: 'stdout-end' });
    if (this.padding > 0) {
      this.st = St.Padding;
      this.left = this.padding;
      return;
    }
    this.recordDone(out);
  }

  private recordDone(out: RecordEvent[]): void {
    if (this.type === FCGI_END_REQUEST) {
      /* a short END_REQUEST body reads as zeros: nginx does not look at it */
      out.push({ type: 'end', appStatus: this.endBody.readUInt32BE(0), protocolStatus: this.endBody[4]! });
      this.st = St.Done;
      return;
    }
    this.st = St.Header;
  }
}

/**
 * The text nginx logs for a piece of STDERR: the piece with trailing LF, CR,
 * '.' and ' ' removed (nginx: `FastCGI sent in stderr: "TEXT"`).
 */
export function stderrLogText(data: Buffer): string {
  let end = data.length;
  while (end > 0) {
    const c = data[end - 1]!;
    if (c !== 0x0a && c !== 0x0d && c !== 0x2e && c !== 0x20) break;
    end--;
  }
  return data.toString('latin1', 0, end);
}

/* ------------------------------------------------------------------ */
/* The CGI response header at the head of STDOUT                       */

export interface CgiHeader {
  name: string;
  value: string;
}

export interface CgiHead {
  /** from Status, else 302 when there is a Location, else 200 (as nginx) */
  status: number;
  /** the Status value as sent, else "302 Moved Temporarily" or "200 OK" */
  statusLine: string;
  /** every header line in order, Status and Location included */
  headers: CgiHeader[];
}

export type HeadResult =
  | { state: 'more' }
  /** bodyOffset: where the body starts in the chunk of this call */
  | { state: 'done'; head: CgiHead; bodyOffset: number }
  | { state: 'error'; message: string };

const enum H {
  Start,
  Name,
  SpaceBeforeValue,
  Value,
  SpaceAfterValue,
  IgnoreLine,
  AlmostDone,
  HeaderAlmostDone,
  Done,
  Failed,
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;

/**
 * Header lines parsed as nginx's ngx_http_parse_header_line does for an
 * upstream (nginx 1.22): lines end in LF or CR LF; a blank line ends the
 * header; the name ends at ':' (a line without one is a header with an empty
 * value); spaces around the value are dropped; a space or control character
 * in a name, a ':' or a space starting a line, a NUL in a value, or a CR not
 * followed by LF is "upstream sent invalid header"; IIS's stray "HTTP/..."
 * lines are skipped.
 *
 * `limit` bounds the header, as fastcgi_buffer_size does in nginx: more
 * header bytes than that without the blank line is "upstream sent too big
 * header". (nginx counts the raw records in its buffer, record headers,
 * padding and STDERR included; this counts the STDOUT header bytes only.)
 *
 * Feed it the STDOUT data in order, split anywhere; the header bytes are
 * copied (at most `limit`), the body is not touched.
 */
export class CgiHeaderParser {
  private st: H = H.Start;
  private readonly acc: Buffer;
  private used = 0;
  private nameStart = 0;
  private nameEnd = 0;
  private valueStart = 0;
  private valueEnd = 0;
  private readonly headers: CgiHeader[] = [];
  private final: CgiHead | undefined;
  private error = '';

  constructor(readonly limit: number = 4096) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`bad header limit: ${limit}`);
    this.acc = Buffer.allocUnsafe(limit);
  }

  get done(): boolean {
    return this.st === H.Done;
  }

  get failed(): boolean {
    return this.st === H.Failed;
  }

  feed(chunk: Buffer): HeadResult {
    if (this.final) return { state: 'done', head: this.final, bodyOffset: 0 };
    if (this.st === H.Failed) return { state: 'error', message: this.error };
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      const p = this.used;
      this.acc[this.used++] = ch;
      const r = this.step(ch, p);
      if (r === 'done') {
        const head = this.head();
        if (head === undefined) return this.fail(`upstream sent invalid status "${this.statusValue()}"`);
        this.st = H.Done;
        this.final = head;
        return { state: 'done', head, bodyOffset: i + 1 };
      }
      if (r === 'invalid') return this.fail(this.invalidMessage(p));
      if (this.used === this.limit) return this.fail('upstream sent too big header');
    }
    return { state: 'more' };
  }

  private fail(message: string): HeadResult {
    this.st = H.Failed;
    this.error = message;
    return { state: 'error', message };
  }

  /** nginx 1.21.1+: `upstream sent invalid header: "NAME\xHH..."` (the line up to the bad byte) */
  private invalidMessage(p: number): string {
    const hex = this.acc[p]!.toString(16).padStart(2, '0');
    return `upstream sent invalid header: "${this.acc.toString('latin1', this.nameStart, p)}\\x${hex}..."`;
  }

  private line(): void {
    this.headers.push({
      name: this.acc.toString('latin1', this.nameStart, this.nameEnd),
      value: this.acc.toString('latin1', this.valueStart, this.valueEnd),
    });
  }

  /** one byte at acc[p]: 'done' at the end of the header, 'invalid', or undefined */
  private step(ch: number, p: number): 'done' | 'invalid' | undefined {
    switch (this.st) {
      case H.Start:
        this.nameStart = p;
        if (ch === CR) {
          this.st = H.HeaderAlmostDone;
          return undefined;
        }
        if (ch === LF) return 'done';
        if (ch <= SP || ch === 0x7f || ch === 0x3a) return 'invalid';
        this.st = H.Name;
        return undefined;
      case H.Name:
        if (ch === 0x3a) {
          this.nameEnd = p;
          this.st = H.SpaceBeforeValue;
          return undefined;
        }
        if (ch === CR || ch === LF) {
          this.nameEnd = this.valueStart = this.valueEnd = p;
          return this.lineEnd(ch);
        }
        if (ch === 0x2f && p - this.nameStart === 4 && this.acc.toString('latin1', this.nameStart, p) === 'HTTP') {
          this.st = H.IgnoreLine;
          return undefined;
        }
        if (ch <= SP || ch === 0x7f) return 'invalid';
        return undefined;
      case H.SpaceBeforeValue:
        if (ch === SP) return undefined;
        if (ch === CR || ch === LF) {
          this.valueStart = this.valueEnd = p;
          return this.lineEnd(ch);
        }
        if (ch === 0) return 'invalid';
        this.valueStart = p;
        this.st = H.Value;
        return undefined;
      case H.Value:
        if (ch === SP) {
          this.valueEnd = p;
          this.st = H.SpaceAfterValue;
          return undefined;
        }
        if (ch === CR || ch === LF) {
          this.valueEnd = p;
          return this.lineEnd(ch);
        }
        if (ch === 0) return 'invalid';
        return undefined;
      case H.SpaceAfterValue:
        if (ch === SP) return undefined;
        if (ch === CR || ch === LF) return this.lineEnd(ch);
        if (ch === 0) return 'invalid';
        this.st = H.Value;
        return undefined;
      case H.IgnoreLine:
        if (ch === LF) this.st = H.Start;
        return undefined;
      case H.AlmostDone:
        if (ch === LF) {
          this.line();
          this.st = H.Start;
          return undefined;
        }
        if (ch === CR) return undefined;
        return 'invalid';
      case H.HeaderAlmostDone:
        if (ch === LF) return 'done';
        return 'invalid';
      default:
        return 'invalid';
    }
  }

  private lineEnd(ch: number): undefined {
    if (ch === CR) {
      this.st = H.AlmostDone;
    } else {
      this.line();
      this.st = H.Start;
    }
    return undefined;
  }

  private statusValue(): string {
    return this.headers.find((h) => h.name.toLowerCase() === 'status')?.value ?? '';
  }

  /** the head, or undefined when the Status value does not start with 3 digits */
  private head(): CgiHead | undefined {
    let status: CgiHeader | undefined;
    let location: CgiHeader | undefined;
    for (const h of this.headers) {
      const l = h.name.toLowerCase();
      if (l === 'status' && !status) status = h;
      else if (l === 'location' && !location) location = h;
    }
    if (status) {
      if (!/^[0-9]{3}/.test(status.value)) return undefined;
      return { status: Number(status.value.slice(0, 3)), statusLine: status.value, headers: this.headers };
    }
    if (location) return { status: 302, statusLine: '302 Moved Temporarily', headers: this.headers };
    return { status: 200, statusLine: '200 OK', headers: this.headers };
  }
}
