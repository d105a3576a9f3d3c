import type { Socket } from 'node:net';
import type { Variables } from './variables.js';
import type { CoreLocConf, CoreSrvConf } from './core/module.js';
import { PROGRAM, SERVER_TOKEN } from '../core/version.js';
import type { HttpConnection } from './connection.js';
import { errorLogFor, getMainLog } from '../core/error_log.js';
import { DONE, OK, type LogLevel, type Request, type RequestHead, type UpstreamVars } from './request.js';
import { MSIE_PADDING, addHeaderApplies, errorPageHead, errorPageTail, wantsPadding } from './status.js';
import { evalComplexValue } from './eval.js';
import { RateGate } from './rate.js';
import { escapeRefresh, uaMsie } from './user_agent.js';
import type { ComplexValue } from './script.js';
import { parseSize } from '../conf/values.js';
import { headerBytes } from './header_filter.js';
import { dropListedLength, hasIfHeader, notModifiedFilter } from './conditional.js';
import { rangeHeaderFilter, type RangeBody } from './range.js';
import { hooks } from './hooks.js';
import { internalRedirect, namedLocation } from './phases.js';

/*
 * One request (ngx_http_request_t) and its output side: the header filter's
 * decisions (the header bytes themselves are built in header_filter.ts), the
 * chunked filter, error pages (ngx_http_special_response_handler) and
 * finalization.
 */

const CRLF = '\r\n';
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF_BUF = Buffer.from(CRLF, 'latin1');
/** chunks up to this size are framed by copying (one write), bigger ones by reference */
const SMALL_CHUNK = 1024;

/**
 * A body filter (nginx's body filter chain, for the few modules that need
 * one: echo_before_body/echo_after_body and subrequest output ordering).
 * `body` gets each chunk of r's response body, `last` its end; a filter
 * passes data on to `next` or, at the bottom, r.writeBody()/r.endBody().
 */
export interface BodyFilter {
  body(r: HttpRequest, chunk: Buffer): boolean;
  last(r: HttpRequest): void;
  next: BodyFilter | undefined;
}

/** hand a chunk to the next filter, or below the filters */
export function nextBody(r: HttpRequest, next: BodyFilter | undefined, chunk: Buffer): boolean {
  return next ? next.body(r, chunk) : r.writeBody(chunk);
}
export function nextLast(r: HttpRequest, next: BodyFilter | undefined): void {
  if (next) next.last(r);
  else r.endBody();
}

/** the modules' header filters (hooks.ts), for main requests and subrequests */
export function runHeaderFilters(r: HttpRequest): void {
  const headerFilters = hooks.headerFilter;
  for (let i = 0; i < headerFilters.length; i++) headerFilters[i]!(r);
}

/** r.locConf until the server is known (always replaced, never written) */
const NO_CONF: unknown[] = [];

/** statuses whose error page turns keep-alive off (special_response_handler) */
const CLOSES = new Set([400, 413, 414, 497, 495, 496, 500, 501]);

/** the last chunk with trailer lines (nginx's ngx_http_chunked_create_trailers) */
function lastChunk(lines: Array<[string, string]>): Buffer {
  if (lines.length === 0) return LAST_CHUNK;
  let s = '0\r\n';
  for (const [k, v] of lines) s += `${k}: ${v}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}

export class HttpRequest implements Request {
  readonly req: RequestHead;
  readonly socket: Socket;
  readonly connectionId: number;
  readonly connectionRequests: number;
  readonly requestLine: string;
  method: string;
  readonly protocol: string;
  requestUri: string;
  readonly startTime: number;
  host: string;
  serverName = '';

  uri = '/';
  args = '';
  srv!: CoreSrvConf;
  loc!: CoreLocConf;
  locConf: unknown[] = NO_CONF;
  uriChanged = false;
  uriChanges = 11;
  /**
   * bumped by every internal redirect and named location: nginx clears the
   * modules' request contexts (r->ctx) there; a module keeping a context
   * per request compares it to see whether its own is still valid
   */
  ctxEpoch = 0;
  /**
   * the lua module's request context (ngx_lua's r->ctx slot: ngx.ctx, its
   * output state), opaque here; a field rather than a WeakMap because
   * every ngx.say and thread end reads it
   */
  luaCtx: unknown = undefined;
  internal = false;
  validLocation = true;
  captures: string[] | undefined;
  namedCaptures: Record<string, string> | undefined;
  returnText: string | undefined = undefined;
  vars: (string | undefined)[] = [];
  readonly variables: Variables;
  body: Buffer[] | undefined;

  status = 0;
  statusLine: string | undefined;
  contentType: string | undefined;
  /** the response's charset (headers_out.charset: the charset filter's, an upstream's parameter) */
  charset = '';
  /** an upstream's Content-Type value and the length of its type before `; charset=` (types.ts) */
  ctTyped: string | undefined = undefined;
  ctLen = -1;
  contentLength = -1;
  location: string | undefined;
  headersOut: Array<[string, string]> = [];
  /** nginx's headers_out.last_modified_time: seconds, -1 none (Last-Modified, conditional requests) */
  lastModifiedTime = -1;
  /** a Last-Modified entry of headersOut standing for lastModifiedTime (nginx's headers_out.last_modified: an upstream's) */
  lastModified: [string, string] | undefined = undefined;
  /** the not-modified filter leaves this response alone (nginx's r->disable_not_modified) */
  disableNotModified = false;
  /** the ETag entry of headersOut (nginx's headers_out.etag) */
  etag: [string, string] | undefined = undefined;
  /** the Accept-Ranges entry of headersOut (nginx's headers_out.accept_ranges) */
  acceptRanges: [string, string] | undefined = undefined;
  /** the response may be served in ranges (nginx's r->allow_ranges: static files) */
  allowRanges = false;
  /** the ranges the range filter chose: the content handler sends just these bytes */
  rangeBody: RangeBody | undefined = undefined;
  /** proxy/fastcgi_force_ranges: one range at most, cut from the streamed body (ngx_http_range_singlepart_body) */
  singleRange = false;
  rangeStream = false;
  private rangePos = 0;
  headerSent = false;
  /** a header filter failed (its NGX_ERROR): the request is terminated instead of sent */
  filterError = false;
  /** responses a header filter replaced with an error (412/416): see Request.filterFinalized */
  filterFinalized = 0;
  bodyBytesSent = 0;
  bytesSent = 0;
  aborted = false;
  upstreamAddr: string | undefined;
  upstreamVars: UpstreamVars | undefined = undefined;
  ownServer = true;
  ownDate = true;
  /**
   * the header filter writes Content-Length from contentLength (false: a
   * Content-Length entry of headersOut stands for it, in its place, as
   * nginx's r->headers_out.content_length set by headers-more)
   */
  ownContentLength = true;

  // --- engine state
  readonly conn: HttpConnection;
  /** request line + headers bytes ($request_length before the body) */
  headerLength = 0;
  /** those bytes as the client sent them, once the head was read whole */
  rawHead: Buffer | undefined = undefined;
  /** Content-Length of the request body (-1 none) */
  contentLengthIn = -1;
  /** the exact Content-Length when it is past 2^53 (contentLengthIn is then rounded) */
  contentLengthText: string | undefined = undefined;
  chunkedIn = false;
  keepalive: boolean;
  /** nginx's c->log->action while the head is read (`reading client request line`...): the log's `while ...` */
  action: string | undefined = undefined;
  /** nginx's r->err_status: the status error_page forces on the response */
  errStatus = 0;
  errorPage = false;
  /** the extension of the URI, for types (nginx's r->exten) */
  headerOnly = false;
  chunked = false;
  finished = false;
  /** the chunked body was found malformed (while read or discarded) */
  bodyInvalid = false;
  /** a HEAD whose request line failed after the method: no body, though $request_method is empty */
  headRequest = false;
  /** the raw bytes of a body read in full (chunk framing included: nginx's request_length counts them); -1 none */
  bodyRaw = -1;
  /** a chunked body was discarded to its end (nginx's content_length_n is then 0) */
  discardDone = false;
  /** set once the body was read or discarding started */
  bodyState: 'none' | 'reading' | 'read' | 'discard' = 'none';
  expectTested = false;
  /**
   * the content handler discards the body only after its last output
   * (echo's run_cmds): the engine answers Expect: 100-continue as the
   * response ends, keep-alive or not
   */
  discardAfter = false;
  /** the top of this request's body filter chain (undefined: straight to the wire) */
  filter: BodyFilter | undefined;
  /**
   * the filters below the postpone point (nginx's gzip body filter sits
   * under the postpone filter): what reaches writeBody, subrequests'
   * output included, goes through it before the chunked framing; it
   * hands its output to wireBody / wireEnd
   */
  encoder: BodyFilter | undefined = undefined;
  /** the request runs its location's post_action (r->post_action): nothing more reaches the client */
  postAction = false;
  /** the encoder was told the body ended */
  private encoderEnding = false;
  /** ngx_http_gzip_ok was asked (r->gzip_tested) and its answer (r->gzip_ok); reset by an internal redirect */
  gzipTested = false;
  gzipOk = false;
  /** the header gets `Vary: Accept-Encoding` (r->gzip_vary with gzip_vary on) */
  gzipVary = false;
  /** finish() was called while a filter still holds output back */
  ending = false;
  /** the phase and handler index a suspended phase handler resumes at (phases.ts suspendPhase) */
  phaseAt = 0;
  phaseIndex = 0;
  /** a refusal kept by `satisfy any` for post-access (r->access_code) */
  accessCode = 0;
  /**
   * srcache's per-request state (its r->ctx entry, lib/modules/srcache/state.ts):
   * a field rather than a WeakMap entry, since every request of a cached
   * location reads it (fetch, header filter, the status variables)
   */
  srcacheCtx: unknown = undefined;
  /** run once the request is over, after its log phase (nginx's request pool cleanups) */
  cleanups: Array<() => void> | undefined = undefined;
  /** the client's request (r->main); a subrequest's parent (r->parent) */
  main: HttpRequest = this;
  parent: HttpRequest | undefined;
  /** made when first needed: most requests never wait for drain or abort */
  private drainCbs: Array<() => void> | undefined = undefined;
  /*
   * The first abort and FIN watchers in a field, the rest in an array:
   * nearly every request has one or two (a subrequest, an upstream), and
   * an array made by a push holds 17 slots.
   */
  private abortCb: (() => void) | undefined = undefined;
  private abortCbs: Array<() => void> | undefined = undefined;
  /** add_trailer's lines for the last chunk (set by the headers filter when one applies) */
  trailers: (() => Array<[string, string]>) | undefined = undefined;
  /** $limit_rate: bytes per second (0 none); set by `set $limit_rate` or at the first output */
  limitRate = 0;
  limitRateSet = false;
  private rate: RateGate | undefined = undefined;
  /** watchers of the client's FIN (nginx's check_broken_connection read handlers), on the main request */
  private eofCb: (() => boolean) | undefined = undefined;
  private eofCbs: Array<() => boolean> | undefined = undefined;

  constructor(conn: HttpConnection, head: RequestHead, line: string, startTime: number, host: string) {
    this.conn = conn;
    this.variables = conn.variables;
    this.req = head;
    this.socket = conn.socket;
    this.connectionId = conn.id;
    this.connectionRequests = conn.requests;
    this.requestLine = line;
    this.method = head.method;
    this.protocol = head.protocol;
    this.requestUri = head.rawUri;
    this.startTime = startTime;
    this.host = host;
    // errors found while the head is checked close the connection (r->keepalive 0)
    this.keepalive = false;
  }

  /** ngx_http_handler: keep-alive from Connection: (0 none, 1 close, 2 keep-alive) and the version */
  initKeepalive(type: number): void {
    if (type === 1) this.keepalive = false;
    else if (type === 2) this.keepalive = true;
    else this.keepalive = this.req.version > 1000;
  }

  get version(): number {
    return this.req.version;
  }

  get clcf(): CoreLocConf {
    return this.loc;
  }

  // ------------------------------------------------------------ logging

  log(level: LogLevel, msg: string): void {
    const specs = this.loc?.errorLog;
    const log = specs ? errorLogFor(specs) : getMainLog();
    if (!log.enabled(level)) return;
    log.write(level, this.connectionId, (this.action === undefined ? msg : `${msg} while ${this.action}`) + this.logContext());
  }

  logContext(): string {
    let s = `, client: ${this.conn.remoteAddr}, server: ${this.srv ? firstName(this.srv) : ''}`;
    if (this.requestLine) s += `, request: "${this.requestLine}"`;
    if (this.upstreamAddr !== undefined) s += `, upstream: "${this.upstreamAddr}"`;
    const host = this.req.byName.get('host');
    if (host !== undefined) s += `, host: "${host}"`;
    const ref = this.req.byName.get('referer');
    if (ref !== undefined) s += `, referrer: "${ref}"`;
    return s;
  }

  // ------------------------------------------------------------ output

  onDrain(cb: () => void): void {
    if (this.aborted) return;
    (this.drainCbs ??= []).push(cb);
    this.conn.waitDrain();
  }

  onAbort(cb: () => void): void {
    if (this.aborted) {
      queueMicrotask(cb);
      return;
    }
    if (this.abortCb === undefined) this.abortCb = cb;
    else (this.abortCbs ??= []).push(cb);
  }

  /**
   * cb runs once if the client half-closes (its FIN is read) while this
   * request runs, at once if that already happened; when it returns true
   * (an upstream that does not ignore client aborts, having logged why)
   * the connection closes and the request ends as 499. Without a watcher
   * nginx goes on writing to the half-closed client.
   */
  checkBroken(cb: () => boolean): void {
    const main = this.main;
    if (this.aborted || main.aborted) return;
    if (this.conn.eof) {
      setImmediate(() => {
        if (!this.aborted && !this.finished && cb()) this.conn.abortClient();
      });
      return;
    }
    if (main.eofCb === undefined) main.eofCb = cb;
    else (main.eofCbs ??= []).push(cb);
  }

  /** the engine read the client's FIN while this (main) request runs */
  clientEof(): void {
    const first = this.eofCb;
    const cbs = this.eofCbs;
    this.eofCb = undefined;
    this.eofCbs = undefined;
    if (first === undefined) return;
    let close = first();
    if (cbs !== undefined) for (const cb of cbs) if (cb()) close = true;
    if (close) this.conn.abortClient();
  }

  /** the connection went away: tell whoever waits */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.finished = true;
    const first = this.abortCb;
    const cbs = this.abortCbs;
    this.abortCb = undefined;
    this.abortCbs = undefined;
    this.drainCbs = undefined;
    this.rate?.stop();
    this.eofCb = undefined;
    this.eofCbs = undefined;
    if (first !== undefined) first();
    if (cbs !== undefined) for (const cb of cbs) cb();
  }

  drained(): void {
    const cbs = this.drainCbs;
    this.drainCbs = undefined;
    if (cbs !== undefined) for (const cb of cbs) cb();
  }

  /** ngx_http_header_filter (+ chunked filter decisions) */
  sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    // ngx_http_send_header does nothing for a post_action: no filters, no bytes
    if (this.postAction) {
      if (this.errStatus) this.status = this.errStatus;
      this.headerOnly = true;
      return;
    }
    if (this.errStatus) {
      this.status = this.errStatus;
      this.statusLine = undefined;
    }
    if (this.status === 0) this.status = 200;
    // ngx_http_not_modified_filter, the top of nginx's chain: 304, or 412
    if (this.status === 200 && this.main === this && !this.disableNotModified && hasIfHeader(this.req.headers)) {
      const rc = notModifiedFilter(this);
      if (rc !== 0) return this.filterFinalize(rc, true);
    }
    // module header filters sit above the range, chunked and header filters, as in nginx
    if (hooks.headerFilter.length) runHeaderFilters(this);
    // a filter failed (NGX_ERROR): nginx terminates the request, nothing is sent
    if (this.filterError) {
      this.terminate();
      return;
    }
    // ngx_http_range_header_filter: Accept-Ranges after add_header's headers; 206 or 416
    if (this.allowRanges && this.main === this) {
      const rc = rangeHeaderFilter(this);
      if (rc !== 0) return this.filterFinalize(rc, false);
    }
    const clcf = this.loc;
    const status = this.status;
    if (status === 204) {
      this.contentType = undefined;
      this.contentLength = -1;
    }
    // chunked filter
    if ((this.contentLength === -1 || this.trailers !== undefined) && status >= 200 && status !== 204 && status !== 304 && this.method !== 'HEAD') {
      if (this.version >= 1001 && clcf?.chunkedTransferEncoding !== 0) {
        // trailers need the chunked framing: the length goes (ngx_http_clear_content_length)
        if (this.trailers !== undefined) this.contentLength = -1;
        this.chunked = true;
      } else if (this.contentLength === -1) this.keepalive = false;
    }
    if (this.keepalive && this.conn.exiting) this.keepalive = false;
    // HTTP/0.9: no header at all, and the header filter stops before HEAD, 204 and 304 make the body go
    if (this.version < 1000) return;
    if (this.method === 'HEAD' || this.headRequest || status === 204 || status === 304) this.headerOnly = true;
    if (this.contentType === undefined && !(status === 204)) this.contentType = this.defaultContentType();
    if (this.main === this) this.startRate();
    this.write(headerBytes(this, clcf, status));
  }

  /**
   * A header filter refused the response (412, 416): the request ends with
   * that status's special response instead (ngx_http_filter_finalize_request,
   * whose `clean` empties the header; the range filter's 416 keeps it). The
   * content handler sees r.filterFinalized move and stops.
   */
  private filterFinalize(status: number, clean: boolean): void {
    this.headerSent = false;
    this.filterFinalized++;
    this.allowRanges = false;
    if (clean) {
      // ngx_http_filter_finalize_request clears the modules' contexts (srcache's, echo's); the range
      // filter's 416 is a plain return code that keeps them
      this.ctxEpoch++;
      this.headersOut = [];
      this.contentLength = -1;
      this.lastModifiedTime = -1;
      this.lastModified = undefined;
      this.etag = undefined;
      this.acceptRanges = undefined;
      this.location = undefined;
      this.contentType = undefined;
      this.statusLine = undefined;
    }
    this.specialResponse(status);
  }

  /** Content-Type from types by the URI's extension, else default_type */
  defaultContentType(): string {
    const clcf = this.loc;
    if (!clcf) return 'text/plain';
    // the extension: after the last `.` when no `/` follows it (one backward scan)
    const uri = this.uri;
    let i = uri.length - 1;
    for (; i >= 0; i--) {
      const c = uri.charCodeAt(i);
      if (c === 0x2e || c === 0x2f) break;
    }
    if (i >= 0 && i < uri.length - 1 && uri.charCodeAt(i) === 0x2e) {
      const t = clcf.types.get(uri.slice(i + 1).toLowerCase());
      if (t !== undefined) return t;
    }
    return clcf.defaultType;
  }

  private write(b: Buffer): boolean {
    if (this.aborted) return false;
    this.bytesSent += b.length;
    if (this.rate !== undefined) return this.rate.write(b);
    return this.conn.write(b);
  }

  /** ngx_http_write_filter's first call: limit_rate (unless `set $limit_rate` did) and limit_rate_after */
  private startRate(): void {
    const clcf = this.loc;
    if (!this.limitRateSet) {
      this.limitRate = clcf?.limitRate ? this.sizeValue(clcf.limitRate) : 0;
      this.limitRateSet = true;
    }
    if (this.limitRate <= 0 || this.rate !== undefined) return;
    const after = clcf?.limitRateAfter ? this.sizeValue(clcf.limitRateAfter) : 0;
    const conn = this.conn;
    this.rate = new RateGate(
      {
        write: (b) => conn.write(b),
        congested: () => conn.congested(),
        // the queue is out: the producer goes on now, or when the socket drains (its drain event)
        resumed: () => {
          if (!conn.congested()) conn.drainedByFilter();
        },
      },
      this.limitRate,
      after,
      this.startTime,
    );
  }

  /** ngx_http_complex_value_size: an invalid value is logged and counts as 0 */
  private sizeValue(cv: ComplexValue): number {
    const v = evalComplexValue(this, cv);
    const n = parseSize(v);
    if (n === -1) {
      this.log('error', `invalid size "${v}"`);
      return 0;
    }
    return n;
  }

  send(chunk: Buffer): boolean {
    // after a filter's error response the handler's bytes go nowhere, with no backpressure
    if (this.aborted || this.finished || this.ending) return this.filterFinalized !== 0 && !this.aborted;
    if (!this.headerSent) this.sendHeader();
    if (this.headerOnly) return !this.conn.congested();
    if (this.rangeStream && this.rangeBody !== undefined) {
      chunk = this.rangeCut(chunk);
      if (chunk.length === 0) return !this.conn.congested();
    }
    if (this.filter) return this.filter.body(this, chunk);
    return this.writeBody(chunk);
  }

  /** the part of a streamed chunk inside the single range */
  private rangeCut(chunk: Buffer): Buffer {
    const part = this.rangeBody!.parts[0]!;
    const pos = this.rangePos;
    this.rangePos += chunk.length;
    const from = Math.max(part.start - pos, 0);
    const to = Math.min(part.end - pos, chunk.length);
    return from >= to ? chunk.subarray(0, 0) : chunk.subarray(from, to);
  }

  /** body bytes below the filters: the encoder (gzip), if any, then wireBody */
  writeBody(chunk: Buffer): boolean {
    if (this.encoder !== undefined) return this.encoder.body(this, chunk);
    return this.wireBody(chunk);
  }

  /**
   * A filter that held the producer back (its body() returned false)
   * can take more: run the drain waiters unless the socket is the one
   * that is full (its own drain event will run them).
   */
  filterDrained(): void {
    if (this.aborted || this.conn.congested()) return;
    this.conn.drainedByFilter();
  }

  /** body bytes at the bottom: chunked framing, then the socket */
  wireBody(chunk: Buffer): boolean {
    if (chunk.length === 0 || this.aborted) return !this.conn.congested();
    if (this.chunked) {
      const size = chunk.length.toString(16);
      // $body_bytes_sent is what went out after the header: chunk framing included, as nginx counts it
      this.bodyBytesSent += size.length + 2 + chunk.length + 2;
      if (chunk.length <= SMALL_CHUNK) {
        // one small Buffer instead of three writes
        const n = size.length + 2 + chunk.length + 2;
        const b = Buffer.allocUnsafe(n);
        b.write(size, 0, 'latin1');
        b[size.length] = 13;
        b[size.length + 1] = 10;
        chunk.copy(b, size.length + 2);
        b[n - 2] = 13;
        b[n - 1] = 10;
        return this.write(b);
      }
      this.write(Buffer.from(`${size}\r\n`, 'latin1'));
      this.write(chunk);
      return this.write(CRLF_BUF);
    }
    this.bodyBytesSent += chunk.length;
    return this.write(chunk);
  }

  finish(): void {
    if (this.finished || this.ending) return;
    if (!this.headerSent) this.sendHeader();
    if (this.filter && !this.headerOnly) {
      this.ending = true;
      this.filter.last(this);
      return;
    }
    this.endBody();
  }

  /** the end of the body below the filters: through the encoder, if any, to wireEnd */
  endBody(): void {
    if (this.finished) return;
    const enc = this.encoder;
    if (enc !== undefined && !this.headerOnly) {
      // the encoder ends the response when its output is out (wireEnd)
      if (this.encoderEnding) return;
      this.encoderEnding = true;
      this.ending = true;
      enc.last(this);
      return;
    }
    this.wireEnd();
  }

  /** the end of the body at the bottom: last chunk, log, keep-alive */
  wireEnd(): void {
    if (this.finished) return;
    if (this.chunked && !this.headerOnly) {
      const last = this.trailers === undefined ? LAST_CHUNK : lastChunk(this.trailers());
      this.bodyBytesSent += last.length;
      this.write(last);
    }
    // limit_rate: the request is done once its last bytes left
    if (this.rate !== undefined && this.rate.pending()) {
      this.rate.whenEmpty(() => this.wireEnded());
      return;
    }
    this.wireEnded();
  }

  private wireEnded(): void {
    if (this.finished) return;
    if (this.main === this && this.startPostAction()) return;
    this.finished = true;
    this.conn.requestDone(this);
  }

  /**
   * ngx_http_post_action: once the response is out, the location's
   * post_action URI (or @name) runs as the same request, its output
   * going nowhere (nginx makes it HTTP/0.9, header-only); the log phase
   * then runs once, for where it ended. A post_action location that has
   * one too runs it again, until the request's URI changes run out.
   */
  private startPostAction(): boolean {
    const target = this.loc?.postAction;
    if (target === undefined || this.aborted) return false;
    if (this.postAction && this.uriChanges === 0) return false;
    this.postAction = true;
    this.headerSent = false;
    this.headerOnly = true;
    this.chunked = false;
    this.ending = false;
    this.encoderEnding = false;
    this.filter = undefined;
    this.encoder = undefined;
    this.rangeBody = undefined;
    if (target.startsWith('/')) internalRedirect(this, target, '');
    else namedLocation(this, target);
    return true;
  }

  finalize(rc: number): void {
    if (this.finished || this.ending || rc === DONE) return;
    if (rc === OK) {
      this.finish();
      return;
    }
    if (rc < 100) rc = 500;
    if (this.headerSent) {
      // the response has started: only cutting it short is left (nginx closes)
      this.terminate();
      return;
    }
    this.specialResponse(rc);
  }

  /** ngx_http_terminate_request: close the connection, the response cut short */
  terminate(): void {
    if (this.finished) return;
    this.keepalive = false;
    this.finished = true;
    this.conn.requestDone(this, true);
  }

  discardBody(): number {
    return this.conn.discardBody(this);
  }

  sendResponse(status: number, text: string): void {
    // ngx_http_send_response discards the body first (and so answers Expect: 100-continue); a broken one is its 400
    const rc = this.conn.discardBody(this);
    if (rc !== OK) {
      this.finalize(rc);
      return;
    }
    if (status === 301 || status === 302 || status === 303 || status === 307 || status === 308) {
      this.location = text;
      this.finalize(status);
      return;
    }
    const body = Buffer.from(text, 'latin1');
    this.status = status;
    this.contentLength = body.length;
    const replaced = this.filterFinalized;
    this.sendHeader();
    // a filter answered instead (412, 416; maybe through an error_page still running)
    if (this.filterFinalized !== replaced) return;
    if (body.length) this.send(body);
    this.finish();
  }

  internalRedirect(uri: string, args?: string): void {
    if (uri.startsWith('@')) namedLocation(this, uri);
    else {
      let a = args;
      let u = uri;
      if (a === undefined) {
        const q = uri.indexOf('?');
        a = q === -1 ? '' : uri.slice(q + 1);
        if (q !== -1) u = uri.slice(0, q);
      }
      internalRedirect(this, u, a);
    }
  }

  /** ngx_http_special_response_handler */
  specialResponse(error: number): void {
    this.errStatus = error;
    if (this.keepalive && CLOSES.has(error)) this.keepalive = false;
    this.contentType = undefined;
    const clcf = this.loc;
    if (!this.errorPage && clcf && clcf.errorPages && this.uriChanges !== 0) {
      // recursive_error_pages: the page's own error may be redirected again (until uri_changes runs out)
      if (clcf.recursiveErrorPages !== 1) this.errorPage = true;
      for (const page of clcf.errorPages) {
        if (page.status === error) {
          this.sendErrorPage(page.overwrite, evalComplexValue(this, page.value), page.value.constant !== undefined ? page.args : undefined);
          return;
        }
      }
    }
    // ngx_http_special_response_handler: an error page never answers Expect: 100-continue
    this.expectTested = true;
    this.conn.discardBody(this);
    if ((error === 301 || error === 302) && this.wantsRefresh()) return this.sendRefresh();
    this.sendSpecial(error);
  }

  private sendErrorPage(overwrite: number, uri: string, constArgs: string | undefined): void {
    if (overwrite >= 0) this.errStatus = overwrite;
    if (uri.startsWith('/')) {
      if (this.method !== 'HEAD') this.method = 'GET';
      let u = uri;
      let args = constArgs ?? '';
      if (constArgs === undefined) {
        const q = uri.indexOf('?');
        if (q !== -1) {
          u = uri.slice(0, q);
          args = uri.slice(q + 1);
        }
      }
      internalRedirect(this, u, args);
      return;
    }
    if (uri.startsWith('@')) {
      namedLocation(this, uri);
      return;
    }
    this.expectTested = true;
    this.conn.discardBody(this);
    if (overwrite !== 301 && overwrite !== 302 && overwrite !== 303 && overwrite !== 307 && overwrite !== 308) {
      this.errStatus = 302;
    }
    this.location = uri;
    if (this.wantsRefresh()) return this.sendRefresh();
    this.sendSpecial(this.errStatus);
  }

  /** msie_refresh for an MSIE client (headers_in.msie) */
  private wantsRefresh(): boolean {
    if (this.loc?.msieRefresh !== 1 || this.location === undefined) return false;
    const ua = this.req.byName.get('user-agent');
    return ua !== undefined && uaMsie(ua);
  }

  /**
   * ngx_http_clear_last_modified, _etag, _accept_ranges and
   * _content_length before a page of nginx's own: nginx clears the
   * response's own ETag and Accept-Ranges (one pointer each); one an
   * earlier response of this request pushed (before an error_page
   * redirect) stays in the list. A listed Content-Length (headers-more's,
   * ngx_lua's, a cached entry's) gives way to the page's length.
   */
  private clearValidators(): void {
    dropListedLength(this);
    const etag = this.etag;
    const ranges = this.acceptRanges;
    this.headersOut = this.headersOut.filter((h) => h[0] !== 'Last-Modified' && h !== etag && h !== ranges);
    this.lastModifiedTime = -1;
    this.lastModified = undefined;
    this.etag = undefined;
    this.acceptRanges = undefined;
    this.allowRanges = false;
  }

  /** ngx_http_send_refresh: a 200 text/html page whose meta refresh goes to the Location (which is dropped) */
  private sendRefresh(): void {
    const body = `<html><head><meta http-equiv="Refresh" content="0; URL=${escapeRefresh(this.location!)}"></head><body></body></html>\r\n`;
    this.errStatus = 200;
    this.status = 200;
    this.location = undefined;
    this.contentType = 'text/html';
    this.contentLength = body.length;
    this.clearValidators();
    this.sendHeader();
    if (!this.headerOnly) this.send(Buffer.from(body, 'latin1'));
    this.finish();
  }

  /** ngx_http_send_special_response: the built-in page for `status` */
  private sendSpecial(status: number): void {
    const head = status === 201 || status === 204 ? '' : errorPageHead(status);
    if (status >= 494 && status <= 497) this.errStatus = 400;
    this.status = status;
    this.clearValidators();
    let body = '';
    if (head) {
      const tokens = this.loc ? this.loc.serverTokens : 1;
      body = head + errorPageTail(tokens === 0 ? PROGRAM : SERVER_TOKEN);
      const ua = this.req.byName.get('user-agent');
      if (ua !== undefined && status >= 400 && this.version >= 1000 && this.loc?.msiePadding !== 0 && wantsPadding(ua)) {
        body += MSIE_PADDING;
      }
      this.contentType = 'text/html';
    } else this.contentType = '';
    this.contentLength = body.length;
    this.sendHeader();
    if (body && !this.headerOnly) this.send(Buffer.from(body, 'latin1'));
    this.finish();
  }
}

/** $server_name and the log's `server:` (cscf->server_name: the first name) */
export function firstName(srv: CoreSrvConf): string {
  const n = srv.serverNames[0];
  return n ? (n.regex ? n.name : n.name) : '';
}

export { addHeaderApplies };
