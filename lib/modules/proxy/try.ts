import net from 'node:net';
import tls from 'node:tls';
import type { HttpRequest } from '../../http/http_request.js';
import { UpstreamConn, type ConnUser } from '../../upstream/conn.js';
import { poolOf, type ConnectionPool } from '../../upstream/keepalive.js';
import {
  ACTION_BODY,
  ACTION_CONNECT,
  ACTION_HEADER,
  ACTION_SEND,
  bindFailed,
  connectFailed,
  ioFailed,
  prematurelyClosed,
  timedOut,
} from '../../upstream/messages.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { copyResponseHeaders } from '../../upstream/response.js';
import { STATUS_FAILURE, type Failure } from '../../upstream/run.js';
import type { LogLevel } from '../../core/error_log.js';
import type { Request } from '../../http/request.js';
import type { LocalAddress } from '../../upstream/bind.js';
import type { UpstreamSrvConf } from '../../upstream/module.js';
import type { HeaderPolicy } from '../../upstream/response.js';
import type { TryOwner } from '../../upstream/run.js';
import type { ProxyLocConf } from './conf.js';
import { BODY_DONE, BODY_INVALID, Body, BodyReader, HeadParser, type ResponseHead } from './http1.js';

/*
 * One HTTP/1.x exchange with one backend (ngx_http_proxy_module's
 * create_request / process_header / input filters over the generic
 * upstream loop), on the upstream layer's connections: the request head
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
}

/** What a try needs from its run (handler.ts ProxyRun): the request, its conf, and the loop's callbacks. */
export interface ProxyRun extends TryOwner {
  readonly r: Request;
  readonly plcf: ProxyLocConf;
  readonly req: ProxyRequest;
  readonly policy: HeaderPolicy;
  readonly upstream: UpstreamSrvConf;
  readonly bind: LocalAddress | undefined;
  log(level: LogLevel, msg: string): void;
  wouldRetry(failure: Failure, sent: boolean): boolean;
  started(status: number): void;
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

const enum Phase {
  Connecting,
  Sending,
  Header,
  Body,
  Done,
}

/** a comma-separated header value holds `token` (case-insensitive) */
function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

export class ProxyTry implements ConnUser {
  private readonly run: ProxyRun;
  private readonly peer: PeerTarget;
  private readonly pool: ConnectionPool;
  private readonly key: string;
  private readonly conn: UpstreamConn;
  private readonly cached: boolean;
  private readonly t0 = performance.now();
  private readonly head: HeadParser;
  private body: BodyReader | undefined = undefined;
  private phase = Phase.Connecting;
  private connectTime: number | undefined = undefined;
  private started = false;
  private sent = false;
  private writeSeq = 0;
  /** the backend asked to close (Connection: close, or an HTTP/1.0 response) */
  private closeAfter = false;
  /** the client pushed back: reading waits for its drain */
  private waiting = false;
  private readonly onDrained = (): void => {
    this.waiting = false;
    if (this.phase === Phase.Done) return;
    this.conn.arm(this.run.plcf.readTimeout);
    this.conn.socket.resume();
  };
  private readonly out = (data: Buffer): void => this.emit(data);

  constructor(run: ProxyRun, peer: PeerTarget) {
    this.run = run;
    this.peer = peer;
    this.head = new HeadParser(Math.max(run.plcf.bufferSize, 64));
    const pool = (this.pool = poolOf(run.upstream));
    this.key = run.req.tls ? `${peer.name}|tls` : peer.name;
    // a bound connection is the request's own (its local address is part of what it asked for)
    const reused = run.bind === undefined ? pool.acquire(this.key) : undefined;
    this.cached = reused !== undefined;
    if (reused !== undefined) {
      this.conn = reused;
      reused.user = this;
      this.connectTime = 0;
      this.send();
      return;
    }
    const b = run.bind;
    let sock: net.Socket;
    if (run.req.tls) {
      // proxy_ssl_verify and proxy_ssl_server_name are off by default: no check, no SNI
      sock = tls.connect({
        host: peer.host,
        port: peer.port ?? 443,
        path: peer.path,
        rejectUnauthorized: false,
        servername: '',
        localAddress: b?.host,
      } as tls.ConnectionOptions);
    } else {
      sock =
        peer.path !== undefined
          ? net.connect({ path: peer.path })
          : net.connect({ host: peer.host, port: peer.port ?? 80, localAddress: b?.host, localPort: b?.port || undefined });
    }
    const conn = (this.conn = new UpstreamConn(sock));
    pool.opened?.(this.key, conn);
    conn.user = this;
    conn.arm(run.plcf.connectTimeout);
  }

  action(): string {
    switch (this.phase) {
      case Phase.Connecting:
        return ACTION_CONNECT;
      case Phase.Sending:
        return ACTION_SEND;
      case Phase.Header:
        return ACTION_HEADER;
      default:
        return ACTION_BODY;
    }
  }

  private settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.phase === Phase.Done) return;
    const action = this.action();
    this.phase = Phase.Done;
    const conn = this.conn;
    conn.user = undefined;
    conn.disarm();
    if (reusable) {
      if (conn.socket.isPaused()) conn.socket.resume();
      this.pool.release(this.key, conn, true);
    } else conn.destroy();
    this.run.tryDone({
      status,
      started: this.started,
      complete,
      reusable,
      failure,
      aborted,
      cached: this.cached,
      sent: this.sent,
      action,
      connectTime: this.connectTime,
      responseTime: performance.now() - this.t0,
    });
  }

  private fail(status: number, failure: Failure, msg: string): void {
    if (msg) this.run.log('error', msg);
    this.settle(this.started ? 200 : status, false, false, failure, false);
  }

  /** the client went away: close the backend connection */
  abort(): void {
    if (this.phase === Phase.Done) return;
    this.settle(this.started ? this.run.r.status : 499, false, false, undefined, true);
  }

  private send(): void {
    this.phase = Phase.Sending;
    this.sent = true;
    this.conn.arm(this.run.plcf.sendTimeout);
    this.writeSeq = this.conn.write(requestBytes(this.run.req, this.run.plcf.httpVersion));
  }

  // ---- ConnUser

  connConnect(): void {
    this.connectTime = performance.now() - this.t0;
    this.send();
  }

  connWritten(_c: UpstreamConn, seq: number, err: Error | null | undefined): void {
    if (seq !== this.writeSeq || err || this.phase !== Phase.Sending) return;
    this.phase = Phase.Header;
    this.conn.arm(this.run.plcf.readTimeout);
  }

  connTimeout(): void {
    if (this.phase === Phase.Done) return;
    this.fail(504, 'timeout', timedOut(this.action()));
  }

  connError(_c: UpstreamConn, err: NodeJS.ErrnoException): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Connecting) {
      if (err.syscall === 'bind') {
        // nginx cannot even start the connection: 500, no next upstream
        const line = bindFailed(this.run.bind?.text, err);
        this.run.log(line.level, line.msg);
        this.settle(500, false, false, 'error', false);
        return;
      }
      const line = connectFailed(this.peer, err);
      this.run.log(line.level, line.msg);
      this.settle(502, false, false, 'error', false);
      return;
    }
    this.fail(502, 'error', ioFailed(this.phase !== Phase.Sending, err, this.action()));
  }

  connEnd(): void {
    if (this.phase === Phase.Done) return;
    const body = this.body;
    if (this.phase === Phase.Body && body !== undefined && body.kind === Body.Close) {
      // a body delimited by the close: complete
      this.settle(this.run.r.status, true, false, undefined, false);
      return;
    }
    this.fail(502, 'error', prematurelyClosed(this.action()));
  }

  connClose(): void {
    if (this.phase !== Phase.Done) this.connEnd();
  }

  connData(_c: UpstreamConn, chunk: Buffer): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Sending) this.phase = Phase.Header;
    this.conn.arm(this.run.plcf.readTimeout);
    if (this.phase === Phase.Header) {
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
    const run = this.run;
    const r = run.r as HttpRequest;
    const status = head.status;
    const failure = STATUS_FAILURE.get(status);
    if (failure !== undefined && run.wouldRetry(failure, true)) {
      this.settle(status, false, false, failure, false);
      return false;
    }
    if (run.plcf.interceptErrors && status >= 300 && r.loc.errorPages?.some((p) => p.status === status)) {
      this.settle(status, false, false, undefined, false);
      return false;
    }
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
    if (status === 204 || status === 304 || run.req.method === 'HEAD') kind = Body.None;
    else if (chunked) kind = Body.Chunked;
    else if (length === 0) kind = Body.None;
    else if (length > 0) kind = Body.Length;
    else kind = Body.Close;
    this.body = new BodyReader(kind, length);

    copyResponseHeaders(r, status, head.reason, head.headers, run.policy);
    this.started = true;
    this.phase = Phase.Body;
    run.started(status);
    r.sendHeader();
    // a HEAD answer, or a client already gone, may have ended the try inside sendHeader
    return !this.isDone();
  }

  private isDone(): boolean {
    return this.phase === Phase.Done;
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
    if (data.length === 0) return;
    const r = this.run.r;
    if (r.send(data) || r.aborted || this.waiting) return;
    // the client is slow: stop reading until it drains (its socket buffer bounds the memory)
    this.waiting = true;
    this.conn.socket.pause();
    this.conn.disarm();
    r.onDrain(this.onDrained);
  }
}

/** kept for the module's worker exit hook: the connections live in the upstream's keepalive cache now */
export function closeProxyPools(): void {}
