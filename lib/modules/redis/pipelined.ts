import type { LogLevel } from '../../core/error_log.js';
import { ACTION_BODY, ACTION_CONNECT, ACTION_HEADER, ACTION_SEND, prematurelyClosed } from '../../upstream/messages.js';
import type { PipelinedEntry, PipelinedHost } from '../../upstream/pipelined_conn.js';
import { ReplyScanner, ScanResult } from '../../upstream/resp_scanner.js';
import { ACTION_SSL } from '../../upstream/ssl.js';
import type { Failure } from '../../upstream/run.js';
import type { RedisRun } from './handler.js';
import { RedisReading, type ReadingOwner } from './reading.js';

/*
 * **extension** (redis2d_pipeline): one redis_pass request on a connection
 * shared with other requests of the same peer and the same SELECT/AUTH
 * (lib/upstream/pipelined_conn.ts; the connection's key carries that
 * state, so every request on it sends the very same SELECT before its
 * GET). Redis receives exactly the bytes nginx sends, several requests'
 * commands in one write.
 *
 * The request's slice of the reply stream is framed by a RESP scanner
 * expecting its 2 replies (3 with AUTH); the slice is read as on a
 * connection of its own (reading.ts), so statuses, bytes, log lines and
 * next_upstream are the exclusive path's. What differs because the
 * connection is shared: a request finalized before its reply ended (an
 * invalid header, HEAD, a 416, a client gone) has the rest of its replies
 * read and dropped instead of the connection closed (it is closed when
 * nobody else is on it), and a reply the scanner cannot frame fails the
 * requests behind it as if the connection had closed. A client that
 * pushes back stops the connection once the bytes it was given are out
 * (requests behind it wait; new ones go elsewhere, see pipelined_conn.ts).
 */

/* a reply this large streaming: joiners go elsewhere, the location's next requests run exclusive (handler.ts) */
const BIG_REPLY = 128 * 1024;

export class RedisPipeTry implements PipelinedEntry, ReadingOwner {
  readonly run: RedisRun;
  readonly o: RedisRun;
  private readonly sc: PipelinedHost;
  readonly t0 = performance.now();
  connectTime: number | undefined;
  private readonly cached: boolean;
  private readonly scanner: ReplyScanner;
  private readonly rd = new RedisReading(this);
  done = false;
  discard = false;
  replied = false;
  broke = false;
  sent = false;
  big = false;
  private seq = 0;
  private got = 0;
  /** a reply byte was read (the log says `reading response header` from then on) */
  private gotBytes = false;
  /** made on the first push-back (most replies never wait for their client) */
  private onDrained: (() => void) | undefined = undefined;

  constructor(run: RedisRun, sc: PipelinedHost) {
    this.run = this.o = run;
    this.sc = sc;
    this.cached = sc.fromCache;
    this.connectTime = sc.connected ? 0 : undefined;
    // on a cluster the replies to READONLY / ASKING come first (run.skip, set by startTry)
    this.scanner = new ReplyScanner((run.cmd.auth ? 3 : 2) + run.skip);
  }

  sentBy(seq: number): void {
    this.sent = true;
    this.seq = seq;
  }

  /** Redis has read the command (its write completed, or a reply byte came) */
  reading(): boolean {
    return this.gotBytes || (this.sent && this.sc.ackedSeq >= this.seq);
  }

  action(): string {
    if (!this.sc.connected) {
      // TCP is up and the TLS handshake runs
      return this.run.ssl !== undefined && !this.sc.tcpConnecting ? ACTION_SSL : ACTION_CONNECT;
    }
    if (!this.reading()) return ACTION_SEND;
    return this.rd.inBody ? ACTION_BODY : ACTION_HEADER;
  }

  isDone(): boolean {
    return this.done;
  }

  started(): boolean {
    return this.rd.started;
  }

  feed(chunk: Buffer, off: number, n: number, last: boolean): number {
    if (this.rd.waiting && !this.discard && !this.done) return -1;
    // the scanner reads chunk[off, n) in place; one view is made, of what the reading gets
    let end = n;
    const sr = this.scanner.feed(chunk, off, n);
    if (sr === ScanResult.Done) {
      end = this.scanner.end;
      this.replied = true;
    } else if (sr === ScanResult.Invalid) this.broke = true;
    const used = end - off;
    this.count(used);
    if (this.discard || this.done) return used;
    this.gotBytes = true;
    // with nothing asked behind it, bytes after its replies are the server's extra bytes: the reading sees them as nginx would
    if (last) end = n;
    this.rd.data(off === 0 && end === chunk.length ? chunk : chunk.subarray(off, end));
    return used;
  }

  private count(bytes: number): void {
    if ((this.got += bytes) > BIG_REPLY && this.got > this.run.rlcf.bufferSize && !this.big) {
      this.big = true;
      this.run.bigReply();
    }
  }

  settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.done) return;
    const action = this.action();
    this.done = true;
    this.rd.release();
    // where nginx would close its connection (an error, HEAD, a 416, extra bytes): closed if nobody else is
    // on it, else the rest of this request's replies is read and dropped
    if (!reusable && !this.broke) this.sc.abandon(this);
    this.run.tryDone({
      status,
      started: this.rd.started,
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

  fail(status: number, failure: Failure, msg: string, level: LogLevel = 'error'): void {
    if (this.done) return;
    if (msg) this.run.log(level, msg);
    this.settle(this.rd.started ? 200 : status, false, false, failure, false);
  }

  /** Redis closed the connection inside its reply: as on its own connection, logged, the response cut */
  cut(): void {
    this.fail(502, 'error', prematurelyClosed(this.action()));
  }

  abort(): void {
    if (this.done) return;
    this.settle(this.rd.started ? 200 : 499, false, false, undefined, true);
  }

  bodyStarted(): void {}

  pushBack(): void {
    this.run.r.onDrain(
      (this.onDrained ??= (): void => {
        this.rd.waiting = false;
        this.sc.resumeFor(this);
      }),
    );
  }
}
