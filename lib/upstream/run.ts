import type { LogLevel } from '../core/error_log.js';
import { DONE, type Request, type UpstreamVars } from '../http/request.js';
import type { UpstreamSrvConf } from './module.js';
import { PeerPicker, peerTarget, type PeerTarget } from './peers.js';
import { ACTION_CONNECT, ACTION_HEADER, ACTION_SEND } from './messages.js';

/*
 * One request's run through an upstream (ngx_http_upstream_connect /
 * ngx_http_upstream_next), for any protocol: ask the balancer for a peer,
 * start a try on it (the protocol's part: subclasses implement startTry),
 * and when the try fails before anything reached the client, free the peer
 * as failed (max_fails accounting) and go on while tries are left and the
 * location's *_next_upstream names the failure. No live peer is nginx's
 * NGX_BUSY: `no live upstreams`, 502 (never retried). The $upstream_*
 * variables get one entry per try.
 *
 * Tries report synchronously (tryDone), so a reply that completes within
 * one read finishes the response in that same turn (header, body and last
 * chunk leave in one write).
 */

// *_next_upstream masks (NGX_HTTP_UPSTREAM_FT_* and NGX_CONF_BITMASK_SET)
export const NEXT_UPSTREAM_SET = 0x1;
export const NEXT_UPSTREAM_ERROR = 0x2;
export const NEXT_UPSTREAM_TIMEOUT = 0x4;
export const NEXT_UPSTREAM_INVALID_RESPONSE = 0x8;
export const NEXT_UPSTREAM_HTTP_500 = 0x10;
export const NEXT_UPSTREAM_HTTP_502 = 0x20;
export const NEXT_UPSTREAM_HTTP_503 = 0x40;
export const NEXT_UPSTREAM_HTTP_504 = 0x80;
export const NEXT_UPSTREAM_HTTP_403 = 0x100;
export const NEXT_UPSTREAM_NOT_FOUND = 0x200;
export const NEXT_UPSTREAM_HTTP_429 = 0x400;
export const NEXT_UPSTREAM_NON_IDEMPOTENT = 0x4000;
export const NEXT_UPSTREAM_OFF = 0x80000000 | 0;

/**
 * The *_next_upstream words of the key-value modules (redis2, HttpRedis,
 * memc; nginx's memcached module has the same list): no HTTP statuses.
 */
export const NEXT_UPSTREAM_KV_MASKS: Readonly<Record<string, number>> = {
  error: NEXT_UPSTREAM_ERROR,
  timeout: NEXT_UPSTREAM_TIMEOUT,
  invalid_response: NEXT_UPSTREAM_INVALID_RESPONSE,
  not_found: NEXT_UPSTREAM_NOT_FOUND,
  off: NEXT_UPSTREAM_OFF,
};

/**
 * Why a try failed, in *_next_upstream's terms: a connection failure, or
 * (HTTP protocols) a response status the location retries on.
 */
export type Failure = 'error' | 'timeout' | 'invalid_response' | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_403' | 'http_404' | 'http_429';

const FAILURE_BIT: Record<Failure, number> = {
  error: NEXT_UPSTREAM_ERROR,
  timeout: NEXT_UPSTREAM_TIMEOUT,
  invalid_response: NEXT_UPSTREAM_INVALID_RESPONSE,
  http_500: NEXT_UPSTREAM_HTTP_500,
  http_502: NEXT_UPSTREAM_HTTP_502,
  http_503: NEXT_UPSTREAM_HTTP_503,
  http_504: NEXT_UPSTREAM_HTTP_504,
  http_403: NEXT_UPSTREAM_HTTP_403,
  http_404: NEXT_UPSTREAM_NOT_FOUND,
  http_429: NEXT_UPSTREAM_HTTP_429,
};

/** the response statuses *_next_upstream can name, by status code */
export const STATUS_FAILURE: ReadonlyMap<number, Failure> = new Map<number, Failure>([
  [500, 'http_500'],
  [502, 'http_502'],
  [503, 'http_503'],
  [504, 'http_504'],
  [403, 'http_403'],
  [404, 'http_404'],
  [429, 'http_429'],
]);

/**
 * ngx_conf_merge_bitmask_value for *_next_upstream: inherited, else
 * `error timeout`; `off` clears every other bit.
 */
export function mergeNextUpstream(conf: number, prev: number): number {
  const v = conf !== 0 ? conf : prev !== 0 ? prev : NEXT_UPSTREAM_SET | NEXT_UPSTREAM_ERROR | NEXT_UPSTREAM_TIMEOUT;
  return v & NEXT_UPSTREAM_OFF ? NEXT_UPSTREAM_SET | NEXT_UPSTREAM_OFF : v;
}

/** How a location limits its retries (*_next_upstream_tries / _timeout; 0: no limit). */
export interface RetryLimits {
  /** the *_next_upstream mask */
  mask: number;
  tries: number;
  /** ms since the first try */
  timeout: number;
}

/** How a try ended, as the protocol's try reports it. */
export interface UpstreamOutcome {
  /** $upstream_status: 200 once the reply started, else 502 / 504 / 500 */
  status: number;
  /** status and headers went to the client */
  started: boolean;
  /** the response ended normally (possibly after a logged invalid reply or extra bytes) */
  complete: boolean;
  /** the connection could go back to a pool */
  reusable: boolean;
  /** set when the try failed (not complete) */
  failure: Failure | undefined;
  /** the client's side went away (abort) */
  aborted: boolean;
  /** the connection came from the keepalive cache */
  cached: boolean;
  /** the request was (at least partly) written: nginx's u->request_sent */
  sent: boolean;
  /** what the try was doing when it ended (the log's `while ...`) */
  action: string;
  /** ms from start to connected, undefined if never connected */
  connectTime: number | undefined;
  /** ms from start to the end of this try */
  responseTime: number;
}

/** Who hears the outcome: called once, synchronously, as the try ends. */
export interface TryOwner {
  tryDone(out: UpstreamOutcome): void;
}

/** A try under way: the client went away, close its connection (never reuse it). */
export interface UpstreamTryHandle {
  abort(): void;
  /** what the try is doing (the log's `while ...`); connecting when not told */
  action?(): string;
}

/* methods nginx will not resend once the request went out (NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT) */
const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH']);

const NO_PEER: PeerTarget = { name: '', addr: '' };

/* $upstream_*_time: seconds with milliseconds, as nginx's %T.%03M */
export function msecText(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const n = Math.max(0, Math.floor(ms));
  const m = n % 1000;
  return `${Math.floor(n / 1000)}.${m < 10 ? '00' : m < 100 ? '0' : ''}${m}`;
}

/* `$a, $b`: nginx's lists of one value per try */
function listAdd(prev: string, x: string): string {
  return prev === '' ? x : `${prev}, ${x}`;
}

/** a try's status never set (the client left first): `-` in $upstream_status */
const NO_STATUS = -1;
const statusText = (n: number): string => (n === NO_STATUS ? '-' : String(n));

export abstract class UpstreamRun implements TryOwner, UpstreamVars {
  readonly r: Request;
  readonly picker: PeerPicker;
  /** the log's upstream scheme: `redis2` gives `upstream: "redis2://127.0.0.1:6379"` */
  private readonly scheme: string;
  /** the location's *_next_upstream mask and limits */
  private readonly limits: RetryLimits;
  /** when the first try started (for *_next_upstream_timeout) */
  private readonly t0: number;
  peer: PeerTarget = NO_PEER;
  cur: UpstreamTryHandle | undefined = undefined;
  /** what the log's upstream text adds after the peer (proxy: the request URI) */
  protected addrSuffix = '';
  /** nginx logs a timeout in ngx_http_upstream_next, after freeing the peer */
  private timedOut: string | undefined = undefined;
  /*
   * $upstream_* (UpstreamVars): the text of the tries before the last
   * recorded one (only a request that went to a next peer has any), the
   * last recorded try as numbers, the peer of the try under way and the
   * status its header gave; nginx's lists are made when a variable is read.
   */
  private addrs = '';
  private statuses = '';
  private rtimes = '';
  private ctimes = '';
  private recorded = false;
  private lastAddr = '';
  private lastStatus = 0;
  private lastRt: number | undefined = undefined;
  private lastCt: number | undefined = undefined;
  /** the peer of the try under way (in $upstream_addr before the try is recorded) */
  private curAddr: string | undefined = undefined;
  /** the status of the try under way once its header came (replyStarted) */
  private liveStatus = 0;
  /**
   * The location's ignore_client_abort (redis2 hard-codes it on, ngx_http_redis
   * off, proxy_/fastcgi_ignore_client_abort): when set, a client's FIN is not
   * watched and the request runs to its end, the response written to the
   * half-closed client. Subclasses set it in their constructor.
   */
  protected ignoreClientAbort = false;
  /** run() is running: an end now is returned to the engine, not finalized here */
  private starting = true;
  private result = DONE;

  constructor(r: Request, us: UpstreamSrvConf, scheme: string, limits: number | RetryLimits) {
    this.r = r;
    this.picker = new PeerPicker(r, us);
    this.scheme = scheme;
    this.limits = typeof limits === 'number' ? { mask: limits, tries: 0, timeout: 0 } : limits;
    this.picker.limitTries(this.limits.tries);
    this.t0 = this.limits.timeout > 0 ? performance.now() : 0;
  }

  /**
   * Would a failure of the current try go to the next peer? (ngx_http_upstream_test_next
   * for response statuses: the try then discards the response; else it is passed on)
   */
  wouldRetry(failure: Failure, sent: boolean): boolean {
    return this.picker.tries > 1 && this.retryAllowed(failure, sent);
  }

  private retryAllowed(failure: Failure, sent: boolean): boolean {
    const mask = this.limits.mask;
    if ((mask & NEXT_UPSTREAM_OFF) !== 0 || (mask & FAILURE_BIT[failure]) === 0) return false;
    if (sent && NON_IDEMPOTENT.has(this.r.method) && (mask & NEXT_UPSTREAM_NON_IDEMPOTENT) === 0) return false;
    if (this.limits.timeout > 0 && performance.now() - this.t0 >= this.limits.timeout) return false;
    return true;
  }

  /** the protocol's part: connect to (or reuse a connection to) `peer` and run one try */
  protected abstract startTry(peer: PeerTarget): UpstreamTryHandle;

  /** start; returns what a content handler returns (DONE, or a status to finalize with) */
  run(): number {
    this.next();
    this.starting = false;
    if (this.cur !== undefined) {
      this.r.onAbort(() => this.cur?.abort());
      if (!this.ignoreClientAbort) this.r.checkBroken(() => this.clientClosed());
    }
    return this.result;
  }

  /**
   * ngx_http_upstream_check_broken_connection (epoll): the client half-closed
   * while a try runs and the location does not ignore client aborts: the
   * try's connection closes, the request ends as 499. True when it did.
   */
  private clientClosed(): boolean {
    const cur = this.cur;
    if (cur === undefined) return false;
    const action = cur.action?.() ?? ACTION_CONNECT;
    // nginx's log action turns to "reading response header" only when the
    // upstream's read event runs process_header: until a reply byte comes it
    // still says "sending request" (docs/behaviour.md §5)
    const text = action === ACTION_HEADER ? ACTION_SEND : action;
    this.r.log('info', `epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too while ${text}`);
    return true;
  }

  private next(): void {
    const r = this.r;
    const rt = this.picker.get();
    if (!rt) {
      const name = this.picker.name;
      r.upstreamAddr = `${this.scheme}://${name}${this.addrSuffix}`;
      this.record(name, 502, 0, undefined);
      r.log('error', 'no live upstreams while connecting to upstream');
      this.end(502);
      return;
    }
    const peer = peerTarget(rt, this.scheme);
    this.peer = peer;
    r.upstreamAddr = this.addrSuffix === '' ? peer.addr : peer.addr + this.addrSuffix;
    this.curAddr = peer.name;
    r.upstreamVars = this;
    this.timedOut = undefined;
    this.cur = this.startTry(peer);
  }

  /** a try ended (rtime, ctime: ms; ctime undefined: `-`) */
  private record(addr: string, status: number, rtime: number | undefined, ctime: number | undefined): void {
    if (this.recorded) {
      // a second try: the previous one becomes text
      this.addrs = listAdd(this.addrs, this.lastAddr);
      this.statuses = listAdd(this.statuses, statusText(this.lastStatus));
      this.rtimes = listAdd(this.rtimes, msecText(this.lastRt));
      this.ctimes = listAdd(this.ctimes, msecText(this.lastCt));
    }
    this.recorded = true;
    this.lastAddr = addr;
    this.lastStatus = status;
    this.lastRt = rtime;
    this.lastCt = ctime;
    this.curAddr = undefined;
    this.liveStatus = 0;
    this.r.upstreamVars = this;
  }

  // UpstreamVars: $upstream_* as nginx prints them

  addrList(): string | undefined {
    let s = this.recorded ? listAdd(this.addrs, this.lastAddr) : this.addrs;
    if (this.curAddr !== undefined) s = listAdd(s, this.curAddr);
    return this.recorded || this.curAddr !== undefined ? s : undefined;
  }

  status(): string | undefined {
    const done = this.recorded ? listAdd(this.statuses, statusText(this.lastStatus)) : undefined;
    if (this.liveStatus !== 0) return listAdd(done ?? '', String(this.liveStatus));
    return done;
  }

  responseTime(): string | undefined {
    return this.recorded ? listAdd(this.rtimes, msecText(this.lastRt)) : undefined;
  }

  connectTime(): string | undefined {
    return this.recorded ? listAdd(this.ctimes, msecText(this.lastCt)) : undefined;
  }

  /** the response header is about to go out: nginx has $upstream_status 200 by then */
  protected replyStarted(status: number): void {
    this.liveStatus = status;
    this.r.upstreamVars = this;
  }

  /** the response is complete and about to be finished: a protocol's last bytes (redis2d_output json's `]`) */
  protected completing(): void {}

  /** what the engine does with a handler's late result (phases.ts contentDone) */
  private end(rc: number): void {
    if (this.starting) {
      this.result = rc;
      return;
    }
    const r = this.r;
    if (rc === DONE || (r as Request & { finished?: boolean }).finished) return;
    r.finalize(rc);
  }

  /** a try's log line; a timeout waits for the try's end, as nginx logs it in ngx_http_upstream_next */
  log(level: LogLevel, msg: string): void {
    if (level === 'error' && msg.startsWith('upstream timed out') && !this.r.headerSent) this.timedOut = msg;
    else this.r.log(level, msg);
  }

  /**
   * The protocol saw a redirect (a Redis Cluster's -MOVED / -ASK) before
   * anything reached the client: true sends the request again at once, the
   * try recorded in $upstream_* and not counted against the tries.
   */
  protected redirected(_out: UpstreamOutcome): boolean {
    return false;
  }

  /** ms to wait before sending a redirected request again (0: at once) */
  protected redirectDelay(): number {
    return 0;
  }

  tryDone(out: UpstreamOutcome): void {
    this.cur = undefined;
    try {
      if (this.redirected(out)) {
        this.record(this.peer.name, out.status, out.responseTime, out.connectTime);
        this.picker.free(false);
        this.picker.refund();
        const delay = this.redirectDelay();
        if (delay <= 0) this.next();
        else {
          // the client may leave meanwhile: nothing is running then, nothing to start
          setTimeout(() => {
            if (!this.r.aborted) this.next();
          }, delay);
        }
        return;
      }
      this.afterTry(out);
    } catch (e) {
      // as the engine treats a content handler's rejected promise
      const r = this.r;
      r.log('alert', `content handler failed: ${(e as Error).stack ?? e}`);
      r.finalize(r.headerSent ? 502 : 500);
    }
  }

  private afterTry(out: UpstreamOutcome): void {
    const r = this.r;
    const picker = this.picker;
    // the client gone before the response started: nginx never set the try's status ($upstream_status `-`);
    // a protocol's own early end (a 416 from the range filter) had its status
    const status = out.aborted && !out.started && r.aborted ? NO_STATUS : out.status;
    this.record(this.peer.name, status, out.responseTime, out.connectTime);

    if (out.aborted || r.aborted) {
      picker.free(false);
      if (!r.aborted && r.headerSent && r.headerOnly) {
        // HEAD (or a 304): nginx finalizes right after the header, closing the upstream side
        r.finish();
      }
      return this.end(DONE);
    }
    const timedOut = this.timedOut;
    if (out.complete || out.started || out.failure === undefined || out.status === 500) {
      // finalized without next-upstream: the peer is freed as fine
      picker.free(false);
      if (timedOut) r.log('error', timedOut);
      if (out.complete) {
        this.completing();
        r.finish();
        return this.end(DONE);
      }
      // a started body can only be cut short (the client connection closes)
      if (out.started) return this.end(out.failure === 'timeout' ? 504 : 502);
      return this.end(out.status);
    }

    // a 403 or 404 does not count against the peer (nginx's NGX_PEER_NEXT)
    const counts = out.failure !== 'http_403' && out.failure !== 'http_404';
    if (picker.free(counts)) r.log('warn', `upstream server temporarily disabled while ${out.action}`);
    if (timedOut) r.log('error', timedOut);
    if (out.cached && out.failure === 'error') picker.refund();
    const retry = picker.tries > 0 && this.retryAllowed(out.failure, out.sent);
    if (!retry) return this.end(out.status);
    this.next();
  }
}
