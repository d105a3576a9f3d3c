import { createRequire } from 'node:module';
import type { Dispatcher, Pool } from 'undici';
import type { HttpRequest } from '../../http/http_request.js';
import {
  ACTION_BODY,
  ACTION_CONNECT,
  ACTION_HEADER,
  ACTION_SEND,
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

/*
 * One exchange with one HTTP peer, on undici (the project's HTTP client):
 * a Pool per peer address and per connection settings, so that a request
 * never waits for a connection (nginx opens another), keep-alive only where
 * the upstream has `keepalive` (else every request closes its connection,
 * as nginx's default `Connection: close`), and undici's low-level dispatch
 * API: raw header lines in the backend's order, and backpressure from the
 * client (a false from onData pauses the backend's socket until the client
 * drains). Errors become nginx's log lines and statuses
 * (lib/upstream/messages.ts); the outcome goes to the generic loop.
 *
 * What undici decides for us (README, Differences): the request line says
 * HTTP/1.1 whatever proxy_http_version says, and undici adds a
 * `connection: keep-alive` line when the request keeps its connection.
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

const pools = new Map<string, Pool>();

/*
 * undici is loaded when a worker first proxies a request, not at start:
 * a config without proxy_pass pays nothing for it (memory, start time).
 */
let PoolClass: typeof Pool | undefined;
function undiciPool(): typeof Pool {
  PoolClass ??= (createRequire(import.meta.url)('undici') as typeof import('undici')).Pool;
  return PoolClass;
}

function poolFor(run: ProxyRun, peer: PeerTarget, keepalive: boolean, idleMs: number): Pool {
  const plcf = run.plcf;
  const tls = run.req.tls;
  const bind = run.bind;
  const key = `${tls ? 's' : ''}${peer.name}|${plcf.connectTimeout}|${plcf.bufferSize}|${keepalive ? idleMs : 0}|${bind?.host ?? ''}`;
  let pool = pools.get(key);
  if (pool === undefined) {
    const origin = peer.path !== undefined ? 'http://localhost' : `${tls ? 'https' : 'http'}://${peer.host!.includes(':') ? `[${peer.host}]` : peer.host}:${peer.port}`;
    pool = new (undiciPool())(origin, {
      connections: null,
      pipelining: 1,
      connectTimeout: plcf.connectTimeout,
      // nginx fails a response header larger than proxy_buffer_size
      maxHeaderSize: Math.max(plcf.bufferSize, 1024),
      keepAliveTimeout: keepalive ? idleMs : 1,
      keepAliveMaxTimeout: keepalive ? idleMs : 1,
      socketPath: peer.path,
      // proxy_bind (a port would collide across a pool's connections: nginx binds it per connection too)
      localAddress: bind?.host,
      // nginx's proxy_ssl_verify is off by default
      connect: tls ? { rejectUnauthorized: false } : undefined,
    });
    pools.set(key, pool);
  }
  return pool;
}

const enum Phase {
  Connecting,
  Sending,
  Reading,
  Body,
  Done,
}

export class ProxyTry implements Dispatcher.DispatchHandler {
  private readonly run: ProxyRun;
  private readonly peer: PeerTarget;
  private readonly t0 = performance.now();
  private phase = Phase.Connecting;
  private connectTime: number | undefined = undefined;
  private abortFn: ((err?: Error) => void) | undefined = undefined;
  private started = false;
  private resumeFn: (() => void) | undefined = undefined;
  /** the client pushed back: the next piece pauses the backend until it drains */
  private blocked = false;
  private paused = false;
  /*
   * What one socket read brought (undici hands it over piece by piece, one
   * per chunk of a chunked body) goes out as one piece, as nginx sends what
   * one recv() filled its buffer with.
   */
  private pending: Buffer[] = [];
  private flushQueued = false;
  private readonly flushFn = (): void => this.flush();
  private readonly onDrained = (): void => {
    this.blocked = false;
    if (!this.paused) return;
    this.paused = false;
    const resume = this.resumeFn;
    if (resume !== undefined && this.phase !== Phase.Done) resume();
  };

  constructor(run: ProxyRun, peer: PeerTarget) {
    this.run = run;
    this.peer = peer;
    const us = run.upstream;
    const ka = us.keepalive;
    const keepalive = ka.active && ka.maxCached > 0;
    const idle = ka.timeout > 0 ? ka.timeout : 60000;
    const req = run.req;
    const pool = poolFor(run, peer, keepalive, idle);
    pool.dispatch(
      {
        path: req.path,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        headersTimeout: run.plcf.readTimeout,
        bodyTimeout: run.plcf.readTimeout,
        // without an upstream keepalive cache nginx closes every connection after its response
        reset: !keepalive,
        idempotent: true,
        blocking: true,
      },
      this,
    );
  }

  action(): string {
    switch (this.phase) {
      case Phase.Connecting:
        return ACTION_CONNECT;
      case Phase.Sending:
        return ACTION_SEND;
      case Phase.Reading:
        return ACTION_HEADER;
      default:
        return ACTION_BODY;
    }
  }

  private settle(status: number, complete: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.phase === Phase.Done) return;
    const action = this.action();
    this.phase = Phase.Done;
    this.run.tryDone({
      status,
      started: this.started,
      complete,
      reusable: complete,
      failure,
      aborted,
      cached: false,
      sent: this.connectTime !== undefined,
      action,
      connectTime: this.connectTime,
      responseTime: performance.now() - this.t0,
    });
  }

  /** the client went away: close the backend connection */
  abort(): void {
    if (this.phase === Phase.Done) return;
    this.settle(this.started ? this.run.r.status : 499, false, undefined, true);
    this.abortFn?.();
  }

  /** drop the exchange (a response the location will not pass on) */
  private discard(): void {
    const abort = this.abortFn;
    if (abort !== undefined) abort();
  }

  // ---- undici's dispatch handler

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.phase === Phase.Done) {
      abort();
      return;
    }
    this.connectTime = performance.now() - this.t0;
    this.phase = Phase.Sending;
  }

  /** the whole request went out: now the response header is awaited */
  onRequestSent(): void {
    if (this.phase === Phase.Sending) this.phase = Phase.Reading;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.phase === Phase.Done) return false;
    if (statusCode < 200) return true;
    this.phase = Phase.Reading;
    const run = this.run;
    const r = run.r as HttpRequest;
    // *_next_upstream http_5xx / http_404 ...: discard this response, try the next peer
    const failure = STATUS_FAILURE.get(statusCode);
    if (failure !== undefined && run.wouldRetry(failure, true)) {
      this.settle(statusCode, false, failure, false);
      this.discard();
      return false;
    }
    // proxy_intercept_errors: an error_page for this status answers instead
    if (run.plcf.interceptErrors && statusCode >= 300 && r.loc.errorPages?.some((p) => p.status === statusCode)) {
      this.settle(statusCode, false, undefined, false);
      this.discard();
      return false;
    }
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!.toString('latin1'), rawHeaders[i + 1]!.toString('latin1')]);
    copyResponseHeaders(r, statusCode, statusText, pairs, run.policy);
    this.started = true;
    this.phase = Phase.Body;
    run.started(statusCode);
    this.resumeFn = resume;
    // the header leaves with the body this read brought (one write), or alone at the end of the turn
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushFn);
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.phase === Phase.Done) return false;
    this.pending.push(chunk);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushFn);
    }
    if (!this.blocked) return true;
    this.paused = true;
    return false;
  }

  private flush(): void {
    this.flushQueued = false;
    const p = this.pending;
    const r = this.run.r as HttpRequest;
    if (this.phase === Phase.Done) return;
    if (p.length === 0) {
      if (!r.headerSent && this.started) r.sendHeader();
      return;
    }
    this.pending = [];
    let ok = true;
    if (p.length === 1 || !r.chunked) {
      // the framing is not seen (a length or a close delimits the body): no copy
      for (let i = 0; i < p.length; i++) ok = r.send(p[i]!) && ok;
    } else ok = r.send(Buffer.concat(p));
    if (ok || r.aborted) return;
    this.blocked = true;
    r.onDrain(this.onDrained);
  }

  onComplete(): void {
    this.flush();
    this.settle(this.run.r.status, true, undefined, false);
  }

  onError(err: Error): void {
    if (this.phase === Phase.Done) return;
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? '';
    const run = this.run;
    const action = this.action();
    if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      run.log('error', timedOut(action));
      return this.settle(504, false, 'timeout', false);
    }
    if (this.phase === Phase.Connecting && (e.syscall === 'connect' || code === 'ECONNREFUSED' || code === 'ENOENT')) {
      const line = connectFailed(this.peer, e);
      run.log(line.level, line.msg);
      return this.settle(502, false, 'error', false);
    }
    if (code === 'UND_ERR_HEADERS_OVERFLOW') {
      run.log('error', `upstream sent too big header while ${ACTION_HEADER}`);
      return this.settle(502, false, 'invalid_response', false);
    }
    if (code.startsWith('HPE_')) {
      run.log('error', `upstream sent no valid HTTP/1.0 header while ${ACTION_HEADER}`);
      return this.settle(502, false, 'invalid_response', false);
    }
    if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED') {
      // a reset reads as recv() failing; a clean close before the end as a premature close
      const cause = (e as Error & { cause?: NodeJS.ErrnoException }).cause;
      if (cause?.code === 'ECONNRESET') run.log('error', ioFailed(this.phase !== Phase.Sending, cause, action));
      else run.log('error', prematurelyClosed(action));
      return this.settle(502, false, 'error', false);
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      run.log('error', ioFailed(this.phase !== Phase.Sending, e, action));
      return this.settle(502, false, 'error', false);
    }
    if (code === 'UND_ERR_ABORTED' || code === 'UND_ERR_INFO') return this.settle(502, false, 'error', false);
    run.log('alert', `proxy request failed: ${err.message}`);
    this.settle(this.started ? 502 : 500, false, undefined, false);
  }
}

/** close every pool (a worker stopping); idle connections would keep it alive otherwise */
export function closeProxyPools(): void {
  for (const p of pools.values()) void p.destroy().catch(() => {});
  pools.clear();
}
