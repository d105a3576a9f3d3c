import type { Request } from '../../http/request.js';
import { evalComplexValue } from '../../http/eval.js';
import { findUpstream, upstreamModule, type UpstreamMainConf, type UpstreamSrvConf } from '../../upstream/module.js';
import { localAddress } from '../../upstream/bind.js';
import type { UpstreamLocConf } from '../../upstream/pipeline.js';
import { noPool, poolOf, type ConnectionPool } from '../../upstream/keepalive.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { UpstreamRun, type UpstreamTryHandle } from '../../upstream/run.js';
import type { Redis2LocConf } from './conf.js';
import { buildQuery } from './query.js';
import { stateTag } from './conn_state.js';
import { joinPipelined, pipelinedGroupsOf, type PipelinedGroups } from '../../upstream/pipelined_conn.js';
import { PipelinedTry } from './pipelined_try.js';
import { ExclusiveTry, type ReplySink, type TryOptions } from './exclusive.js';

/*
 * The redis2 content handler (ngx_http_redis2_handler + the parts of
 * ngx_http_upstream it relies on): pick the upstream, build the query, run
 * it against a peer (the next one on errors redis2_next_upstream names, as
 * long as nothing reached the client), and stream the raw replies as the
 * body: status 200, Content-Type from default_type, no Content-Length.
 * The engine has read the request body before calling us.
 */

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

/** the content handler of a redis2_pass location */
export function redis2ContentHandler(r: Request, rlcf: Redis2LocConf): number {
  const us = resolveTarget(r, rlcf);
  if (typeof us === 'number') return us;

  const built = buildQuery(r, rlcf);
  if (!built.ok) {
    r.log('error', built.error);
    return 500;
  }
  return new Redis2Run(r, rlcf, us, built.query, built.expected, built.stateless, built.shareable).run();
}

/* requests of a location that run exclusive after one of its shared replies was large */
const BIG_REPLY_SKIP = 64;

/*
 * One request's run (the generic loop: lib/upstream/run.ts) with redis2's
 * try: the query on an exclusive connection (exclusive.ts), or joined to a
 * pipelined one (lib/upstream/pipelined_conn.ts). One fixed-shape object is the
 * options, the sink and the owner of every try.
 */
class Redis2Run extends UpstreamRun implements TryOptions, ReplySink {
  readonly rlcf: Redis2LocConf;
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
  poolKey = '';
  /** the location's redis2d_pipeline (lib/upstream/pipeline.ts) */
  readonly ulcf: UpstreamLocConf;
  /** redis2d_pipeline on and the query may share a connection (lib/upstream/pipelined_conn.ts); else undefined */
  readonly groups: PipelinedGroups | undefined;

  constructor(
    r: Request,
    rlcf: Redis2LocConf,
    us: UpstreamSrvConf,
    query: Buffer,
    expected: number,
    stateless: boolean,
    shareable: boolean,
  ) {
    super(r, us, 'redis2', rlcf.nextUpstream);
    // the module hard-codes ignore_client_abort on: a half-closed client is answered
    this.ignoreClientAbort = true;
    this.rlcf = rlcf;
    const pool = (this.pool = poolOf(us));
    const tag = pool === noPool || stateless ? '' : stateTag(query);
    this.tagSuffix = tag === '' ? '' : `\0${tag}`;
    this.query = query;
    this.expected = expected;
    this.connectTimeout = rlcf.connectTimeout;
    this.sendTimeout = rlcf.sendTimeout;
    this.readTimeout = rlcf.readTimeout;
    this.bufferSize = rlcf.bufferSize;
    this.bind = localAddress(r, rlcf.bind);
    // a bound connection is the request's own (its local address is part of what it asked for)
    const ulcf = (this.ulcf = r.locConf[upstreamModule.index] as UpstreamLocConf);
    let share = ulcf.pipeline === 1 && shareable && this.bind === undefined;
    if (share && ulcf.pipelineSkip > 0) {
      ulcf.pipelineSkip--;
      share = false;
    }
    this.groups = share ? pipelinedGroupsOf(us) : undefined;
  }

  /**
   * A reply on a pipelined connection was a large value: whoever joins
   * behind it waits for all of it, so this location's next requests run on
   * exclusive connections for a while (then try sharing again).
   */
  bigReply(): void {
    this.ulcf.pipelineSkip = BIG_REPLY_SKIP;
  }

  protected startTry(peer: PeerTarget): UpstreamTryHandle {
    this.poolKey = this.tagSuffix === '' ? peer.name : peer.name + this.tagSuffix;
    if (this.groups !== undefined) {
      const t = joinPipelined(this.groups, this.poolKey, this.ulcf.pipelineConns, this.pool, this, (host) => new PipelinedTry(this, this, this, host));
      if (t !== undefined) return t;
    }
    return new ExclusiveTry(this, this, this);
  }

  // ---- ReplySink

  start(): void {
    const r = this.r;
    this.replyStarted(200);
    r.status = 200;
    r.contentLength = -1;
    const replaced = r.filterFinalized;
    r.sendHeader();
    // a header-only response (HEAD, a 304) or one a filter replaced (412): the upstream is done, as nginx's
    if (r.headerOnly || r.filterFinalized !== replaced) this.cur?.abort();
  }

  write(chunk: Buffer): boolean {
    return this.r.send(chunk);
  }

  onDrain(cb: () => void): void {
    this.r.onDrain(cb);
  }
}
