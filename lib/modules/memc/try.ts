import type { Socket } from 'node:net';
import { makeRoom } from '../../core/slots.js';
import { ConnPhase, ConnTry } from '../../upstream/conn_try.js';
import { ACTION_BODY, ACTION_HEADER, prematurelyClosed } from '../../upstream/messages.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { STATUS_FAILURE, type Failure } from '../../upstream/run.js';
import { openUpstreamSocket } from '../../upstream/ssl.js';
import { MemcCmd } from './conf.js';
import { atotm, type MemcRun } from './handler.js';
import { GET_TRAILER, parseGetHeader, parseSimple } from './reply.js';
import { Piece, ValueFilter } from '../../upstream/value_filter.js';

/*
 * One exchange with one memcached peer, as nginx's non-buffered upstream
 * runs the memc module: the generic try (ConnTry: connect or take an idle
 * connection from the upstream's keepalive cache, write the command once,
 * timeouts and their log lines) with memc's process_header and input
 * filters:
 *
 *   - get: the VALUE line (reply.ts) gives 200 with Content-Length N,
 *     $memc_flags (and Last-Modified from them under
 *     memc_flags_to_last_modified); the value streams to the client, the
 *     socket paused while the client is slow; END is nginx's 404 page;
 *   - any other command: the whole reply (at most memc_buffer_size bytes)
 *     is the body, with the status its match gives (201 STORED, 404
 *     NOT_FOUND as nginx's page, 502 ERROR...); a reply no alternative
 *     matches is a 502 with an empty body and the connection closed.
 *
 * nginx intercepts a 404 always (the module sets intercept_404) and any
 * status >= 300 the location has an error_page for (intercept_errors);
 * the response has no 304 (the upstream is not cacheable). A connection
 * goes back to the cache after a complete reply with nothing after it; a
 * HEAD answer closes it (nginx finalizes the upstream after the header).
 */

const NO_BYTES = Buffer.alloc(0);
const ACTION_CLIENT = 'sending to client';

export class MemcTry extends ConnTry {
  readonly run: MemcRun;
  /** the reply's header bytes so far (nginx's u->buffer, at most memc_buffer_size of them count) */
  private head: Buffer = NO_BYTES;
  /** bytes of `head` the simple machine has seen (its `at pos` counts from there) */
  private seen = 0;
  private value: ValueFilter | undefined = undefined;
  /** the value part of a get is streaming */
  private inBody = false;
  /** no read since the one that brought the header (the log's action is still the header's) */
  private firstRead = false;
  /**
   * the peer's bytes of this I/O round are still coming: nginx, right
   * after sending the header, reads on at once and meets a FIN that came
   * with them while `sending to client`; a later one is met `reading upstream`
   */
  private sameRound = false;

  constructor(run: MemcRun, peer: PeerTarget) {
    super(run, run, peer, run.mlcf);
    this.run = run;
    this.begin(run.pool, peer.name, true);
  }

  protected openSocket(): Socket | undefined {
    // ngx_event_connect_peer: none when every worker_connections slot is taken
    if (!makeRoom()) return undefined;
    return openUpstreamSocket(this.peer as PeerTarget, undefined, undefined, '');
  }

  protected request(): Buffer {
    return this.run.query;
  }

  protected onData(chunk: Buffer): void {
    if (this.inBody) {
      this.firstRead = false;
      this.body(chunk, 0);
      return;
    }
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    if (this.run.cmd === MemcCmd.Get) this.getHeader();
    else this.simple();
  }

  private logHeader(level: 'info' | 'error', msg: string): void {
    this.run.log(level, `${msg} while ${ACTION_HEADER}`);
  }

  /** a status nginx does not pass on: the next peer (*_next_upstream), the 404 page, an error_page */
  private diverted(status: number, reusable: boolean): boolean {
    const run = this.run;
    const failure = STATUS_FAILURE.get(status);
    if (failure !== undefined && run.wouldRetry(failure, true)) {
      this.settle(status, false, reusable, failure, false);
      return true;
    }
    if (status === 404 || (status >= 300 && run.r.loc.errorPages?.some((p) => p.status === status))) {
      this.settle(status, false, reusable, undefined, false);
      return true;
    }
    return false;
  }

  /** the response's status line and headers go out; false when that ended the try (HEAD, a client gone) */
  private sendHead(status: number, length: number): boolean {
    const run = this.run;
    const r = run.r;
    r.status = status;
    r.contentLength = length;
    // ngx_http_upstream_send_response: not cacheable, so no 304 / 412
    r.disableNotModified = true;
    this.started = true;
    this.phase = ConnPhase.Body;
    run.started(status);
    r.sendHeader();
    if (this.isDone()) return false;
    if (r.headerOnly) {
      // nginx finalizes the upstream right after a header-only answer: closed, not cached
      this.abort();
      return false;
    }
    return true;
  }

  /* a non-get command: match the reply within memc_buffer_size bytes */
  private simple(): void {
    const run = this.run;
    const size = run.mlcf.bufferSize;
    const head = this.head;
    const avail = Math.min(head.length, size);
    const res = parseSimple(run.cmd, avail === head.length ? head : head.subarray(0, avail));
    const from = this.seen;
    this.seen = avail;
    switch (res.kind) {
      case 'again':
        if (avail >= size) this.fail(502, 'invalid_response', `upstream sent too big header while ${ACTION_HEADER}`);
        return;
      case 'invalid': {
        const text = head.toString('latin1', 0, res.at);
        this.logHeader('error', `memcached sent invalid response for command "${run.name}" at pos ${res.at - from}: ${text}`);
        if (this.diverted(502, false)) return;
        // a 502 with no length and no body; the connection is not kept
        if (!this.sendHead(502, -1)) return;
        this.settle(502, true, false, undefined, false);
        return;
      }
      case 'done': {
        const reusable = res.end === head.length;
        if (this.diverted(res.status, reusable)) return;
        if (!this.sendHead(res.status, res.end)) return;
        run.r.send(head.subarray(0, res.end));
        this.head = NO_BYTES;
        if (!this.isDone()) this.settle(res.status, true, reusable, undefined, false);
      }
    }
  }

  /* get: the VALUE / END line within memc_buffer_size bytes, then the value */
  private getHeader(): void {
    const run = this.run;
    const r = run.r;
    const size = run.mlcf.bufferSize;
    const head = this.head;
    const avail = Math.min(head.length, size);
    const h = parseGetHeader(head, avail, avail >= size, run.key, (level, msg) => this.logHeader(level, msg));
    switch (h.kind) {
      case 'again':
        return;
      case 'too-big':
        this.fail(502, 'invalid_response', `upstream sent too big header while ${ACTION_HEADER}`);
        return;
      case 'invalid':
        this.fail(502, 'invalid_response', '');
        return;
      case 'not-found':
        this.head = NO_BYTES;
        this.diverted(404, h.body === head.length);
        return;
      case 'found': {
        r.vars[run.mmcf.flagsIndex] = h.flags;
        if (run.mlcf.flagsToLastModified === 1) r.lastModifiedTime = atotm(h.flags);
        this.head = NO_BYTES;
        this.value = new ValueFilter(h.length, GET_TRAILER);
        this.inBody = true;
        this.firstRead = true;
        this.sameRound = true;
        setImmediate(() => (this.sameRound = false));
        if (!this.sendHead(200, h.length)) return;
        this.body(head, h.body);
      }
    }
  }

  private body(data: Buffer, at: number): void {
    switch (this.value!.feed(data, at, this)) {
      case Piece.More:
        return;
      case Piece.Done:
        if (!this.isDone()) this.settle(200, true, true, undefined, false);
        return;
      case Piece.BadTrailer:
        if (this.isDone()) return;
        this.run.log('error', `memcached sent invalid trailer while ${this.firstRead ? ACTION_HEADER : ACTION_BODY}`);
        this.settle(200, true, false, undefined, false);
    }
  }

  protected override onEnd(): void {
    if (this.inBody && this.sameRound) this.fail(502, 'error', prematurelyClosed(ACTION_CLIENT));
    else super.onEnd();
  }

  /** value bytes to the client (ValueSink) */
  valueBytes(b: Buffer, from: number, to: number): void {
    this.toClient(this.run.r, from === 0 && to === b.length ? b : b.subarray(from, to));
  }

  protected override settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.isDone()) return;
    this.head = NO_BYTES;
    super.settle(status, complete, reusable, failure, aborted);
  }
}
