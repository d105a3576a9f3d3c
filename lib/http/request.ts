import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { CoreLocConf, CoreSrvConf } from '../modules/http_core.js';

/*
 * The per-request state every phase reads and writes (nginx's
 * ngx_http_request_t, trimmed). The engine in lib/http/ creates it; module
 * hooks (lib/modules/*) read confs through it and set variables on it.
 *
 * All strings are byte strings (latin1): one char = one byte, so values
 * reach Redis and the client unchanged.
 */

/** Phase handler results, nginx's NGX_* codes; any value >= 100 is an HTTP status to finalize with. */
export const OK = 0;
export const DECLINED = -5;
/** the handler took over the response (async content) */
export const DONE = -4;
export const ERROR = -1;

export interface Request {
  // --- connection and raw request
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
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
  readonly startTime: number;

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
  /** captures of the last successful regex match: [whole, $1, ...]; named ones too */
  captures: string[] | undefined;
  namedCaptures: Record<string, string> | undefined;

  // --- variables
  /** evaluated variables by index; undefined = not yet evaluated */
  vars: (string | undefined)[];

  // --- body
  /** the request body once read, as chunks (latin1 strings avoided: Buffers) */
  body: Buffer[] | undefined;

  // --- response
  status: number;
  /** headers added by modules (add_header and content handlers) */
  headersOut: Array<[string, string]>;
  /** bytes of body sent so far ($body_bytes_sent) */
  bodyBytesSent: number;
  /** error-log context: `, upstream: "redis2://..."` etc. appended to log lines */
  upstreamAddr: string | undefined;

  /** log a line at `level` with nginx's request context suffix */
  log(level: 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug', msg: string): void;
}

/** A rewrite/access phase hook: returns DECLINED to go on, or a status to finalize with. */
export type PhaseHandler = (r: Request) => number;

/**
 * A content handler (nginx's clcf->handler): produces the whole response.
 * It may finish synchronously or return a promise; a returned status >= 100
 * makes the engine send that status's error page.
 */
export type ContentHandler = (r: Request) => number | Promise<number>;
