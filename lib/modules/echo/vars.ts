import type { Conf } from '../../conf/parser.js';
import type { HttpRequest } from '../../http/http_request.js';
import { VAR_NOCACHEABLE, httpVariables, type VarGetter } from '../../http/variables.js';
import { getCtx, getOrCreateCtx } from './ctx.js';

/*
 * The echo module's variables (ngx_http_echo_var.c and the getters of
 * ngx_http_echo_request_info.c, ngx_http_echo_timer.c and
 * ngx_http_echo_foreach.c). An undefined value is nginx's not_found: an
 * empty string in echo's output.
 */

/**
 * The body as nginx holds it once read: in memory, or written to a temp
 * file (then $echo_request_body is not found). Decided by the main
 * request, which read it; an echo_subrequest -b body is in memory.
 */
export function bodyInFile(r: HttpRequest): boolean {
  const main = r.main;
  const body = r.body;
  if (body === undefined || body !== main.body || main.bodyState !== 'read') return false;
  let total = 0;
  for (const b of body) total += b.length;
  if (total === 0) return false;
  // ngx_http_read_client_request_body: what came with the head (client_header_buffer_size
  // minus the head) is kept in memory when it holds the whole body; else the rest gets a buffer
  // of client_body_buffer_size (a quarter more for a Content-Length body that then fits) and
  // a body that does not fit in it goes to a temp file
  const preread = Math.max(0, main.srv.clientHeaderBufferSize - main.headerLength);
  if (!main.chunkedIn && total <= preread) return false;
  const size = main.loc.clientBodyBufferSize;
  const rest = main.chunkedIn ? total : total - preread;
  if (!main.chunkedIn && rest < size + (size >> 2)) return false;
  return rest > size;
}

/** $echo_request_body: the body read so far when it is all in memory (not_found otherwise) */
export function echoRequestBody(r: HttpRequest): string | undefined {
  const body = r.body;
  // an echo_subrequest -f body is an in-file buffer: r.body is empty then
  if (r.bodyState === 'none' || r.bodyState === 'reading' || body === undefined || body.length === 0) return undefined;
  if (bodyInFile(r)) return undefined;
  return body.length === 1 ? body[0]!.toString('latin1') : Buffer.concat(body).toString('latin1');
}

/** $echo_timer_elapsed: seconds with milliseconds since the request started or echo_reset_timer */
const timerElapsed: VarGetter = (r) => {
  const ctx = getOrCreateCtx(r);
  if (ctx.timerBegin === 0) ctx.timerBegin = r.startTime;
  const ms = Math.max(0, Date.now() - ctx.timerBegin);
  return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}`;
};

/**
 * $echo_client_request_headers: the main request's head as the client sent
 * it, request line first, up to and including the empty line (nginx copies
 * it from its header buffers). A head refused before it was whole is
 * rebuilt from the lines parsed, each `Name: value` ended by CRLF.
 */
const clientRequestHeaders: VarGetter = (r) => {
  const main = (r as HttpRequest).main;
  if (main.rawHead !== undefined) return main.rawHead.toString('latin1');
  let s = `${main.requestLine}\r\n`;
  if (main.version < 1000) return s;
  for (const [name, value] of main.req.headers) s += `${name}: ${value}\r\n`;
  return `${s}\r\n`;
};

/** $echo_it: the current item of echo_foreach_split */
const it: VarGetter = (r) => {
  const f = getCtx(r)?.foreach;
  if (f === undefined || f.next >= f.choices.length) return undefined;
  return f.choices[f.next];
};

/** $echo_incr: a counter on the main request's context, one up at each read */
const incr: VarGetter = (r) => {
  const ctx = getCtx((r as HttpRequest).main);
  // nginx fails the evaluation when the main request has no echo context
  if (ctx === undefined) return undefined;
  ctx.counter++;
  return String(ctx.counter);
};

const uri: VarGetter = (r) => (r.uri.length ? r.uri : undefined);

export function addEchoVariables(cf: Conf): void {
  const vars = httpVariables(cf);
  const add = (name: string, flags: number, get: VarGetter): void => {
    vars.add(cf, name, flags).get = get;
  };
  add('echo_timer_elapsed', VAR_NOCACHEABLE, timerElapsed);
  add('echo_request_method', VAR_NOCACHEABLE, (r) => r.method || undefined);
  add('echo_cacheable_request_uri', 0, uri);
  // its getter marks the value no_cacheable, as the flag would
  add('echo_request_uri', VAR_NOCACHEABLE, uri);
  add('echo_client_request_method', VAR_NOCACHEABLE, (r) => (r as HttpRequest).main.method || undefined);
  add('echo_request_body', VAR_NOCACHEABLE, (r) => echoRequestBody(r as HttpRequest));
  add('echo_client_request_headers', VAR_NOCACHEABLE, clientRequestHeaders);
  add('echo_it', VAR_NOCACHEABLE, it);
  add('echo_incr', VAR_NOCACHEABLE, incr);
  add('echo_response_status', VAR_NOCACHEABLE, (r) => (r.status ? String(r.status) : undefined));
}
