import type { CompiledRegex } from '../../conf/regex.js';
import type { ComplexValue } from '../../http/script.js';
import type { UpstreamLocal, UpstreamSrvConf } from '../../upstream/module.js';

/* The fastcgi module's conf shapes, read by the directives (module.ts) and the request side. */

export type FastcgiTarget =
  | { kind: 'upstream'; upstream: UpstreamSrvConf }
  /** `fastcgi_pass $var`: an upstream block by name, evaluated per request */
  | { kind: 'complex'; value: ComplexValue };

/** One `fastcgi_param NAME VALUE [if_not_empty]`. */
export interface FastcgiParam {
  name: string;
  value: ComplexValue;
  ifNotEmpty: boolean;
}

export interface FastcgiLocConf {
  target: FastcgiTarget | undefined;
  /** fastcgi_param in order (inherited as a whole) */
  params: FastcgiParam[] | undefined;
  /** merged: the HTTP_* names the params set (those client headers are not passed) */
  httpParams: Set<string>;
  index: ComplexValue | undefined;
  splitPathInfo: CompiledRegex | undefined;
  keepConn: number;
  interceptErrors: number;
  hideHeaders: string[] | undefined;
  passHeaders: string[] | undefined;
  hidden: Set<string>;
  ignoreHeaders: number;
  nextUpstream: number;
  nextUpstreamTries: number;
  nextUpstreamTimeout: number;
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  buffering: number;
  requestBuffering: number;
  bufferSize: number;
  buffers: { num: number; size: number };
  busyBuffersSize: number;
  passRequestHeaders: number;
  passRequestBody: number;
  bind: UpstreamLocal | null | undefined;
  ignoreClientAbort: number;
  /** PREFIX_socket_keepalive: SO_KEEPALIVE on new upstream sockets */
  socketKeepalive: number;
  /** PREFIX_limit_rate: bytes/s read from the peer (buffering on only, as nginx's event pipe) */
  limitRate: number;
  /** PREFIX_force_ranges: byte ranges on the backend's responses */
  forceRanges: number;
  /** fastcgi_catch_stderr strings (undefined: none) */
  catchStderr: string[] | undefined;
}
