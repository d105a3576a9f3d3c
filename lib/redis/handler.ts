import { DONE, type ContentHandler, type Request } from '../http/request.js';
import { evalComplexValue } from '../http/eval.js';
import {
  NEXT_UPSTREAM_ERROR,
  NEXT_UPSTREAM_INVALID_RESPONSE,
  NEXT_UPSTREAM_OFF,
  NEXT_UPSTREAM_TIMEOUT,
  redis2Module,
  setRedis2ContentHandler,
  type Redis2LocConf,
} from '../modules/redis2.js';
import { findUpstream, upstreamModule, type UpstreamMainConf, type UpstreamSrvConf } from '../modules/upstream.js';
import { parseAddrPort } from '../modules/upstream_url.js';
import { buildQuery } from './query.js';
import { PeerPicker, redisPeer, type PeerTarget } from './peers.js';
import { noPool, poolOf, type ConnectionPool } from './pool.js';
import { stateTag } from './conn_state.js';
import { joinShared, sharedGroupsOf, type SharedGroups } from './shared.js';
import type { SharedTry } from './shared_try.js';
import {
  UpstreamTry,
  type Failure,
  type LogLevel,
  type ReplySink,
  type TryOwner,
  type UpstreamOutcome,
  type UpstreamRequestOptions,
} from './upstream_request.js';

/*
 * The redis2 content handler (ngx_http_redis2_handler + the parts of
 * ngx_http_upstream it relies on): pick the upstream, build the query, run
 * it against a peer (the next one on errors redis2_next_upstream names, as
 * long as nothing reached the client), and stream the raw replies as the
 * body: status 200, Content-Type from default_type, no Content-Length.
 * The engine has read the request body before calling us.
 */

const FAILURE_BIT: Record<Failure, number> = {
  error: NEXT_UPSTREAM_ERROR,
  timeout: NEXT_UPSTREAM_TIMEOUT,
  invalid_response: NEXT_UPSTREAM_INVALID_RESPONSE,
};

/* $upstream_*_time: seconds with milliseconds, as nginx's %T.%03M */
function msecText(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const n = Math.max(0, Math.floor(ms));
  return `${Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}`;
}

function resolveTarget(r: Request, rlcf: Redis2LocConf): UpstreamSrvConf | number {
  const target = rlcf.target;
  if (!target) {
    r.log('error', 'no redis2_pass target');
    return 500;
  }
  if (target.kind === 'upstream') return target.upstream;
  const name = evalComplexValue(r, target.value);
  if (name.length === 0) {
    r.log('error', 'handler: empty "redis2_pass" target');
    return 500;
  }
  const umcf = r.srv.ctx.main[upstreamModule.index] as UpstreamMainConf | undefined;
  const us = umcf ? findUpstream(umcf, name) : undefined;
  if (!us) {
    r.log('error', `redis2: upstream "${name}" not found`);
    return 500;
  }
  return us;
}

/* redis2_bind: a literal address, or a value whose evaluation may be empty (no bind) or invalid */
function localAddress(r: Request, rlcf: Redis2LocConf): { host: string; port: number; text: string } | undefined {
  const b = rlcf.bind;
  if (!b) return undefined;
  if (b.kind === 'addr') return { host: b.addr.host, port: b.addr.port, text: b.addr.name };
  const text = evalComplexValue(r, b.value);
  if (text.length === 0) return undefined;
  const addr = parseAddrPort(text);
  if (!addr) {
    r.log('error', `invalid local address "${text}"`);
    return undefined;
  }
  return { host: addr.host, port: addr.port, text };
}

export const redis2ContentHandler: ContentHandler = (r: Request) => {
  const rlcf = r.locConf[redis2Module.index] as Redis2LocConf;
  const us = resolveTarget(r, rlcf);
  if (typeof us === 'number') return us;

  const built = buildQuery(r, rlcf);
  if (!built.ok) {
    r.log('error', built.error);
    return 500;
  }
  return new Redis2Run(r, rlcf, us, built.query, built.expected, built.stateless, built.shareable).run();
};

/* methods nginx will not resend once the request went out (NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT) */
const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH']);

/* requests of a location that run exclusive after one of its shared replies was large */
const BIG_REPLY_SKIP = 64;

const NO_PEER: PeerTarget = { name: '', addr: '' };

/* `$a, $b`: nginx's lists of one value per try */
function listAdd(prev: string, x: string): string {
  return prev === '' ? x : `${prev}, ${x}`;
}

/*
 * One request's run through the upstream (ngx_http_upstream_connect /
 * ngx_http_upstream_next): ask the balancer for a peer, try it, and on a
 * failure before anything reached the client free the peer as failed
 * (max_fails accounting) and go on while tries are left and
 * redis2_next_upstream names the failure. No live peer is nginx's NGX_BUSY:
 * `no live upstreams`, 502 (never retried).
 *
 * One fixed-shape object is the options, the sink and the owner of every
 * try; tries report synchronously, so a reply that completes within one
 * read finishes the response in that same turn (header, body and last chunk
 * leave in one write).
 */
class Redis2Run implements UpstreamRequestOptions, ReplySink, TryOwner {
  readonly r: Request;
  readonly rlcf: Redis2LocConf;
  readonly picker: PeerPicker;
  readonly pool: ConnectionPool;
  /** **beyond** nginx: connections are shared only between requests that set the same state (conn_state.ts) */
  readonly tagSuffix: string;
  readonly query: Buffer;
  readonly expected: number;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  readonly bufferSize: number;
  readonly bind: { host: string; port: number; text: string } | undefined;
  peer: PeerTarget = NO_PEER;
  poolKey = '';
  cur: UpstreamTry | SharedTry | undefined = undefined;
  /** redis2d_pipeline on and the query may share a connection (shared.ts); else undefined */
  readonly groups: SharedGroups | undefined;
  /** nginx logs a timeout in ngx_http_upstream_next, after freeing the peer */
  timedOut: string | undefined = undefined;
  /** $upstream_* of the tries that ended */
  addrs = '';
  statuses = '';
  rtimes = '';
  ctimes = '';
  /** start() is running: an end now is returned to the engine, not finalized here */
  starting = true;
  result = DONE;

  constructor(
    r: Request,
    rlcf: Redis2LocConf,
    us: UpstreamSrvConf,
    query: Buffer,
    expected: number,
    stateless: boolean,
    shareable: boolean,
  ) {
    this.r = r;
    this.rlcf = rlcf;
    this.picker = new PeerPicker(r, us);
    const pool = (this.pool = poolOf(us));
    const tag = pool === noPool || stateless ? '' : stateTag(query);
    this.tagSuffix = tag === '' ? '' : `\0${tag}`;
    this.query = query;
    this.expected = expected;
    this.connectTimeout = rlcf.connectTimeout;
    this.sendTimeout = rlcf.sendTimeout;
    this.readTimeout = rlcf.readTimeout;
    this.bufferSize = rlcf.bufferSize;
    this.bind = localAddress(r, rlcf);
    // a bound connection is the request's own (its local address is part of what it asked for)
    let share = rlcf.pipeline === 1 && shareable && this.bind === undefined;
    if (share && rlcf.pipelineSkip > 0) {
      rlcf.pipelineSkip--;
      share = false;
    }
    this.groups = share ? sharedGroupsOf(us) : undefined;
  }

  /**
   * A reply on a shared connection was a large value: whoever joins behind
   * it waits for all of it, so this location's next requests run on
   * exclusive connections for a while (then try sharing again).
   */
  bigReply(): void {
    this.rlcf.pipelineSkip = BIG_REPLY_SKIP;
  }

  run(): number {
    this.next();
    this.starting = false;
    if (this.cur !== undefined) this.r.onAbort(() => this.cur?.abort());
    return this.result;
  }

  private next(): void {
    const r = this.r;
    const rt = this.picker.get();
    if (!rt) {
      const name = this.picker.name;
      r.upstreamAddr = `redis2://${name}`;
      this.record(name, '502', '0.000', '-');
      r.log('error', 'no live upstreams while connecting to upstream');
      this.end(502);
      return;
    }
    const peer = redisPeer(rt);
    this.peer = peer;
    this.poolKey = this.tagSuffix === '' ? peer.name : peer.name + this.tagSuffix;
    r.upstreamAddr = peer.addr;
    r.upstreamAddrList = listAdd(this.addrs, peer.name);
    this.timedOut = undefined;
    if (this.groups !== undefined) {
      const t = joinShared(this.groups, this.poolKey, this.rlcf.pipelineConns, this.pool, this, this, this);
      if (t !== undefined) {
        this.cur = t;
        return;
      }
    }
    this.cur = new UpstreamTry(this, this, this);
  }

  private record(addr: string, status: string, rtime: string, ctime: string): void {
    const r = this.r;
    r.upstreamAddrList = this.addrs = listAdd(this.addrs, addr);
    r.upstreamStatus = this.statuses = listAdd(this.statuses, status);
    r.upstreamResponseTime = this.rtimes = listAdd(this.rtimes, rtime);
    r.upstreamConnectTime = this.ctimes = listAdd(this.ctimes, ctime);
  }

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

  // ---- UpstreamRequestOptions.log

  log(level: LogLevel, msg: string): void {
    // nginx logs a timeout in ngx_http_upstream_next, after freeing the peer
    if (level === 'error' && msg.startsWith('upstream timed out') && !this.r.headerSent) this.timedOut = msg;
    else this.r.log(level, msg);
  }

  // ---- ReplySink

  start(): void {
    const r = this.r;
    // nginx has $upstream_status 200 before the header goes out
    r.upstreamStatus = listAdd(this.statuses, '200');
    r.status = 200;
    r.contentLength = -1;
    r.sendHeader();
    if (r.method === 'HEAD') this.cur?.abort();
  }

  write(chunk: Buffer): boolean {
    return this.r.send(chunk);
  }

  onDrain(cb: () => void): void {
    this.r.onDrain(cb);
  }

  // ---- TryOwner

  tryDone(out: UpstreamOutcome): void {
    this.cur = undefined;
    try {
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
    this.record(this.peer.name, String(out.status), msecText(out.responseTime), msecText(out.connectTime));

    if (out.aborted || r.aborted) {
      picker.free(false);
      if (!r.aborted && r.headerSent && r.method === 'HEAD') {
        // HEAD: nginx finalizes right after the header, closing the Redis side
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
        r.finish();
        return this.end(DONE);
      }
      // a started body can only be cut short (the client connection closes)
      if (out.started) return this.end(out.failure === 'timeout' ? 504 : 502);
      return this.end(out.status);
    }

    if (picker.free(true)) r.log('warn', `upstream server temporarily disabled while ${out.action}`);
    if (timedOut) r.log('error', timedOut);
    if (out.cached && out.failure === 'error') picker.refund();
    const retry =
      picker.tries > 0 &&
      (this.rlcf.nextUpstream & NEXT_UPSTREAM_OFF) === 0 &&
      (this.rlcf.nextUpstream & FAILURE_BIT[out.failure]) !== 0 &&
      !(out.sent && NON_IDEMPOTENT.has(r.method));
    if (!retry) return this.end(out.status);
    this.next();
  }
}

setRedis2ContentHandler(redis2ContentHandler);
