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
import { createPicker, redisPeer } from './peers.js';
import { noPool, poolOf, type ConnectionPool } from './pool.js';
import { stateTag } from './conn_state.js';
import {
  startUpstreamRequest,
  type Failure,
  type LogLevel,
  type RedisPeer,
  type ReplySink,
  type UpstreamOutcome,
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
  return runTries(r, rlcf, us, built.query, built.expected);
};

/** the cache seen through a tag: keys are the peer name and the tag */
function taggedPool(pool: ConnectionPool, suffix: string): ConnectionPool {
  return {
    acquire: (peer) => pool.acquire(peer + suffix),
    opened: (peer, socket) => pool.opened?.(peer + suffix, socket),
    release: (peer, socket, reusable) => pool.release(peer + suffix, socket, reusable),
  };
}

/* methods nginx will not resend once the request went out (NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT) */
const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH']);

/*
 * ngx_http_upstream_connect / ngx_http_upstream_next: ask the balancer for
 * a peer, try it, and on a failure before anything reached the client free
 * the peer as failed (max_fails accounting) and go on while tries are left
 * and redis2_next_upstream names the failure. No live peer is nginx's
 * NGX_BUSY: `no live upstreams`, 502 (never retried).
 */
async function runTries(r: Request, rlcf: Redis2LocConf, us: UpstreamSrvConf, query: Buffer, expected: number): Promise<number> {
  const picker = createPicker(r, us);
  const basePool = poolOf(us);
  // **beyond** nginx: connections are shared only between requests that set the same state (conn_state.ts)
  const tag = basePool === noPool ? '' : stateTag(query);
  const pool: ConnectionPool = tag === '' ? basePool : taggedPool(basePool, `\0${tag}`);
  const bind = localAddress(r, rlcf);
  const addrs: string[] = [];
  const statuses: string[] = [];
  const rtimes: string[] = [];
  const ctimes: string[] = [];
  const record = (addr: string, status: string, rtime: string, ctime: string): void => {
    addrs.push(addr);
    statuses.push(status);
    rtimes.push(rtime);
    ctimes.push(ctime);
    r.upstreamAddrList = addrs.join(', ');
    r.upstreamStatus = statuses.join(', ');
    r.upstreamResponseTime = rtimes.join(', ');
    r.upstreamConnectTime = ctimes.join(', ');
  };

  for (;;) {
    const rt = picker.get();
    if (!rt) {
      r.upstreamAddr = `redis2://${picker.name}`;
      record(picker.name, '502', '0.000', '-');
      r.log('error', 'no live upstreams while connecting to upstream');
      return 502;
    }
    const peer = redisPeer(rt);
    r.upstreamAddr = `redis2://${peer.name}`;
    r.upstreamAddrList = [...addrs, peer.name].join(', ');
    // nginx has $upstream_status 200 before the header goes out
    const onStart = (): void => void (r.upstreamStatus = [...statuses, '200'].join(', '));
    let timedOut: string | undefined;
    const log = (level: LogLevel, msg: string): void => {
      // nginx logs a timeout in ngx_http_upstream_next, after freeing the peer
      if (level === 'error' && msg.startsWith('upstream timed out') && !r.headerSent) timedOut = msg;
      else r.log(level, msg);
    };
    const out = await oneTry(r, rlcf, peer, query, expected, bind, pool, log, onStart);
    record(peer.name, String(out.status), msecText(out.responseTime), msecText(out.connectTime));

    if (out.aborted || r.aborted) {
      picker.free(false);
      if (!r.aborted && r.headerSent && r.method === 'HEAD') {
        // HEAD: nginx finalizes right after the header, closing the Redis side
        r.finish();
      }
      return DONE;
    }
    if (out.complete || out.started || out.failure === undefined || out.status === 500) {
      // finalized without next-upstream: the peer is freed as fine
      picker.free(false);
      if (timedOut) r.log('error', timedOut);
      if (out.complete) {
        r.finish();
        return DONE;
      }
      // a started body can only be cut short (the client connection closes)
      if (out.started) return out.failure === 'timeout' ? 504 : 502;
      return out.status;
    }

    if (picker.free(true)) r.log('warn', `upstream server temporarily disabled while ${out.action}`);
    if (timedOut) r.log('error', timedOut);
    if (out.cached && out.failure === 'error') picker.refund();
    const retry =
      picker.tries > 0 &&
      (rlcf.nextUpstream & NEXT_UPSTREAM_OFF) === 0 &&
      (rlcf.nextUpstream & FAILURE_BIT[out.failure]) !== 0 &&
      !(out.sent && NON_IDEMPOTENT.has(r.method));
    if (!retry) return out.status;
  }
}

function oneTry(
  r: Request,
  rlcf: Redis2LocConf,
  peer: RedisPeer,
  query: Buffer,
  expected: number,
  bind: { host: string; port: number; text: string } | undefined,
  pool: ConnectionPool,
  log: (level: LogLevel, msg: string) => void,
  onStart: () => void,
): Promise<UpstreamOutcome> {
  let stop: (() => void) | undefined;
  const sink: ReplySink = {
    start(): void {
      onStart();
      r.status = 200;
      r.contentLength = -1;
      r.sendHeader();
      if (r.method === 'HEAD') stop?.();
    },
    write: (chunk) => r.send(chunk),
    onDrain: (cb) => r.onDrain(cb),
  };
  const req = startUpstreamRequest(
    {
      peer,
      query,
      expected,
      connectTimeout: rlcf.connectTimeout,
      sendTimeout: rlcf.sendTimeout,
      readTimeout: rlcf.readTimeout,
      bufferSize: rlcf.bufferSize,
      bind,
      pool,
      log,
    },
    sink,
  );
  stop = () => req.abort();
  r.onAbort(stop);
  return req.done;
}

setRedis2ContentHandler(redis2ContentHandler);
