import type { LogLevel } from '../../core/error_log.js';
import { ACTION_BODY, ACTION_CONNECT, ACTION_HEADER, ACTION_SEND } from '../../upstream/messages.js';
import type { PipelinedEntry, PipelinedHost } from '../../upstream/pipelined_conn.js';
import type { Failure, TryOwner } from '../../upstream/run.js';
import type { TryOptions } from './exclusive.js';
import { ACTION_SSL } from '../../upstream/ssl.js';
import { Read, ReplyReader, type ReaderOwner, type ReplySink } from './reply_reader.js';
import { ScanResult } from '../../upstream/resp_scanner.js';

/*
 * One request on a pipelined connection (lib/upstream/pipelined_conn.ts): the exclusive
 * try's reading (reply_reader.ts) applied to its own slice of the
 * connection's reply stream. Its replies are framed by its own scanner with
 * its own reply count; nginx's fixed buffer of redis2_buffer_size bytes is
 * kept per request, so a malformed reply is logged with the same
 * `near pos N in "..."` as on an exclusive connection, and a client that
 * pushes back stops the stream only once that window is full.
 *
 * Outcomes, statuses and log lines are the exclusive path's, reported to
 * the same owner (lib/upstream/run.ts), so next_upstream, max_fails and
 * $upstream_* work unchanged. Two cases differ because the connection is
 * shared: a client that leaves mid-reply while other requests wait on the
 * connection has its remaining replies read and dropped (nginx would close
 * its own connection; here that would fail the others), and requests queued
 * behind a malformed reply fail as if the connection had closed.
 */

/*
 * A reply this large takes several socket reads and, for a slow client,
 * several window drains: requests joining behind it would wait for all of
 * it (lib/upstream/pipelined_conn.ts stops taking joiners, handler.ts sends the
 * location's next requests to exclusive connections for a while).
 */
const BIG_REPLY = 128 * 1024;

export class PipelinedTry implements ReaderOwner, PipelinedEntry {
  readonly o: TryOptions;
  private readonly owner: TryOwner;
  private readonly sc: PipelinedHost;
  readonly t0: number;
  private readonly reader: ReplyReader;
  private readonly cached: boolean;
  connectTime: number | undefined;
  /** the outcome went to the owner */
  done = false;
  /** the client left: replies are read and dropped */
  discard = false;
  /** every expected reply was read */
  replied = false;
  /** a malformed reply: the connection's stream cannot be followed past it */
  broke = false;
  /** the query went into a write (nginx's request_sent) */
  sent = false;
  private seq = 0;
  /** its replies so far are more than BIG_REPLY bytes (and one window): a large value is streaming */
  big = false;
  private got = 0;

  constructor(o: TryOptions, sink: ReplySink, owner: TryOwner, sc: PipelinedHost) {
    this.o = o;
    this.owner = owner;
    this.sc = sc;
    this.t0 = performance.now();
    this.reader = new ReplyReader(this, sink, o.expected);
    this.cached = sc.fromCache;
    this.connectTime = sc.connected ? 0 : undefined;
  }

  isDone(): boolean {
    return this.done;
  }

  sentBy(seq: number): void {
    this.sent = true;
    this.seq = seq;
  }

  /** its write completed (or a reply arrived): Redis has read the query */
  reading(): boolean {
    return this.reader.bodyRead || (this.sent && this.sc.ackedSeq >= this.seq);
  }

  action(): string {
    if (!this.sc.connected) {
      // TCP is up and the TLS handshake runs
      return this.o.ssl !== undefined && !this.sc.tcpConnecting ? ACTION_SSL : ACTION_CONNECT;
    }
    if (!this.reading()) return ACTION_SEND;
    // the first read is handled inside nginx's process_header
    return this.reader.bodyRead ? ACTION_BODY : ACTION_HEADER;
  }

  private readonly actionFn = (): string => this.action();

  private settle(status: number, complete: boolean, failure: Failure | undefined, aborted: boolean, action: string): void {
    if (this.done) return;
    this.done = true;
    this.owner.tryDone({
      status,
      started: this.reader.started,
      complete,
      reusable: false,
      failure,
      aborted,
      cached: this.cached,
      sent: this.sent,
      action,
      connectTime: this.connectTime,
      responseTime: performance.now() - this.t0,
    });
  }

  /** the connection failed under this request (PipelinedConn.kill) */
  fail(status: number, failure: Failure, msg: string, level: LogLevel = 'error'): void {
    if (this.done) return;
    const act = this.action();
    this.o.log(level, msg);
    this.settle(this.reader.started ? 200 : status, false, failure, false, act);
  }

  /** its reply began (the response started) */
  started(): boolean {
    return this.reader.started;
  }

  /** Redis closed the connection inside its reply: the response ends as complete, nothing logged (nginx at EOF) */
  cut(): void {
    if (this.done) return;
    // (the connection is already dead: kill() called this)
    this.settle(200, true, undefined, false, this.action());
  }

  /** the client went away */
  abort(): void {
    if (this.done) return;
    const act = this.action();
    this.sc.abandon(this);
    this.settle(this.reader.started ? 200 : 499, false, undefined, true, act);
  }

  /**
   * Take this request's bytes from `chunk[off..n)`: returns how many were
   * its own (all of them unless its last reply ends inside), or -1 when its
   * window is full and its client pushes back (nothing taken).
   * `last`: no request behind this one was sent, so bytes after its
   * replies are extra (logged as nginx does).
   */
  feed(chunk: Buffer, off: number, n: number, last: boolean): number {
    const reader = this.reader;
    if (this.discard) {
      const r = reader.drop(off === 0 ? chunk : chunk.subarray(off, n));
      if (r === ScanResult.More) {
        // dropped bytes hold the connection as long as sent ones
        this.count(n - off);
        return n - off;
      }
      if (r === ScanResult.Invalid) {
        this.broke = true;
        return n - off;
      }
      this.replied = true;
      return reader.dropEnd();
    }
    let used = 0;
    while (off < n) {
      const room = reader.room();
      if (room <= 0) return used === 0 ? -1 : used;
      const piece = off === 0 && n <= room ? chunk : chunk.subarray(off, Math.min(n, off + room));
      const took = this.step(piece, last);
      reader.bodyRead = true;
      this.count(took);
      used += took;
      off += took;
      if (this.replied || this.broke || this.discard || this.sc.dead) return this.discard && !this.replied && !this.broke ? used + this.dropRest(chunk, off, n) : used;
    }
    return used;
  }

  private count(bytes: number): void {
    if ((this.got += bytes) > BIG_REPLY && this.got > this.o.bufferSize && !this.big) {
      this.big = true;
      this.o.bigReply?.();
    }
  }

  /* the client left inside feed (HEAD, a write error): the rest of its replies is dropped */
  private dropRest(chunk: Buffer, off: number, n: number): number {
    if (off >= n || this.sc.dead) return 0;
    return this.feed(chunk, off, n, false);
  }

  private step(piece: Buffer, last: boolean): number {
    const reader = this.reader;
    switch (reader.step(piece, this.actionFn)) {
      case Read.More:
        return piece.length;
      case Read.Gone:
        // the sink gave up at once (HEAD): the caller drops the replies
        return 0;
      case Read.BadStart:
        this.broke = true;
        this.settle(502, false, 'invalid_response', false, ACTION_HEADER);
        return piece.length;
      case Read.Invalid:
        this.broke = true;
        this.settle(200, true, undefined, false, this.action());
        return piece.length;
      case Read.Done: {
        const end = reader.end;
        this.replied = true;
        if (this.done) return end;
        const act = this.action();
        // nothing else was asked on this connection: as nginx, warn (the connection is then closed)
        if (last && end < piece.length) reader.logExtra(piece, act);
        this.settle(200, true, undefined, false, act);
        return end;
      }
    }
  }

  sinkDrained(): void {
    if (this.done && !this.discard) return;
    this.sc.resumeFor(this);
  }
}
