import net from 'node:net';
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
import type { FastcgiLocConf } from './conf.js';
import { CgiHeaderParser, RecordParser, stderrLogText } from './record.js';

/*
 * One FastCGI exchange with one peer (ngx_http_fastcgi_module's
 * process_header / input_filter over the generic upstream): the request's
 * records in one write, then the reply's records parsed as they arrive:
 * STDOUT's CGI header becomes the response header (Status, Location and
 * the rest, lib/upstream/response.ts), the rest of STDOUT streams to the
 * client with backpressure (the socket pauses while the client is slow),
 * STDERR is logged as nginx logs it, END_REQUEST completes the response.
 * With fastcgi_keep_conn on the connection goes back to the upstream's
 * keepalive cache.
 */

/** What a try needs from its run (handler.ts FastcgiRun): the request, its records and conf, the loop's callbacks. */
export interface FastcgiRun extends TryOwner {
  readonly r: Request;
  readonly flcf: FastcgiLocConf;
  readonly records: Buffer[];
  readonly policy: HeaderPolicy;
  readonly upstream: UpstreamSrvConf;
  readonly bind: LocalAddress | undefined;
  log(level: LogLevel, msg: string): void;
  wouldRetry(failure: Failure, sent: boolean): boolean;
  started(status: number): void;
}

const enum Phase {
  Connecting,
  Sending,
  Header,
  Body,
  Done,
}

export class FastcgiTry implements ConnUser {
  private readonly run: FastcgiRun;
  private readonly peer: PeerTarget;
  private readonly pool: ConnectionPool;
  private readonly conn: UpstreamConn;
  private readonly cached: boolean;
  private readonly t0 = performance.now();
  private readonly records = new RecordParser(1);
  private readonly head: CgiHeaderParser;
  private phase = Phase.Connecting;
  private connectTime: number | undefined = undefined;
  private started = false;
  private sent = false;
  private writeSeq = 0;
  /** the client pushed back: reading waits for its drain */
  private waiting = false;
  private readonly onDrained = (): void => {
    this.waiting = false;
    if (this.phase === Phase.Done) return;
    this.conn.arm(this.run.flcf.readTimeout);
    this.conn.socket.resume();
  };

  constructor(run: FastcgiRun, peer: PeerTarget) {
    this.run = run;
    this.peer = peer;
    this.head = new CgiHeaderParser(Math.max(run.flcf.bufferSize, 64));
    const pool = (this.pool = poolOf(run.upstream));
    // a bound connection is the request's own (its local address is part of what it asked for)
    const reused = run.flcf.keepConn && run.bind === undefined ? pool.acquire(peer.name) : undefined;
    this.cached = reused !== undefined;
    if (reused !== undefined) {
      this.conn = reused;
      reused.user = this;
      this.connectTime = 0;
      this.send();
      return;
    }
    const b = run.bind;
    const sock =
      peer.path !== undefined
        ? net.connect({ path: peer.path })
        : net.connect({ host: peer.host, port: peer.port ?? 0, localAddress: b?.host, localPort: b?.port || undefined });
    const conn = (this.conn = new UpstreamConn(sock));
    pool.opened?.(peer.name, conn);
    conn.user = this;
    conn.arm(run.flcf.connectTimeout);
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
      this.pool.release(this.peer.name, conn, true);
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

  abort(): void {
    if (this.phase === Phase.Done) return;
    this.settle(this.started ? this.run.r.status : 499, false, false, undefined, true);
  }

  private send(): void {
    this.phase = Phase.Sending;
    this.sent = true;
    this.conn.arm(this.run.flcf.sendTimeout);
    const recs = this.run.records;
    this.writeSeq = this.conn.write(recs.length === 1 ? recs[0]! : Buffer.concat(recs));
  }

  // ---- ConnUser

  connConnect(): void {
    this.connectTime = performance.now() - this.t0;
    this.send();
  }

  connWritten(_c: UpstreamConn, seq: number, err: Error | null | undefined): void {
    if (seq !== this.writeSeq || err || this.phase !== Phase.Sending) return;
    this.phase = Phase.Header;
    this.conn.arm(this.run.flcf.readTimeout);
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
    // the application closed the connection before END_REQUEST
    const msg = this.phase === Phase.Header ? 'upstream prematurely closed FastCGI stdout' : prematurelyClosed(this.action());
    this.fail(502, 'error', this.phase === Phase.Header ? `${msg} while ${ACTION_HEADER}` : msg);
  }

  connClose(): void {
    if (this.phase !== Phase.Done) this.connEnd();
  }

  connData(_c: UpstreamConn, chunk: Buffer): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Sending) this.phase = Phase.Header;
    this.conn.arm(this.run.flcf.readTimeout);
    const events = this.records.feed(chunk);
    for (const ev of events) {
      if (this.isDone()) return;
      switch (ev.type) {
        case 'stdout':
          this.stdout(ev.data);
          break;
        case 'stderr':
          this.run.log('error', `FastCGI sent in stderr: "${stderrLogText(ev.data)}" while ${this.action()}`);
          break;
        case 'stdout-end':
          break;
        case 'end':
          this.end(false);
          break;
        case 'trailing':
          this.run.log('warn', `upstream sent more data than specified in "Content-Length" header while ${this.action()}`);
          break;
        case 'error':
          this.fail(502, 'invalid_response', `${ev.message} while ${this.action()}`);
          break;
      }
    }
  }

  private stdout(data: Buffer): void {
    if (this.phase === Phase.Header) {
      const res = this.head.feed(data);
      if (res.state === 'more') return;
      if (res.state === 'error') {
        this.fail(502, 'invalid_response', `${res.message} while ${ACTION_HEADER}`);
        return;
      }
      if (!this.header(res.head.status, res.head.statusLine, res.head.headers)) return;
      const rest = res.bodyOffset < data.length ? data.subarray(res.bodyOffset) : undefined;
      if (rest !== undefined) this.body(rest);
      return;
    }
    this.body(data);
  }

  /** the CGI header is complete: next upstream, intercept, or the client's header */
  private header(status: number, statusLine: string, headers: Array<{ name: string; value: string }>): boolean {
    const run = this.run;
    const r = run.r as HttpRequest;
    const failure = STATUS_FAILURE.get(status);
    if (failure !== undefined && run.wouldRetry(failure, true)) {
      this.settle(status, false, false, failure, false);
      return false;
    }
    if (run.flcf.interceptErrors && status >= 300 && r.loc.errorPages?.some((p) => p.status === status)) {
      this.settle(status, false, false, undefined, false);
      return false;
    }
    const sp = statusLine.indexOf(' ');
    const reason = sp === -1 ? undefined : statusLine.slice(sp + 1);
    copyResponseHeaders(
      r,
      status,
      reason,
      headers.map((h) => [h.name, h.value] as const),
      run.policy,
    );
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

  private body(data: Buffer): void {
    const r = this.run.r;
    if (r.send(data) || r.aborted || this.waiting) return;
    // the client is slow: stop reading until it drains (its socket buffer bounds the memory)
    this.waiting = true;
    this.conn.socket.pause();
    this.conn.disarm();
    r.onDrain(this.onDrained);
  }

  /** END_REQUEST: the response is complete */
  private end(_trailing: boolean): void {
    if (this.phase === Phase.Header) {
      // no header at all: nginx's "upstream prematurely closed FastCGI stdout"
      this.fail(502, 'error', `upstream prematurely closed FastCGI stdout while ${ACTION_HEADER}`);
      return;
    }
    this.settle(this.run.r.status, true, this.run.flcf.keepConn === 1 && this.run.bind === undefined, undefined, false);
  }
}
