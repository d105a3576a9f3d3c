import { openUpstreamSocket, ACTION_SSL } from '../../upstream/ssl.js';
import { Redirect } from '../../upstream/cluster/route.js';
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
import type { HttpRequest } from '../../http/http_request.js';
import type { RedisRun } from './handler.js';
import { markRedisResponse, rangeOf } from './ranges.js';
import { parseHeader, Piece, ValueFilter } from './reply.js';

/*
 * One exchange with one Redis peer, as nginx's non-buffered upstream runs
 * ngx_http_redis: connect (or take a pooled connection whose state tag
 * matches), write the command once, gather the reply's header in at most
 * redis_buffer_size bytes (reply.ts), then:
 *   - found: 200, Content-Length N (plus `Content-Encoding: gzip` under
 *     redis_gzip_flag), the value streamed as it arrives, the socket paused
 *     while the client is slow (memory follows the socket buffers, never
 *     the value's size), the CR LF after it checked and dropped;
 *   - not found: nginx's 404 page (error_page applies: the module sets
 *     intercept_404), or the next peer under `redis_next_upstream
 *     not_found`; the connection stays reusable, as the module marks it;
 *   - invalid: 502, or the next peer under `invalid_response`.
 * A connection goes back to the keepalive cache only after a complete
 * reply with nothing after it. A HEAD request ends the exchange as soon as
 * the header is out (nginx finalizes the upstream there: the connection is
 * closed, not cached).
 */

const enum Phase {
  Connecting,
  Sending,
  Header,
  Body,
  Done,
}

const NO_BYTES = Buffer.alloc(0);
const LF = 0x0a;

export class RedisTry implements ConnUser {
  private readonly run: RedisRun;
  private readonly peer: PeerTarget;
  private readonly conn: UpstreamConn;
  private readonly cached: boolean;
  private readonly pooled: boolean;
  private readonly t0 = performance.now();
  private phase = Phase.Connecting;
  private connectTime: number | undefined = undefined;
  private started = false;
  private sent = false;
  private writeSeq = 0;
  /** the header bytes so far (nginx's u->buffer) */
  private head: Buffer = NO_BYTES;
  private value: ValueFilter | undefined = undefined;
  /** the client pushed back: reading waits for its drain */
  private waiting = false;
  /** value offset of the next byte, and the part of the value the client gets */
  private offset = 0;
  private from = 0;
  private to = 0;
  private readonly emit = (b: Buffer): void => this.slice(b);
  private readonly onDrained = (): void => {
    this.waiting = false;
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

  private settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
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
    this.head = NO_BYTES;
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

  /** the client went away (or a HEAD answer is out): close the connection, never reuse it */
  abort(): void {
    if (this.phase === Phase.Done) return;
    this.settle(this.started ? 200 : 499, false, false, undefined, true);
  }

  private send(): void {
    this.phase = Phase.Sending;
    this.sent = true;
    this.conn.arm(this.run.rlcf.sendTimeout);
    this.writeSeq = this.conn.write(this.run.bytes);
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
    if (this.phase === Phase.Header) this.header(chunk);
    else this.body(chunk);
  }

  /* gather the header (at most redis_buffer_size bytes), then act on it */
  private header(chunk: Buffer): void {
    const run = this.run;
    let head = (this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]));
    if (run.route !== undefined) {
      // a cluster try: drop the replies to ASKING / READONLY (+OK lines among the module's own), then look for a redirect
      while (run.skip > 0) {
        const eol = head.indexOf(LF);
        if (eol < 0) return;
        head = this.head = head.subarray(eol + 1);
        run.skip--;
      }
      if (this.redirected(head)) return;
    }
    const size = run.rlcf.bufferSize;
    const avail = Math.min(head.length, size);
    const h = parseHeader(head, avail, avail >= size, run.cmd.auth, run.cmd.key, (level, msg) => run.log(level, `${msg} while ${ACTION_HEADER}`));
    switch (h.kind) {
      case 'again':
        return;
      case 'too-big':
        this.fail(502, 'invalid_response', `upstream sent too big header while ${ACTION_HEADER}`);
        return;
      case 'invalid':
        this.fail(502, 'invalid_response', '');
        return;
      case 'not-found': {
        // the module marks the connection reusable (u->keepalive): we also want nothing after `$-1`
        const reusable = h.body === head.length;
        if (run.wouldRetry('http_404', true)) {
          this.settle(404, false, reusable, 'http_404', false);
          return;
        }
        this.settle(404, false, reusable, undefined, false);
        return;
      }
      case 'found':
        this.found(h.length, head, h.body);
    }
  }

  /**
   * The module's status lines (+OK of AUTH / SELECT) and the GET's reply
   * line: a -MOVED / -ASK among them ends the try as a redirect (nothing
   * reached the client; the run sends the command again where it points).
   */
  private redirected(head: Buffer): boolean {
    let at = 0;
    while (at < head.length && (head[at] === 0x2b || head[at] === 0x2d)) {
      const eol = head.indexOf(LF, at);
      if (eol < 0) return false;
      if (head[at] === 0x2d && this.run.route!.redirected(head.subarray(at, eol > at && head[eol - 1] === 0x0d ? eol - 1 : eol)) !== Redirect.None) {
        this.run.redirect = true;
        this.settle(200, false, eol + 1 === head.length, undefined, false);
        return true;
      }
      at = eol + 1;
    }
    return false;
  }

  /** a `$N` header: the response's header goes out (ranges.ts decides 200, 206 or 416), then the value part */
  private found(length: number, head: Buffer, bodyAt: number): void {
    const run = this.run;
    const r = run.r;
    this.head = NO_BYTES;
    const range = rangeOf(r, length);
    if (range.kind === 'unsatisfiable') {
      // nginx's header filters run on the 200 first (add_header's lines stay),
      // then its range filter answers the 416 page with `Content-Range: bytes */N`;
      // the upstream is finalized there (the connection closes)
      this.settle(200, false, false, undefined, true);
      r.status = 200;
      r.contentLength = length;
      if (run.rlcf.gzipFlag !== 0) r.headersOut.push(['Content-Encoding', 'gzip']);
      (r as HttpRequest).allowRanges = true;
      r.sendHeader();
      return;
    }
    this.value = new ValueFilter(length);
    if (range.kind === 'part') {
      this.from = range.start;
      this.to = range.end;
    } else this.to = length;
    r.status = range.kind === 'part' ? 206 : 200;
    r.contentLength = this.to - this.from;
    if (run.rlcf.gzipFlag !== 0) r.headersOut.push(['Content-Encoding', 'gzip']);
    markRedisResponse(r, range, length);
    this.started = true;
    this.phase = Phase.Body;
    run.started(200);
    r.sendHeader();
    if (this.isDone()) return;
    if (r.method === 'HEAD') {
      // nginx finalizes the upstream right after a HEAD's header: closed, not cached
      this.abort();
      return;
    }
    this.body(bodyAt < head.length ? head.subarray(bodyAt) : NO_BYTES);
  }

  private isDone(): boolean {
    return this.phase === Phase.Done;
  }

  private body(data: Buffer): void {
    switch (this.value!.feed(data, this.emit)) {
      case Piece.More:
        return;
      case Piece.Done:
        if (!this.isDone()) this.settle(200, true, true, undefined, false);
        return;
      case Piece.BadTrailer:
        if (this.isDone()) return;
        this.run.log('error', 'redis sent invalid trailer');
        this.settle(200, true, false, undefined, false);
    }
  }

  /* the value's bytes in [from, to) go on (a 206 answers part of it; the rest is read and dropped) */
  private slice(b: Buffer): void {
    const at = this.offset;
    const end = at + b.length;
    this.offset = end;
    if (end <= this.from || at >= this.to) return;
    if (at >= this.from && end <= this.to) this.deliver(b);
    else this.deliver(b.subarray(Math.max(0, this.from - at), Math.min(b.length, this.to - at)));
  }

  /* value bytes to the client; a full client socket pauses Redis until it drains */
  private deliver(b: Buffer): void {
    const r = this.run.r;
    if (r.send(b) || r.aborted || this.waiting || this.isDone()) return;
    this.waiting = true;
    this.conn.socket.pause();
    this.conn.disarm();
    r.onDrain(this.onDrained);
  }
}
