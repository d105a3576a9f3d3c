import net, { type Socket } from 'node:net';
import type { LogLevel } from '../core/error_log.js';
import { slotCapacity } from '../core/slots.js';
import type { Request } from '../http/request.js';
import type { LocalAddress } from './bind.js';
import { UpstreamConn, type ConnUser } from './conn.js';
import { noPool, type ConnectionPool } from './keepalive.js';
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
} from './messages.js';
import type { PeerAddress } from './peers.js';
import type { Failure, TryOwner, UpstreamTryHandle } from './run.js';
import { ACTION_SSL } from './ssl.js';

/*
 * One exchange with one upstream peer on a connection of its own: the
 * generic part of ngx_http_upstream.c that every protocol shares, with the
 * protocol plugged in as hooks (nginx's create_request, process_header,
 * input_filter):
 *
 *   - the connection: an idle one from the upstream's keepalive cache, or
 *     a new socket the protocol opens (openSocket: net or TLS, a unix path,
 *     the *_bind local address); none free is nginx's `worker_connections
 *     are not enough`, 500;
 *   - the request written once (request()), under *_send_timeout, then
 *     replies under *_read_timeout, re-armed on every read;
 *   - the phase, and so the log's `while ...` (action());
 *   - connect, write, timeout, error and close events with nginx's log
 *     lines (messages.ts) and statuses (bind failure 500, connect failure
 *     502, timeout 504, premature close 502 unless the protocol says a
 *     close ends its response: onEnd());
 *   - the end (settle): the timer stopped, the connection given back to
 *     the cache when reusable or closed, the outcome handed to the owner
 *     synchronously, with the $upstream_* timings;
 *   - the client's backpressure: a full client socket pauses the upstream
 *     socket (its timer stopped) until the client drains (toClient()).
 *
 * Subclasses set up their own fields, then call begin() last in their
 * constructor (a reused connection sends at once, through their hooks).
 */

/** *_connect_timeout, *_send_timeout, *_read_timeout, in ms */
export interface UpstreamTimeouts {
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
}

/** Where a try logs, and the *_bind address its connection asked for (the text of `bind(...) failed`). */
export interface ConnTryHost {
  readonly bind?: LocalAddress | undefined;
  log(level: LogLevel, msg: string): void;
}

/** The try's progress, which names the log's `while ...`. */
export const enum ConnPhase {
  Connecting,
  Sending,
  /** waiting for (or reading) the response header */
  Header,
  Body,
  Done,
}

export abstract class ConnTry implements ConnUser, UpstreamTryHandle {
  protected readonly owner: TryOwner;
  protected readonly host: ConnTryHost;
  protected readonly peer: PeerAddress;
  protected readonly timeouts: UpstreamTimeouts;
  protected conn!: UpstreamConn;
  protected phase = ConnPhase.Connecting;
  /** status and headers went to the client (protocols whose reader knows it override isStarted) */
  protected started = false;
  /** the connect phase logs `SSL handshaking to upstream` once TCP is up (set before begin()) */
  protected sslAction = false;
  /** the client pushed back: reading waits for its drain (toClient) */
  protected waiting = false;
  private pool: ConnectionPool = noPool;
  private key = '';
  private cached = false;
  private sent = false;
  private writeSeq = 0;
  private connectTime: number | undefined = undefined;
  private readonly t0 = performance.now();
  private drained: (() => void) | undefined = undefined;
  /** PREFIX_limit_rate (bytes/s of the response body read from the peer; 0 none), set by the protocol */
  protected readRate = 0;
  private readStartSec = -1;
  private readLength = 0;
  private rateTimer: NodeJS.Timeout | undefined = undefined;

  constructor(owner: TryOwner, host: ConnTryHost, peer: PeerAddress, timeouts: UpstreamTimeouts) {
    this.owner = owner;
    this.host = host;
    this.peer = peer;
    this.timeouts = timeouts;
  }

  // ---- the protocol's part

  /** a new connection's socket (net or TLS); undefined: no free connection (worker_connections) */
  protected abstract openSocket(): Socket | undefined;
  /** the request's bytes, written once (nginx's create_request) */
  protected abstract request(): Buffer;
  /** bytes from the peer, the read timer re-armed (process_header, then the input filter) */
  protected abstract onData(chunk: Buffer): void;

  /** the peer closed its side while the try runs: nginx's premature close, unless the protocol ends its response so */
  protected onEnd(): void {
    this.fail(502, 'error', prematurelyClosed(this.action()));
  }

  /** the response started (status and headers went out) */
  protected isStarted(): boolean {
    return this.started;
  }

  /** $upstream_status of a try whose client left after the response started */
  protected startedStatus(): number {
    return 200;
  }

  // ---- the generic part

  /**
   * Take an idle connection for `key` from `pool` when `reuse` allows (a
   * bound connection is the request's own), else open one.
   */
  protected begin(pool: ConnectionPool, key: string, reuse: boolean): void {
    this.pool = pool;
    this.key = key;
    const reused = reuse ? pool.acquire(key) : undefined;
    if (reused !== undefined) {
      this.cached = true;
      this.conn = reused;
      reused.user = this;
      this.connectTime = 0;
      this.send();
      return;
    }
    const sock = this.openSocket();
    if (sock === undefined) {
      // ngx_event_connect_peer: no free connection — nginx cannot start it: 500
      const conn = (this.conn = new UpstreamConn(new net.Socket()));
      conn.user = this;
      conn.destroy();
      queueMicrotask(() => {
        if (this.isDone()) return;
        this.host.log('alert', `${slotCapacity()} worker_connections are not enough while ${ACTION_CONNECT}`);
        this.settle(500, false, false, 'error', false);
      });
      return;
    }
    const conn = (this.conn = new UpstreamConn(sock));
    pool.opened?.(key, conn);
    conn.user = this;
    conn.arm(this.timeouts.connectTimeout);
  }

  isDone(): boolean {
    return this.phase === ConnPhase.Done;
  }

  /** what the try is doing: the log's `while ...` */
  action(): string {
    switch (this.phase) {
      case ConnPhase.Connecting:
        // TCP is up and the TLS handshake runs
        return this.sslAction && this.conn !== undefined && !this.conn.socket.connecting ? ACTION_SSL : ACTION_CONNECT;
      case ConnPhase.Sending:
        return ACTION_SEND;
      case ConnPhase.Header:
        return ACTION_HEADER;
      default:
        return ACTION_BODY;
    }
  }

  /** the try ends: the connection goes back to the cache (reusable) or closes, the owner hears how */
  protected settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.phase === ConnPhase.Done) return;
    const action = this.action();
    this.phase = ConnPhase.Done;
    if (this.rateTimer !== undefined) clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    const conn = this.conn;
    conn.user = undefined;
    conn.disarm();
    // the cache resumes a paused socket it keeps
    if (reusable) this.pool.release(this.key, conn, true);
    else conn.destroy();
    this.owner.tryDone({
      status,
      started: this.isStarted(),
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

  /** the try failed: `msg` logged (none when empty), the connection closed; a started response is cut short */
  protected fail(status: number, failure: Failure, msg: string, level: LogLevel = 'error'): void {
    if (msg) this.host.log(level, msg);
    this.settle(this.isStarted() ? 200 : status, false, false, failure, false);
  }

  /** the client went away: close the connection (never reuse it) */
  abort(): void {
    if (this.phase === ConnPhase.Done) return;
    this.settle(this.isStarted() ? this.startedStatus() : 499, false, false, undefined, true);
  }

  private send(): void {
    this.phase = ConnPhase.Sending;
    this.sent = true;
    this.conn.arm(this.timeouts.sendTimeout);
    this.writeSeq = this.conn.write(this.request());
  }

  /** stop reading (and its timer) until resumeReading() */
  protected pauseReading(): void {
    this.conn.socket.pause();
    this.conn.disarm();
  }

  protected resumeReading(): void {
    this.conn.arm(this.timeouts.readTimeout);
    this.conn.socket.resume();
  }

  /** response bytes to the client; a full client socket pauses the upstream until it drains */
  protected toClient(r: Request, data: Buffer): void {
    if (this.readRate > 0) this.paceRead(data.length);
    if (r.send(data) || r.aborted || this.waiting) return;
    // the client is slow: stop reading until it drains (its socket buffer bounds the memory)
    this.waiting = true;
    this.pauseReading();
    r.onDrain(
      (this.drained ??= () => {
        this.waiting = false;
        if (this.phase !== ConnPhase.Done && this.rateTimer === undefined) this.resumeReading();
      }),
    );
  }

  /**
   * ngx_event_pipe_read_upstream's limit_rate: after n body bytes, reading
   * waits n / rate, and longer while more than rate * (second + 1) bytes
   * were read since the response started
   */
  private paceRead(n: number): void {
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    if (this.readStartSec < 0) this.readStartSec = sec;
    this.readLength += n;
    const rate = this.readRate;
    const limit = rate * (sec - this.readStartSec + 1) - this.readLength;
    const delay = Math.max(Math.floor((n * 1000) / rate), limit <= 0 ? Math.floor((-limit * 1000) / rate) + 1 : 0);
    if (delay <= 0 || this.phase === ConnPhase.Done) return;
    this.pauseReading();
    if (this.rateTimer !== undefined) clearTimeout(this.rateTimer);
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined;
      if (this.phase !== ConnPhase.Done && !this.waiting) this.resumeReading();
    }, delay);
  }

  // ---- ConnUser

  connConnect(): void {
    this.connectTime = performance.now() - this.t0;
    this.send();
  }

  connWritten(_c: UpstreamConn, seq: number, err: Error | null | undefined): void {
    if (seq !== this.writeSeq || err || this.phase !== ConnPhase.Sending) return;
    this.phase = ConnPhase.Header;
    this.conn.arm(this.timeouts.readTimeout);
  }

  connData(_c: UpstreamConn, chunk: Buffer): void {
    if (this.phase === ConnPhase.Done) return;
    // a reply before our write completed: the peer has read the request
    if (this.phase === ConnPhase.Sending) this.phase = ConnPhase.Header;
    this.conn.arm(this.timeouts.readTimeout);
    this.onData(chunk);
  }

  connTimeout(): void {
    if (this.phase === ConnPhase.Done) return;
    this.fail(504, 'timeout', timedOut(this.action()));
  }

  connError(_c: UpstreamConn, err: NodeJS.ErrnoException): void {
    if (this.phase === ConnPhase.Done) return;
    if (this.phase === ConnPhase.Connecting) {
      const line = err.syscall === 'bind' ? bindFailed(this.host.bind?.text, err) : connectFailed(this.peer, err);
      this.host.log(line.level, line.msg);
      // a failed bind(): nginx cannot even start the connection, 500 and no next upstream
      this.settle(err.syscall === 'bind' ? 500 : 502, false, false, 'error', false);
      return;
    }
    this.fail(502, 'error', ioFailed(this.phase !== ConnPhase.Sending, err, this.action()));
  }

  connEnd(): void {
    if (this.phase !== ConnPhase.Done) this.onEnd();
  }

  /** a close without 'end' or 'error' */
  connClose(): void {
    if (this.phase !== ConnPhase.Done) this.onEnd();
  }
}
