import { hostname } from 'node:os';
import { NGINX_VERSION } from '../core/version.js';
import { basicCredentials } from './auth_user.js';
import { evalComplexValue } from './eval.js';
import type { HttpRequest } from './http_request.js';
import { parseSize } from '../conf/values.js';
import type { Request } from './request.js';
import { mapUriToPath } from './static.js';
import { contentTypeLine } from './types.js';
import { VAR_CHANGEABLE, VAR_NOCACHEABLE, VAR_PREFIX, type Variables } from './variables.js';

/*
 * The variables nginx's core, upstream and log modules define (docs/behaviour.md §4).
 * Names are registered at config time so `unknown "x" variable` is judged
 * as nginx judges it; getters are attached by the request side.
 */

const EXACT = [
  'args', 'query_string', 'is_args', 'uri', 'document_uri', 'request_uri', 'request_method', 'request',
  'request_body', 'request_length', 'content_length', 'content_type', 'remote_addr', 'remote_port',
  'remote_user', 'binary_remote_addr', 'server_addr', 'server_port', 'server_name', 'server_protocol',
  'host', 'hostname', 'scheme', 'https', 'status', 'body_bytes_sent', 'bytes_sent', 'request_time',
  'msec', 'time_local', 'time_iso8601', 'pid', 'nginx_version', 'connection', 'connection_requests',
  'document_root', 'realpath_root', 'request_filename', 'request_id', 'request_completion',
  'upstream_addr', 'upstream_status', 'upstream_response_time', 'upstream_connect_time',
  'upstream_header_time', 'upstream_response_length', 'upstream_bytes_received', 'upstream_bytes_sent',
  'http_user_agent', 'http_referer', 'http_via', 'http_x_forwarded_for', 'http_cookie', 'http_host',
  'sent_http_content_type', 'sent_http_content_length', 'sent_http_location', 'sent_http_last_modified',
  'sent_http_connection', 'sent_http_keep_alive', 'sent_http_transfer_encoding', 'sent_http_cache_control',
  'sent_http_link', 'limit_rate', 'tcpinfo_rtt', 'tcpinfo_rttvar', 'tcpinfo_snd_cwnd', 'tcpinfo_rcv_space',
  'proxy_protocol_addr', 'proxy_protocol_port', 'proxy_protocol_server_addr', 'proxy_protocol_server_port',
  'msie_refresh', 'request_body_file', 'connection_time',
];

const PREFIXES = ['http_', 'sent_http_', 'sent_trailer_', 'cookie_', 'arg_', 'upstream_http_', 'upstream_trailer_', 'upstream_cookie_'];

export function defineCoreVariables(vars: Variables): void {
  for (const name of EXACT) vars.add(undefined, name, VAR_NOCACHEABLE);
  for (const p of PREFIXES) vars.add(undefined, p, VAR_PREFIX | VAR_NOCACHEABLE);
  // nginx's only CHANGEABLE core variables: `set $args` / `set $limit_rate` are allowed
  const args = vars.defs.get('args')!;
  args.flags |= VAR_CHANGEABLE;
  args.set = (r, v) => {
    r.args = v;
  };
  const rate = vars.defs.get('limit_rate')!;
  rate.flags |= VAR_CHANGEABLE;
  // ngx_http_variable_set_limit_rate: a size, else an error line and no change
  rate.set = (r, v) => {
    const n = parseSize(v);
    if (n === -1) {
      r.log('error', `invalid $limit_rate "${v}"`);
      return;
    }
    const h = r as HttpRequest;
    h.limitRate = n;
    h.limitRateSet = true;
  };
  rate.get = (r) => String((r as HttpRequest).limitRate);
}

// ------------------------------------------------------------------ getters

type R = HttpRequest;
const G: Record<string, (r: R, name: string) => string | undefined> = {
  args: (r) => r.args,
  query_string: (r) => r.args,
  is_args: (r) => (r.args.length ? '?' : ''),
  uri: (r) => r.uri,
  document_uri: (r) => r.uri,
  request_uri: (r) => r.requestUri,
  // r->main->method_name: subrequests report the client's method
  request_method: (r) => r.main.method,
  request: (r) => r.requestLine,
  request_body: (r) => (r.body && r.bodyState === 'read' ? Buffer.concat(r.body).toString('latin1') : undefined),
  request_length: (r) => String(r.headerLength + (r.bodyRaw >= 0 ? r.bodyRaw : r.body ? r.body.reduce((n, b) => n + b.length, 0) : 0)),
  // ngx_http_variable_content_length: the header, else (a chunked body once read) its size
  content_length: (r) => {
    const h = r.req.byName.get('content-length');
    if (h === undefined && r.discardDone) return '0';
    if (h === undefined && r.chunkedIn) {
      const want = r.conn.discardingChunked(r);
      if (want !== undefined) return String(want);
    }
    if (h !== undefined || !r.chunkedIn || r.bodyState !== 'read' || r.body === undefined) return h;
    let n = 0;
    for (const b of r.body) n += b.length;
    return String(n);
  },
  content_type: (r) => r.req.byName.get('content-type'),
  remote_addr: (r) => r.conn.remoteAddr,
  remote_port: (r) => (r.conn.remotePort ? String(r.conn.remotePort) : ''),
  binary_remote_addr: (r) => binaryAddr(r.conn.remoteAddr),
  server_addr: (r) => r.conn.localAddr,
  server_port: (r) => (r.conn.localPort ? String(r.conn.localPort) : ''),
  server_name: (r) => r.serverName,
  server_protocol: (r) => r.protocol,
  host: (r) => r.host || r.serverName,
  hostname: () => hostname(),
  scheme: (r) => (r.conn.tls?.secure ? 'https' : 'http'),
  https: (r) => (r.conn.tls?.secure ? 'on' : ''),
  status: (r) => String(r.errStatus || r.status || 0).padStart(3, '0'),
  body_bytes_sent: (r) => String(r.bodyBytesSent),
  bytes_sent: (r) => String(r.bytesSent),
  request_time: (r) => ((Date.now() - r.startTime) / 1000).toFixed(3),
  msec: () => (Date.now() / 1000).toFixed(3),
  time_local: () => timeLocal(new Date()),
  time_iso8601: () => timeIso(new Date()),
  pid: () => String(process.pid),
  nginx_version: () => NGINX_VERSION,
  connection: (r) => String(r.connectionId),
  connection_requests: (r) => String(r.connectionRequests),
  document_root: (r) => (r.loc.rootValue ? evalComplexValue(r, r.loc.rootValue) : r.loc.root),
  realpath_root: (r) => (r.loc.rootValue ? evalComplexValue(r, r.loc.rootValue) : r.loc.root),
  request_filename: (r) => mapUriToPath(r),
  request_completion: (r) => (r.finished && !r.aborted ? 'OK' : ''),
  // ngx_http_variable_remote_user: the user of Authorization: Basic
  remote_user: (r) => basicCredentials(r)?.user.toString('latin1'),
  upstream_addr: (r) => r.upstreamVars?.addrList() ?? r.upstreamAddr?.replace(/^redis2:\/\//, ''),
  upstream_status: (r) => r.upstreamVars?.status(),
  upstream_response_time: (r) => r.upstreamVars?.responseTime(),
  upstream_connect_time: (r) => r.upstreamVars?.connectTime(),
  sent_http_content_type: (r) => (r.contentType ? contentTypeLine(r as HttpRequest) : undefined),
  sent_http_content_length: (r) => (r.contentLength >= 0 ? String(r.contentLength) : undefined),
  sent_http_location: (r) => r.location,
  sent_http_connection: (r) => (r.headerSent ? (r.keepalive ? 'keep-alive' : 'close') : undefined),
  sent_http_transfer_encoding: (r) => (r.chunked ? 'chunked' : undefined),
};

function headerIn(r: R, name: string): string | undefined {
  if (r.req.oddNames) return oddHeaderIn(r, name);
  return r.req.byName.get(name.replace(/_/g, '-'));
}

/**
 * ngx_http_variable_unknown_header when names may hold `_` (or other odd
 * bytes): the first header whose lowercased name, `-` read as `_`, is the
 * variable's; Cookie and X-Forwarded-For still come joined, as headers_in has them
 */
function oddHeaderIn(r: R, name: string): string | undefined {
  const dashed = name.replace(/_/g, '-');
  if (dashed === 'cookie' || dashed === 'x-forwarded-for') return r.req.byName.get(dashed);
  for (const [n, v] of r.req.headers) {
    if (n.length === name.length && n.toLowerCase().replace(/-/g, '_') === name) return v;
  }
  return undefined;
}

const PREFIX_GETTERS: Record<string, (r: R, name: string) => string | undefined> = {
  http_: (r, name) => headerIn(r, name.slice(5)),
  sent_http_: (r, name) => {
    const want = name.slice(10).replace(/_/g, '-');
    for (const [k, v] of r.headersOut) if (k.toLowerCase() === want) return v;
    return undefined;
  },
  cookie_: (r, name) => {
    const c = r.req.byName.get('cookie');
    if (c === undefined) return undefined;
    const want = name.slice(7);
    for (const part of c.split(/;\s*/)) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim().toLowerCase() === want) return part.slice(eq + 1);
    }
    return undefined;
  },
  arg_: (r, name) => argValue(r.args, name.slice(4)),
};

/** ngx_http_arg: the first `name=value` of the query string (name case-insensitive) */
export function argValue(args: string, name: string): string | undefined {
  if (!args.length) return undefined;
  let start = 0;
  while (start <= args.length) {
    let end = args.indexOf('&', start);
    if (end === -1) end = args.length;
    const eq = args.indexOf('=', start);
    if (eq !== -1 && eq < end && eq - start === name.length && args.slice(start, eq).toLowerCase() === name) {
      return args.slice(eq + 1, end);
    }
    start = end + 1;
  }
  return undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => String(n).padStart(2, '0');
function tz(d: Date, colon: boolean): string {
  const off = -d.getTimezoneOffset();
  const s = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return `${s}${p2(Math.floor(a / 60))}${colon ? ':' : ''}${p2(a % 60)}`;
}
function timeLocal(d: Date): string {
  return `${p2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${tz(d, false)}`;
}
function timeIso(d: Date): string {
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${tz(d, true)}`;
}

/** Attach the request-side getters to the registry's core definitions. */
export function attachCoreVariables(vars: Variables): void {
  for (const [name, get] of Object.entries(G)) {
    const def = vars.defs.get(name);
    if (def && def.get === undefined) def.get = get as (r: Request, name: string) => string | undefined;
  }
  for (const p of vars.prefixes) {
    const get = PREFIX_GETTERS[p.name];
    if (get && p.get === undefined) p.get = get as (r: Request, name: string) => string | undefined;
  }
  // exact names nginx also defines (http_user_agent, sent_http_location...) are served by their prefix
  for (const def of vars.defs.values()) {
    if (def.get !== undefined) continue;
    const p = vars.prefixes.find((d) => def.name.startsWith(d.name));
    if (p?.get) def.get = p.get;
  }
}

/**
 * ngx_http_variable_binary_remote_addr: 4 bytes for IPv4, 16 for IPv6
 * (the address text as the connection, or realip, has it), `unix:` as is.
 */
export function binaryAddr(a: string): string {
  if (a.indexOf(':') === -1) return String.fromCharCode(...a.split('.').map(Number));
  if (a === 'unix:') return a;
  const pct = a.indexOf('%');
  let text = pct === -1 ? a : a.slice(0, pct);
  // an embedded dotted quad (::ffff:1.2.3.4) is the last two words
  const dot = text.lastIndexOf('.');
  if (dot !== -1) {
    const colon = text.lastIndexOf(':');
    const q = text.slice(colon + 1).split('.').map(Number);
    text = `${text.slice(0, colon + 1)}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const gap = text.indexOf('::');
  const words = (p: string): number[] => (p === '' ? [] : p.split(':').map((x) => parseInt(x, 16)));
  let all: number[];
  if (gap === -1) all = words(text);
  else {
    const h = words(text.slice(0, gap));
    const t = words(text.slice(gap + 2));
    all = [...h, ...Array<number>(Math.max(0, 8 - h.length - t.length)).fill(0), ...t];
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    const w = all[i] ?? 0;
    out += String.fromCharCode(w >> 8, w & 0xff);
  }
  return out;
}
