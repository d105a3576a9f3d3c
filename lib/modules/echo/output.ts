import type { HttpRequest } from '../../http/http_request.js';
import { OK } from '../../http/request.js';
import type { EchoCtx } from './ctx.js';

/*
 * Output helpers of the echo handler (ngx_http_echo_util.c): the header
 * sent once, with echo_status, and body buffers after it. Writes never
 * report backpressure to the command loop: nginx's output chain keeps
 * what the socket does not take yet, and echo goes on.
 */

/** the run is suspended; something will resume it (NGX_AGAIN) */
export const AGAIN = -2;
export const EMPTY = Buffer.alloc(0);

/** ngx_http_echo_send_header_if_needed: echo_status, types/default_type, no Content-Length */
export function sendHeaderIfNeeded(r: HttpRequest, ctx: EchoCtx): number {
  if (r.headerSent || ctx.headerSent) return OK;
  r.status = ctx.conf ? ctx.conf.status : 200;
  r.contentLength = -1;
  r.sendHeader();
  ctx.headerSent = true;
  return OK;
}

/** ngx_http_echo_send_chain_link with data */
export function send(r: HttpRequest, ctx: EchoCtx, data: Buffer): number {
  const rc = sendHeaderIfNeeded(r, ctx);
  if (rc !== OK || r.headerOnly) return rc;
  r.send(data);
  return OK;
}
