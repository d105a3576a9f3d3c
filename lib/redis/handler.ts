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
import { peerTries, type PeerTry } from './peers.js';
import { startUpstreamRequest, type Failure, type ReplySink, type UpstreamOutcome } from './upstream_request.js';

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

async function runTries(r: Request, rlcf: Redis2LocConf, us: UpstreamSrvConf, query: Buffer, expected: number): Promise<number> {
  const tries = peerTries(us);
  if (tries.length === 0) {
    r.upstreamAddr = `redis2://${us.host}`;
    r.log('error', 'no live upstreams while connecting to upstream');
    r.upstreamStatus = '502';
    return 502;
  }
  const bind = localAddress(r, rlcf);
  const addrs: string[] = [];
  const statuses: string[] = [];
  const rtimes: string[] = [];
  const ctimes: string[] = [];

  for (let i = 0; i < tries.length; i++) {
    const peer: PeerTry = tries[i]!;
    r.upstreamAddr = `redis2://${peer.name}`;
    // nginx has $upstream_status 200 before the header goes out
    const onStart = (): void => void (r.upstreamStatus = [...statuses, '200'].join(', '));
    const out = await oneTry(r, rlcf, peer, query, expected, bind, onStart);
    addrs.push(peer.name);
    statuses.push(String(out.status));
    rtimes.push(msecText(out.responseTime));
    ctimes.push(msecText(out.connectTime));
    r.upstreamStatus = statuses.join(', ');
    r.upstreamResponseTime = rtimes.join(', ');
    r.upstreamConnectTime = ctimes.join(', ');

    if (out.aborted || r.aborted) {
      if (!r.aborted && r.headerSent && r.method === 'HEAD') {
        // HEAD: nginx finalizes right after the header, closing the Redis side
        r.finish();
      }
      return DONE;
    }
    if (out.complete) {
      r.finish();
      return DONE;
    }
    if (out.started) {
      // the body has begun: nginx can only cut it short (the client connection closes)
      return out.failure === 'timeout' ? 504 : 502;
    }
    const retry =
      out.failure !== undefined &&
      out.status !== 500 &&
      (rlcf.nextUpstream & NEXT_UPSTREAM_OFF) === 0 &&
      (rlcf.nextUpstream & FAILURE_BIT[out.failure]) !== 0 &&
      i + 1 < tries.length;
    if (!retry) return out.status;
  }
  return 502;
}

function oneTry(
  r: Request,
  rlcf: Redis2LocConf,
  peer: PeerTry,
  query: Buffer,
  expected: number,
  bind: { host: string; port: number; text: string } | undefined,
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
      log: (level, msg) => r.log(level, msg),
    },
    sink,
  );
  stop = () => req.abort();
  r.onAbort(stop);
  return req.done;
}

setRedis2ContentHandler(redis2ContentHandler);
