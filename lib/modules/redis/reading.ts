import { Redirect } from '../../upstream/cluster/route.js';
import { ACTION_HEADER } from '../../upstream/messages.js';
import type { Failure } from '../../upstream/run.js';
import type { HttpRequest } from '../../http/http_request.js';
import type { RedisRun } from './handler.js';
import { markRedisResponse, rangeOf } from './ranges.js';
import { parseHeader, VALUE_TRAILER } from './reply.js';
import { Piece, ValueFilter } from '../../upstream/value_filter.js';

/*
 * Reading one request's reply, the same on a connection of its own
 * (try.ts) and on a shared one (pipelined.ts): gather the header (at most
 * redis_buffer_size bytes, reply.ts), then
 *   - found: 200 (206 or 416 by ranges.ts), Content-Length N (plus
 *     `Content-Encoding: gzip` under redis_gzip_flag), the value streamed
 *     as it arrives; when the client pushes back the owner stops reading
 *     until it drains (memory follows the socket buffers, never the
 *     value's size); the CR LF after it checked and dropped;
 *   - not found: nginx's 404 page (error_page applies: the module sets
 *     intercept_404), or the next peer under `redis_next_upstream
 *     not_found`;
 *   - invalid: 502, or the next peer under `invalid_response`.
 * A HEAD request ends the exchange as soon as the header is out (nginx
 * finalizes the upstream there). On a `redis_cluster` upstream the replies
 * to READONLY / ASKING come first and are dropped, and a -MOVED / -ASK /
 * -CLUSTERDOWN / -TRYAGAIN among the module's status lines ends the try as
 * a redirect (docs/behaviour.md §12).
 */

/** What the reading needs from its try. */
export interface ReadingOwner {
  readonly run: RedisRun;
  isDone(): boolean;
  /** the outcome; `reusable`: the connection may be kept (exclusive path) */
  settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void;
  /** an error (`msg` logged when non-empty) */
  fail(status: number, failure: Failure, msg: string): void;
  /** the upstream is finalized early (HEAD, 416): the connection is not kept */
  abort(): void;
  /** the header went out: what follows is the value */
  bodyStarted(): void;
  /** the client's socket is full: stop reading until it drains, then clear `waiting` */
  pushBack(): void;
}

const NO_BYTES = Buffer.alloc(0);
const LF = 0x0a;

export class RedisReading {
  private readonly owner: ReadingOwner;
  /** the header bytes so far (nginx's u->buffer) */
  private head: Buffer = NO_BYTES;
  private value: ValueFilter | undefined = undefined;
  /** the header went out and the value streams */
  inBody = false;
  /** the response started (status and headers out) */
  started = false;
  /** the client pushed back: reading waits for its drain */
  waiting = false;
  /** value offset of the next byte, and the part of the value the client gets */
  private offset = 0;
  private from = 0;
  private to = 0;

  constructor(owner: ReadingOwner) {
    this.owner = owner;
  }

  release(): void {
    this.head = NO_BYTES;
  }

  /** reply bytes from Redis */
  data(chunk: Buffer): void {
    if (this.inBody) this.body(chunk, 0);
    else this.header(chunk);
  }

  /* gather the header (at most redis_buffer_size bytes), then act on it */
  private header(chunk: Buffer): void {
    const owner = this.owner;
    const run = owner.run;
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
        owner.fail(502, 'invalid_response', `upstream sent too big header while ${ACTION_HEADER}`);
        return;
      case 'invalid':
        owner.fail(502, 'invalid_response', '');
        return;
      case 'not-found': {
        // the module marks the connection reusable (u->keepalive): we also want nothing after `$-1`
        const reusable = h.body === head.length;
        this.head = NO_BYTES;
        owner.settle(404, false, reusable, run.wouldRetry('http_404', true) ? 'http_404' : undefined, false);
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
    const run = this.owner.run;
    let at = 0;
    while (at < head.length && (head[at] === 0x2b || head[at] === 0x2d)) {
      const eol = head.indexOf(LF, at);
      if (eol < 0) return false;
      if (head[at] === 0x2d && run.route!.redirected(head.subarray(at, eol > at && head[eol - 1] === 0x0d ? eol - 1 : eol)) !== Redirect.None) {
        run.redirect = true;
        this.head = NO_BYTES;
        this.owner.settle(200, false, eol + 1 === head.length, undefined, false);
        return true;
      }
      at = eol + 1;
    }
    return false;
  }

  /** a `$N` header: the response's header goes out (ranges.ts decides 200, 206 or 416), then the value part */
  private found(length: number, head: Buffer, bodyAt: number): void {
    const owner = this.owner;
    const run = owner.run;
    const r = run.r;
    this.head = NO_BYTES;
    const range = rangeOf(r, length);
    if (range.kind === 'unsatisfiable') {
      // nginx's header filters run on the 200 first (add_header's lines stay),
      // then its range filter answers the 416 page with `Content-Range: bytes */N`;
      // the upstream is finalized there (the connection closes)
      owner.settle(200, false, false, undefined, true);
      r.status = 200;
      r.contentLength = length;
      if (run.rlcf.gzipFlag !== 0) r.headersOut.push(['Content-Encoding', 'gzip']);
      (r as HttpRequest).allowRanges = true;
      r.sendHeader();
      return;
    }
    this.value = new ValueFilter(length, VALUE_TRAILER);
    if (range.kind === 'part') {
      this.from = range.start;
      this.to = range.end;
    } else this.to = length;
    r.status = range.kind === 'part' ? 206 : 200;
    r.contentLength = this.to - this.from;
    if (run.rlcf.gzipFlag !== 0) r.headersOut.push(['Content-Encoding', 'gzip']);
    markRedisResponse(r, range, length);
    this.started = true;
    this.inBody = true;
    owner.bodyStarted();
    run.started(200);
    r.sendHeader();
    if (owner.isDone()) return;
    if (r.method === 'HEAD') {
      // nginx finalizes the upstream right after a HEAD's header: closed, not cached
      owner.abort();
      return;
    }
    this.body(head, bodyAt);
  }

  private body(data: Buffer, at: number): void {
    const owner = this.owner;
    switch (this.value!.feed(data, at, this)) {
      case Piece.More:
        return;
      case Piece.Done:
        if (!owner.isDone()) owner.settle(200, true, true, undefined, false);
        return;
      case Piece.BadTrailer:
        if (owner.isDone()) return;
        owner.run.log('error', 'redis sent invalid trailer');
        owner.settle(200, true, false, undefined, false);
    }
  }

  /** the value's bytes in [from, to) go on (a 206 answers part of it; the rest is read and dropped) */
  valueBytes(buf: Buffer, s: number, e: number): void {
    const at = this.offset;
    const end = at + (e - s);
    this.offset = end;
    if (end <= this.from || at >= this.to) return;
    // the part of buf[s, e) inside the range
    const ps = at >= this.from ? s : s + (this.from - at);
    const pe = end <= this.to ? e : e - (end - this.to);
    this.deliver(ps === 0 && pe === buf.length ? buf : buf.subarray(ps, pe));
  }

  /* value bytes to the client; a full client socket stops the reading until it drains */
  private deliver(b: Buffer): void {
    const r = this.owner.run.r;
    if (r.send(b) || r.aborted || this.waiting || this.owner.isDone()) return;
    this.waiting = true;
    this.owner.pushBack();
  }
}
