import net from 'node:net';
import { makeRoom, slotCapacity } from '../../core/slots.js';
import type { LogLevel } from '../../core/error_log.js';
import { UpstreamConn, type ConnUser } from '../../upstream/conn.js';
import { noPool, type ConnectionPool } from '../../upstream/keepalive.js';
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
import type { PeerAddress } from '../../upstream/peers.js';
import { ACTION_SSL, openUpstreamSocket, type SslRuntime } from '../../upstream/ssl.js';
import type { Failure, TryOwner, UpstreamOutcome } from '../../upstream/run.js';
import { Read, ReplyReader, type ReaderOwner, type ReplySink } from './reply_reader.js';

export type { ReplySink };

/*
 * One request to one Redis peer on a connection of its own, as nginx's
 * non-buffered upstream runs it for redis2: connect, write the query once,
 * read replies (reply_reader.ts) and stream the raw bytes to a sink, then
 * decide whether the connection may be kept. Log lines and statuses are
 * nginx's (lib/upstream/messages.ts).
 *
 * Each read is handled a window's room at a time; when the sink pushes
 * back and the window is full, the Redis socket is paused until the sink
 * drains.
 */

/** What one try needs: where, what, the timeouts and the buffer, and how to log. */
export interface TryOptions {
  peer: PeerAddress;
  query: Buffer;
  /** replies expected: the number of queries, or redis2_raw_queries' N */
  expected: number;
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  bufferSize: number;
  /** redis2_bind: local address (and port, 0 = any) of the connection; text for the log */
  bind?: { host: string; port: number; text: string };
  pool?: ConnectionPool;
  /** redis2_ssl on: the location's TLS settings (lib/upstream/ssl.ts) and the name to check / send as SNI */
  ssl?: SslRuntime;
  sslName?: string;
  /** the keepalive cache key (peer name plus state tag); default: the peer's name */
  poolKey?: string;
  log(level: LogLevel, msg: string): void;
  /** on a pipelined connection (pipelined_try.ts): the replies outgrew one redis2_buffer_size window */
  bigReply?(): void;
}

const enum Phase {
  Connecting,
  Sending,
  Reading,
  Finished,
}

/**
 * One try: a fixed-shape object, its connection's events dispatched to its
 * methods (UpstreamConn), its outcome handed to the owner synchronously, so
 * the response can be finished in the same turn as the last reply bytes
 * (one write to the client per response).
 */
export class ExclusiveTry implements ConnUser, ReaderOwner {
  readonly o: TryOptions;
  private readonly owner: TryOwner;
  private readonly pool: ConnectionPool;
  private readonly key: string;
  private readonly t0: number;
  private readonly reader: ReplyReader;
  private readonly conn: UpstreamConn;
  private readonly cached: boolean;
  private phase = Phase.Connecting;
  private connectTime: number | undefined = undefined;
  private sent = false;
  private writeSeq = 0;
  private pending: Buffer | undefined = undefined;

  constructor(o: TryOptions, sink: ReplySink, owner: TryOwner) {
    this.o = o;
    this.owner = owner;
    const pool = (this.pool = o.pool ?? noPool);
    const key = (this.key = o.poolKey ?? o.peer.name);
    this.t0 = performance.now();
    this.reader = new ReplyReader(this, sink, o.expected);
    const reused = pool.acquire(key);
    this.cached = reused !== undefined;
    if (reused !== undefined) {
      this.conn = reused;
      reused.user = this;
      this.connectTime = 0;
      this.send();
      return;
    }
    if (!makeRoom()) {
      // ngx_event_connect_peer: no free connection (worker_connections) — nginx cannot start it: 500
      const conn = (this.conn = new UpstreamConn(new net.Socket()));
      conn.user = this;
      conn.destroy();
      queueMicrotask(() => {
        if (this.isDone()) return;
        this.o.log('alert', `${slotCapacity()} worker_connections are not enough while ${ACTION_CONNECT}`);
        this.settle(500, false, false, 'error', false);
      });
      return;
    }
    const sock = openUpstreamSocket(o.peer, o.bind, o.ssl, o.sslName ?? '');
    const conn = (this.conn = new UpstreamConn(sock));
    pool.opened?.(key, conn);
    conn.user = this;
    conn.arm(o.connectTimeout);
  }

  isDone(): boolean {
    return this.phase === Phase.Finished;
  }

  action(): string {
    switch (this.phase) {
      case Phase.Connecting:
        // TCP is up and the TLS handshake runs
        return this.o.ssl !== undefined && this.conn !== undefined && !this.conn.socket.connecting ? ACTION_SSL : ACTION_CONNECT;
      case Phase.Sending:
        return ACTION_SEND;
      default:
        // the first read is handled inside nginx's process_header
        return this.reader.bodyRead ? ACTION_BODY : ACTION_HEADER;
    }
  }

  private readonly actionFn = (): string => this.action();

  private settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.isDone()) return;
    const act = this.action();
    this.phase = Phase.Finished;
    const conn = this.conn;
    conn.user = undefined;
    conn.disarm();
    if (reusable) this.pool.release(this.key, conn, true);
    else conn.destroy();
    this.owner.tryDone({
      status,
      started: this.reader.started,
      complete,
      reusable,
      failure,
      aborted,
      cached: this.cached,
      sent: this.sent,
      action: act,
      connectTime: this.connectTime,
      responseTime: performance.now() - this.t0,
    });
  }

  private fail(status: number, failure: Failure, level: LogLevel | undefined, msg: string): void {
    if (level) this.o.log(level, msg);
    this.settle(this.reader.started ? 200 : status, false, false, failure, false);
  }

  /** the client went away: close the Redis connection (never reuse it) */
  abort(): void {
    if (this.isDone()) return;
    this.settle(this.reader.started ? 200 : 499, false, false, undefined, true);
  }

  connTimeout(): void {
    this.fail(504, 'timeout', 'error', timedOut(this.action()));
  }

  connConnect(): void {
    this.connectTime = performance.now() - this.t0;
    this.send();
  }

  private send(): void {
    this.phase = Phase.Sending;
    this.sent = true;
    this.conn.arm(this.o.sendTimeout);
    this.writeSeq = this.conn.write(this.o.query);
  }

  connWritten(_c: UpstreamConn, seq: number, err: Error | null | undefined): void {
    if (seq !== this.writeSeq || err || this.phase !== Phase.Sending) return;
    this.phase = Phase.Reading;
    this.conn.arm(this.o.readTimeout);
  }

  connError(_c: UpstreamConn, err: NodeJS.ErrnoException): void {
    if (this.isDone()) return;
    if (this.phase === Phase.Connecting) {
      if (err.syscall === 'bind') {
        // nginx cannot even start the connection: 500, no next upstream
        const line = bindFailed(this.o.bind?.text, err);
        this.o.log(line.level, line.msg);
        this.settle(500, false, false, 'error', false);
        return;
      }
      const line = connectFailed(this.o.peer, err);
      this.fail(502, 'error', line.level, line.msg);
      return;
    }
    this.fail(502, 'error', 'error', ioFailed(this.phase !== Phase.Sending, err, this.action()));
  }

  connEnd(): void {
    if (this.isDone()) return;
    if (this.reader.started) {
      // redis2 leaves u->length at -1: once the reply began, Redis closing ends the response as
      // complete (last chunk, nothing logged), as nginx's non-buffered upstream does at EOF
      this.settle(200, true, false, undefined, false);
      return;
    }
    this.fail(502, 'error', 'error', prematurelyClosed(this.action()));
  }

  connClose(): void {
    // a close without 'end' or 'error' (e.g. reset handled elsewhere)
    if (!this.isDone()) this.connEnd();
  }

  connData(_c: UpstreamConn, chunk: Buffer): void {
    if (this.isDone()) return;
    if (this.phase === Phase.Sending) {
      // a reply before our write completed: Redis has read the query
      this.phase = Phase.Reading;
    }
    this.conn.arm(this.o.readTimeout);
    this.consume(chunk);
  }

  /* feed one socket chunk through the window, a step at a time */
  private consume(chunk: Buffer): void {
    let off = 0;
    const reader = this.reader;
    while (off < chunk.length && !this.isDone()) {
      const room = reader.room();
      if (room <= 0) {
        this.pending = chunk.subarray(off);
        this.conn.socket.pause();
        this.conn.disarm();
        return;
      }
      const piece = off === 0 && chunk.length <= room ? chunk : chunk.subarray(off, off + room);
      off += piece.length;
      this.step(piece, off < chunk.length);
      reader.bodyRead = true;
    }
  }

  private step(piece: Buffer, moreInChunk: boolean): void {
    switch (this.reader.step(piece, this.actionFn)) {
      case Read.More:
      case Read.Gone:
        return;
      case Read.BadStart:
        this.fail(502, 'invalid_response', undefined, '');
        return;
      case Read.Invalid:
        this.settle(200, true, false, undefined, false);
        return;
      case Read.Done: {
        if (this.isDone()) return;
        const extra = piece.length - this.reader.end;
        if (extra > 0) this.reader.logExtra(piece, this.action());
        this.settle(200, true, extra === 0 && !moreInChunk, undefined, false);
      }
    }
  }

  sinkDrained(): void {
    if (this.isDone()) return;
    const rest = this.pending;
    this.pending = undefined;
    if (rest) {
      this.conn.arm(this.o.readTimeout);
      this.consume(rest);
    }
    if (!this.isDone() && this.pending === undefined && this.conn.socket.isPaused()) {
      this.conn.arm(this.o.readTimeout);
      this.conn.socket.resume();
    }
  }
}

/** One try run on its own, outside any request (the upstream tests drive it so). */
export type UpstreamRequestOptions = TryOptions;
export type { LogLevel, UpstreamOutcome };

export interface UpstreamRequest {
  readonly done: Promise<UpstreamOutcome>;
  /** the client went away: close the Redis connection (never reuse it) */
  abort(): void;
}

/** Start one try now; its outcome settles `done`. */
export function startUpstreamRequest(o: TryOptions, sink: ReplySink): UpstreamRequest {
  let resolve!: (v: UpstreamOutcome) => void;
  const done = new Promise<UpstreamOutcome>((res) => (resolve = res));
  const t = new ExclusiveTry(o, sink, { tryDone: (out) => resolve(out) });
  return { done, abort: () => t.abort() };
}
