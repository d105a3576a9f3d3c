import type { Socket } from 'node:net';
import { openUpstreamSocket } from '../../upstream/ssl.js';
import { ConnPhase } from '../../upstream/conn_try.js';
import { HttpConnTry, type HttpTryRun } from '../../upstream/http_try.js';
import { poolOf } from '../../upstream/keepalive.js';
import { ACTION_BODY, ACTION_HEADER } from '../../upstream/messages.js';
import type { PeerTarget } from '../../upstream/peers.js';
import type { ProxyLocConf } from './conf.js';
import { BODY_DONE, BODY_INVALID, Body, BodyReader, HeadParser, type ResponseHead } from './http1.js';

/*
 * One HTTP/1.x exchange with one backend (ngx_http_proxy_module's
 * create_request / process_header / input filters, plugged into the
 * generic try: lib/upstream/conn_try.ts, http_try.ts): the request head
 * exactly as nginx writes it (request line with proxy_http_version, the
 * header lines in nginx's order and spelling) and the body in one write;
 * the response head parsed within proxy_buffer_size (http1.ts), the body
 * streamed to the client with backpressure (the backend's socket pauses
 * while the client is slow), chunked bodies decoded. A response that ends
 * cleanly, with a length or chunked framing and no `Connection: close`,
 * gives its connection back to the upstream's `keepalive` cache.
 */

export interface ProxyRequest {
  method: string;
  path: string;
  /** name, value, name, value... */
  headers: string[];
  body: Buffer | undefined;
  tls: boolean;
  /** the name a TLS backend is checked against and sent as SNI (nginx's u->ssl_name, port stripped) */
  sslName: string;
}

/** What a try needs from its run (handler.ts ProxyRun): the request, its conf, and the loop's callbacks. */
export interface ProxyRun extends HttpTryRun {
  readonly plcf: ProxyLocConf;
  readonly req: ProxyRequest;
}

/** the request's bytes: request line, header lines, blank line, body (built once per request) */
const built = new WeakMap<ProxyRequest, Buffer>();

function requestBytes(req: ProxyRequest, version: number): Buffer {
  let b = built.get(req);
  if (b !== undefined) return b;
  let head = `${req.method} ${req.path} HTTP/1.${version === 1001 ? 1 : 0}\r\n`;
  const h = req.headers;
  for (let i = 0; i + 1 < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
  head += '\r\n';
  const hb = Buffer.from(head, 'latin1');
  b = req.body === undefined || req.body.length === 0 ? hb : Buffer.concat([hb, req.body]);
  built.set(req, b);
  return b;
}

/** a comma-separated header value holds `token` (case-insensitive) */
function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

export class ProxyTry extends HttpConnTry<ProxyRun> {
  private readonly head: HeadParser;
  private body: BodyReader | undefined = undefined;
  /** the backend asked to close (Connection: close, or an HTTP/1.0 response) */
  private closeAfter = false;
  private readonly out = (data: Buffer): void => this.emit(data);

  constructor(run: ProxyRun, peer: PeerTarget) {
    super(run, peer, run.plcf);
    this.head = new HeadParser(Math.max(run.plcf.bufferSize, 64));
    // proxy_limit_rate paces reading only with buffering, as nginx's event pipe
    this.readRate = run.plcf.buffering === 1 ? run.plcf.limitRate : 0;
    this.forceRanges = run.plcf.forceRanges === 1;
    const ssl = run.req.tls ? run.plcf.ssl.rt : undefined;
    // the handshake is part of connecting (its log action; ssl.ts)
    this.sslAction = ssl !== undefined;
    // a bound connection is the request's own (its local address is part of what it asked for);
    // a TLS one is shared only by requests with the same settings and name
    this.begin(poolOf(run.upstream), ssl !== undefined ? `${peer.name}${ssl.poolTag}${run.req.sslName}` : peer.name, run.bind === undefined);
  }

  protected openSocket(): Socket {
    const peer = this.peer;
    const run = this.run;
    const ssl = run.req.tls ? run.plcf.ssl.rt : undefined;
    const sock = openUpstreamSocket({ ...peer, port: peer.port ?? (run.req.tls ? 443 : 80) }, run.bind, ssl, run.req.sslName);
    // proxy_socket_keepalive: SO_KEEPALIVE, the system's probe times (0 leaves them as they are)
    if (run.plcf.socketKeepalive === 1) sock.setKeepAlive(true, 0);
    return sock;
  }

  protected request(): Buffer {
    return requestBytes(this.run.req, this.run.plcf.httpVersion);
  }

  protected override onEnd(): void {
    const body = this.body;
    if (this.phase === ConnPhase.Body && body !== undefined && body.kind === Body.Close) {
      // a body delimited by the close: complete
      this.settle(this.run.r.status, true, false, undefined, false);
      return;
    }
    super.onEnd();
  }

  protected onData(chunk: Buffer): void {
    if (this.phase === ConnPhase.Header) {
      const res = this.head.feed(chunk);
      if (res.state === 'more') return;
      if (res.state === 'error') {
        this.fail(502, res.failure, `${res.message} while ${ACTION_HEADER}`);
        return;
      }
      if (!this.header(res.head)) return;
      if (res.bodyOffset >= chunk.length) {
        // nothing of the body came with the head: a bodiless answer is complete now
        if (this.body!.kind === Body.None) this.complete(0);
        return;
      }
      this.readBody(chunk.subarray(res.bodyOffset));
      return;
    }
    this.readBody(chunk);
  }

  /** the head is complete: next upstream, intercept, or the client's header */
  private header(head: ResponseHead): boolean {
    const status = head.status;
    if (this.diverted(status, this.run.plcf.interceptErrors !== 0)) return false;
    // how the body is delimited (RFC 2616 4.4, as ngx_http_proxy_input_filter_init)
    let chunked = false;
    let length = -1;
    this.closeAfter = head.version < 1001;
    for (const [name, value] of head.headers) {
      const key = name.toLowerCase();
      if (key === 'transfer-encoding') chunked = head.version >= 1001 && hasToken(value, 'chunked');
      else if (key === 'content-length' && /^[0-9]{1,18}$/.test(value)) length = Number(value);
      else if (key === 'connection') {
        if (hasToken(value, 'close')) this.closeAfter = true;
        else if (hasToken(value, 'keep-alive') && head.version < 1001) this.closeAfter = false;
      }
    }
    let kind: Body;
    if (status === 204 || status === 304 || this.run.req.method === 'HEAD') kind = Body.None;
    else if (chunked) kind = Body.Chunked;
    else if (length === 0) kind = Body.None;
    else if (length > 0) kind = Body.Length;
    else kind = Body.Close;
    this.body = new BodyReader(kind, length);
    return this.passHead(status, head.reason, head.headers);
  }

  private readBody(chunk: Buffer): void {
    const body = this.body!;
    const res = body.feed(chunk, this.out);
    if (this.isDone()) return;
    if (res === BODY_INVALID) {
      this.fail(502, 'error', `upstream sent invalid chunked response while ${ACTION_BODY}`);
      return;
    }
    if (res === BODY_DONE) this.complete(body.rest);
  }

  /** the body is complete; `extra` bytes came after it */
  private complete(extra: number): void {
    const body = this.body!;
    if (extra > 0 && body.kind !== Body.None) {
      this.run.log(
        'warn',
        body.kind === Body.Chunked
          ? `upstream sent data after final chunk while ${ACTION_BODY}`
          : `upstream sent more data than specified in "Content-Length" header while ${ACTION_BODY}`,
      );
    }
    const reusable = extra === 0 && !this.closeAfter && !this.waiting && this.run.bind === undefined;
    this.settle(this.run.r.status, true, reusable, undefined, false);
  }

  private emit(data: Buffer): void {
    if (data.length !== 0) this.toClient(this.run.r, data);
  }
}

/** kept for the module's worker exit hook: the connections live in the upstream's keepalive cache now */
export function closeProxyPools(): void {}
