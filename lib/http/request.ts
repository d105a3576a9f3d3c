import type { Socket } from 'node:net';
import type { Variables } from './variables.js';
import type { CoreLocConf, CoreSrvConf } from './core/module.js';

/*
 * The per-request state every phase reads and writes (nginx's
 * ngx_http_request_t, trimmed). The engine in lib/http/ creates it; module
 * hooks (lib/modules/*) read confs through it and set variables on it.
 *
 * All strings are byte strings (latin1): one char = one byte, so values
 * reach Redis and the client unchanged.
 *
 * redis2d parses HTTP itself (lib/http/parse.ts) instead of using node:http,
 * so every byte on the wire is nginx's (status lines, header order, 400s).
 *
 * How a content handler answers (ngx_http_send_header / output_filter /
 * finalize_request):
 *   r.status = 200; r.contentType = ...;   // else default_type / types
 *   r.sendHeader();                         // status line + headers go out
 *   if (!r.send(buf)) r.onDrain(resume);    // body bytes; false = back off
 *   r.finish();                             // last chunk, log, keep-alive
 * or r.finalize(502) for an error: an error page (or error_page redirect)
 * while no header was sent; after the header, the connection is closed and
 * the body stays cut short, as nginx does. r.onAbort(cb) tells the handler
 * the client went away (r.aborted is then true; further sends are dropped).
 * A content handler returns DONE when it finalizes itself (possibly later),
 * or a status >= 100 (sync or from its promise) for the engine to finalize.
 */

/** Phase handler results, nginx's NGX_* codes; any value >= 100 is an HTTP status to finalize with. */
export const OK = 0;
export const DECLINED = -5;
/** the handler took over the response (async content) */
export const DONE = -4;
export const ERROR = -1;

import type { LogLevel } from '../core/error_log.js';
export type { LogLevel };

/** The parsed request head (nginx's headers_in and request line). */
/**
 * What an upstream run records of its tries (lib/upstream/run.ts), kept as
 * numbers and made into nginx's `a, b` lists only when a variable is read
 * (most requests never read them). undefined: nothing recorded yet.
 */
export interface UpstreamVars {
  addrList(): string | undefined;
  status(): string | undefined;
  responseTime(): string | undefined;
  connectTime(): string | undefined;
}

export interface RequestHead {
  method: string;
  /** the URI as sent on the request line (may be absolute: `http://h/p?a`) */
  rawUri: string;
  /** `HTTP/1.0`, `HTTP/1.1` (or `HTTP/0.9` for a bare request line) */
  protocol: string;
  /** 9, 1000, 1001 as nginx's http_version */
  version: number;
  /** every header line, names as sent, in order */
  headers: Array<[string, string]>;
  /** lowercased name → first value (nginx's headers_in lookups) */
  byName: Map<string, string>;
  /** a header name holds `_` or another odd byte (underscores_in_headers on, ignore_invalid_headers off) */
  oddNames?: boolean;
}

export interface Request {
  // --- connection and raw request
  /** the parsed request head */
  readonly req: RequestHead;
  readonly socket: Socket;
  /** monotonically increasing connection number ($connection) */
  readonly connectionId: number;
  /** requests served on this connection so far, this one included */
  readonly connectionRequests: number;
  /** the request line as received: `GET /a?b HTTP/1.1` */
  readonly requestLine: string;
  readonly method: string;
  /** `HTTP/1.0` or `HTTP/1.1` */
  readonly protocol: string;
  /** the original URI with arguments, as received */
  readonly requestUri: string;
  /** ms since the epoch (Date.now()) when the request line started */
  readonly startTime: number;
  /** the host from Host (or an absolute URI), lowercased, no port; '' when none */
  readonly host: string;
  /** the server_name that matched, or the server's first name ($server_name) */
  serverName: string;

  // --- mutable routing state
  /** the normalized, percent-decoded path (changed by rewrite) */
  uri: string;
  /** the query string without `?` */
  args: string;
  /** the server block chosen for this request */
  srv: CoreSrvConf;
  /** the location found by the find-location phase (or an `if` level inside it) */
  loc: CoreLocConf;
  /** loc conf array of every module at the current level */
  locConf: unknown[];
  /** set when rewrite changed the URI and location search must run again */
  uriChanged: boolean;
  /** how many times the URI may still change (nginx: 10 + 1) */
  uriChanges: number;
  /** true for internal redirects and subrequests: `internal` locations admit them */
  internal: boolean;
  /**
   * false once `rewrite ... break` changed the URI inside the location
   * (nginx's r->valid_location): proxy_pass then ignores its URI part
   */
  validLocation: boolean;
  /** captures of the last successful regex match: [whole, $1, ...]; named ones too */
  captures: string[] | undefined;
  namedCaptures: Record<string, string> | undefined;
  /**
   * Set by `return CODE TEXT` (and `return CODE` with CODE < 400, as '') in
   * a rewrite phase hook that then returns CODE: the engine must answer CODE
   * with this body (Content-Type from default_type, Content-Length), not an
   * error page (ngx_http_send_response). Undefined otherwise.
   */
  returnText?: string | undefined;

  // --- variables
  /** evaluated variables by index; undefined = not yet evaluated */
  vars: (string | undefined)[];
  /** the registry `vars` indexes into: the config this request is served under */
  readonly variables: Variables;

  // --- body
  /** the request body once read, as chunks (latin1 strings avoided: Buffers) */
  body: Buffer[] | undefined;

  // --- response
  status: number;
  /** the status line text after the code; undefined = nginx's standard one */
  statusLine: string | undefined;
  /** Content-Type; undefined = from types / default_type at sendHeader */
  contentType: string | undefined;
  /** headers_out.charset (lib/http/types.ts) */
  charset: string;
  /** an upstream's Content-Type value whose type ends at ctLen, before its `; charset=` */
  ctTyped: string | undefined;
  ctLen: number;
  /** Content-Length to send; -1 = none (chunked on 1.1, close-delimited on 1.0) */
  contentLength: number;
  /** Location for 3xx (rewrite's `return 302 URL`, redirects) */
  location: string | undefined;
  /** headers added by modules (add_header and content handlers) */
  headersOut: Array<[string, string]>;
  /** Last-Modified as seconds, -1 none (headers_out.last_modified_time) */
  lastModifiedTime: number;
  /** the headersOut entry that is the response's Last-Modified (headers_out.last_modified) */
  lastModified: [string, string] | undefined;
  /** the ETag header entry (headers_out.etag), if any */
  etag: [string, string] | undefined;
  /** the not-modified filter leaves this response alone (r->disable_not_modified: an upstream's, no cache) */
  disableNotModified: boolean;
  /**
   * the header filter writes its own Server / Date lines (false: an
   * upstream's are passed instead, as nginx does under *_pass_header)
   */
  ownServer: boolean;
  ownDate: boolean;
  /** true once the status line and headers were written */
  headerSent: boolean;
  /** no body goes out (HEAD, 204, 304): known once sendHeader ran */
  headerOnly: boolean;
  /**
   * how many times a header filter replaced the response with an error page
   * (412, 416): a handler compares it before and after sendHeader() and, if
   * it moved, sends nothing more (what it would send is dropped anyway)
   */
  filterFinalized: number;
  /** bytes of body sent so far ($body_bytes_sent) */
  bodyBytesSent: number;
  /** true once the client connection is gone */
  aborted: boolean;
  /** error-log context: `, upstream: "redis2://..."` etc. appended to log lines */
  upstreamAddr: string | undefined;
  /** $upstream_addr, $upstream_status, $upstream_response_time, $upstream_connect_time: the upstream run's record, made text when read */
  upstreamVars: UpstreamVars | undefined;

  /** send the status line and headers (ngx_http_send_header) */
  sendHeader(): void;
  /** send body bytes (sends the header first if needed); false = wait for onDrain */
  send(chunk: Buffer): boolean;
  /** call cb once when the client socket can take more */
  onDrain(cb: () => void): void;
  /** call cb once if the client goes away before the response ends */
  onAbort(cb: () => void): void;
  /**
   * call cb once if the client half-closes while the request runs (at once
   * if it already has): nginx's upstream check_broken_connection read
   * handler; cb returns true to end the request there (499, connection closed)
   */
  checkBroken(cb: () => boolean): void;
  /**
   * ngx_http_discard_request_body: answer Expect: 100-continue, drop the
   * body (a no-op once read or for subrequests); 400 when a chunked body is
   * already seen to be malformed, else OK
   */
  discardBody(): number;
  /** end the body and the request (log phase, then keep-alive or close) */
  finish(): void;
  /**
   * ngx_http_finalize_request(r, status): status >= 100 before the header
   * was sent → error page (or error_page); after it → the connection is closed.
   * OK → finish(). DONE → nothing.
   */
  finalize(status: number): void;
  /**
   * ngx_http_send_response: a complete response with this body (rewrite's
   * `return CODE TEXT`); for 301/302/303/307/308 `body` is the Location.
   */
  sendResponse(status: number, body: string): void;
  /** internal redirect to a URI (args split at `?`) or a named location `@x` */
  internalRedirect(uri: string, args?: string): void;

  /** log a line at `level` with nginx's request context suffix */
  log(level: LogLevel, msg: string): void;
}

/** A rewrite/access phase hook: returns DECLINED to go on, or a status to finalize with. */
export type PhaseHandler = (r: Request) => number;

/**
 * A content handler (nginx's clcf->handler): produces the whole response.
 * It may finish synchronously or return a promise; a returned status >= 100
 * makes the engine send that status's error page; DONE means the handler
 * called r.finish()/r.finalize() itself (or will).
 */
export interface ContentHandler {
  (r: Request): number | Promise<number>;
  /**
   * the handler reads (or leaves) the request body itself, as nginx's own
   * handlers do (echo's echo_read_request_body); unset: the engine reads the
   * whole body before the handler runs
   */
  ownBody?: boolean;
}
