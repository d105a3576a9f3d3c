import { openUpstreamSocket, ACTION_SSL } from '../../upstream/ssl.js';
import { UpstreamConn, type ConnUser } from '../../upstream/conn.js';
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
import type { Failure } from '../../upstream/run.js';
import type { RedisRun } from './handler.js';
import { RedisReading, type ReadingOwner } from './reading.js';

/*
 * One exchange with one Redis peer on a connection of its own, as nginx's
 * non-buffered upstream runs ngx_http_redis: connect (or take a pooled
 * connection whose state tag matches), write the command once, read the
 * reply (reading.ts), the socket paused while the client is slow. A
 * connection goes back to the keepalive cache only after a complete reply
 * with nothing after it (a not-found one too, as the module marks it); a
 * HEAD or 416 answer closes it (nginx finalizes the upstream there).
 */

const enum Phase {
  Connecting,
  Sending,
  Header,
  Body,
  Done,
}

export class RedisTry implements ConnUser, ReadingOwner {
  readonly run: RedisRun;
  private readonly peer: PeerTarget;
  private readonly conn: UpstreamConn;
  private readonly cached: boolean;
  private readonly pooled: boolean;
  private readonly t0 = performance.now();
  private phase = Phase.Connecting;
  private connectTime: number | undefined = undefined;
  private sent = false;
  private writeSeq = 0;
  private readonly reading = new RedisReading(this);
  private readonly onDrained = (): void => {
    this.reading.waiting = false;
    if (this.phase === Phase.Done) return;
    this.conn.arm(this.run.rlcf.readTimeout);
    this.conn.socket.resume();
  };

  constructor(run: RedisRun, peer: PeerTarget) {
    this.run = run;
    this.peer = peer;
    this.pooled = run.bind === undefined;
    const reused = this.pooled ? run.pool.acquire(run.poolKey) : undefined;
    this.cached = reused !== undefined;
    if (reused !== undefined) {
      this.conn = reused;
      reused.user = this;
      this.connectTime = 0;
      this.send();
      return;
    }
    const b = run.bind;
    const sock = openUpstreamSocket(peer, b, run.ssl, run.sslName);
    if (run.rlcf.socketKeepalive === 1) sock.setKeepAlive(true);
    const conn = (this.conn = new UpstreamConn(sock));
    run.pool.opened?.(run.poolKey, conn);
    conn.user = this;
    conn.arm(run.rlcf.connectTimeout);
  }

  action(): string {
    switch (this.phase) {
      case Phase.Connecting:
        // TCP is up and the TLS handshake runs
        return this.run.ssl !== undefined && !this.conn.socket.connecting ? ACTION_SSL : ACTION_CONNECT;
      case Phase.Sending:
        return ACTION_SEND;
      case Phase.Header:
        return ACTION_HEADER;
      default:
        return ACTION_BODY;
    }
  }

  settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.phase === Phase.Done) return;
    const action = this.action();
    this.phase = Phase.Done;
    const conn = this.conn;
    conn.user = undefined;
    conn.disarm();
    if (reusable && this.pooled) {
      if (conn.socket.isPaused()) conn.socket.resume();
      this.run.pool.release(this.run.poolKey, conn, true);
    } else conn.destroy();
    this.reading.release();
    this.run.tryDone({
      status,
      started: this.reading.started,
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

  fail(status: number, failure: Failure, msg: string): void {
    if (msg) this.run.log('error', msg);
    this.settle(this.reading.started ? 200 : status, false, false, failure, false);
  }

  /** the client went away (or a HEAD answer is out): close the connection, never reuse it */
  abort(): void {
    if (this.phase === Phase.Done) return;
    this.settle(this.reading.started ? 200 : 499, false, false, undefined, true);
  }

  private send(): void {
    this.phase = Phase.Sending;
    this.sent = true;
    this.conn.arm(this.run.rlcf.sendTimeout);
    this.writeSeq = this.conn.write(this.run.query);
  }

  // ---- ConnUser

  connConnect(): void {
    this.connectTime = performance.now() - this.t0;
    this.send();
  }

  connWritten(_c: UpstreamConn, seq: number, err: Error | null | undefined): void {
    if (seq !== this.writeSeq || err || this.phase !== Phase.Sending) return;
    this.phase = Phase.Header;
    this.conn.arm(this.run.rlcf.readTimeout);
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
    this.fail(502, 'error', prematurelyClosed(this.action()));
  }

  connClose(): void {
    if (this.phase !== Phase.Done) this.connEnd();
  }

  connData(_c: UpstreamConn, chunk: Buffer): void {
    if (this.phase === Phase.Done) return;
    // a reply before our write completed: Redis has read the command
    if (this.phase === Phase.Sending) this.phase = Phase.Header;
    this.conn.arm(this.run.rlcf.readTimeout);
    this.reading.data(chunk);
  }

  isDone(): boolean {
    return this.phase === Phase.Done;
  }

  // ---- ReadingOwner

  bodyStarted(): void {
    this.phase = Phase.Body;
  }

  /* a full client socket pauses Redis until it drains */
  pushBack(): void {
    this.conn.socket.pause();
    this.conn.disarm();
    this.run.r.onDrain(this.onDrained);
  }
}
