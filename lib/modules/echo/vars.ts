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
 * it, request line first, up to and including the empty line. nginx copies
 * its header buffers, where it had written a NUL after each accepted
 * header's name and value; the module turns each back: before an LF into
 * CR, else the first of a pair into `:` and the second into LF (so a value
 * with trailing blanks comes out as `value\n  \r\n`). A head refused
 * before it was whole is rebuilt from the lines parsed.
 */
const clientRequestHeaders: VarGetter = (r) => {
  const main = (r as HttpRequest).main;
  const raw = main.rawHead;
  if (raw === undefined) {
    let s = `${main.requestLine}\r\n`;
    if (main.version < 1000) return s;
    for (const [name, value] of main.req.headers) s += `${name}: ${value}\r\n`;
    return `${s}\r\n`;
  }
  return restoreNuls(raw.toString('latin1'), main.req.headers);
};

/** the head with nginx's NULs (name end, value end of each accepted header) turned back as the module does */
function restoreNuls(head: string, headers: Array<[string, string]>): string {
  const b = Buffer.from(head, 'latin1');
  // where nginx wrote its NULs: found by walking the lines against the accepted headers, in order
  let at = head.indexOf('\n') + 1; // the request line is never touched
  let k = 0;
  while (at < head.length && k < headers.length) {
    let eol = head.indexOf('\n', at);
    if (eol === -1) eol = head.length - 1;
    const name = headers[k]![0];
    if (head.startsWith(name, at) && head[at + name.length] === ':') {
      k++;
      b[at + name.length] = 0;
      // ngx_http_parse_header_line: the value is what lies between spaces (only spaces) and the line end
      let v = at + name.length + 1;
      let e = eol > at && head[eol - 1] === '\r' ? eol - 1 : eol;
      while (v < e && head[v] === ' ') v++;
      while (e > v && head[e - 1] === ' ') e--;
      b[e] = 0;
    }
    at = eol + 1;
  }
  // ngx_http_echo_client_request_headers_variable's loop
  let n = 0;
  for (let p = 0; p < b.length; p++) {
    if (b[p] !== 0) continue;
    n++;
    if (p + 1 !== b.length && b[p + 1] === 0x0a) b[p] = 0x0d;
    else b[p] = n % 2 === 1 ? 0x3a : 0x0a;
  }
  const s = b.toString('latin1');
  // the head ends at the first empty line; else at the last line end (a CR LF there made LF LF)
  for (const end of ['\r\n\r\n', '\r\n\n', '\n\r\n']) {
    const i = s.indexOf(end);
    if (i !== -1) return s.slice(0, i + end.length);
  }
  for (let p = s.length - 1; p >= 2; p--) {
    if (s[p] === '\n' && s[p - 1] === '\r') return `${s.slice(0, p - 1)}\n\n`;
    if (s[p] === '\n' && s[p - 1] === '\n') return s.slice(0, p + 1);
  }
  // nginx's length then counts its terminating NUL
  return `${s}\0`;
}

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
