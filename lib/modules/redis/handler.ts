import { resolvePassTarget, type PassTargetMessages } from '../../upstream/pass_target.js';
import { evalComplexValue, getVariable } from '../../http/eval.js';
import type { Request } from '../../http/request.js';
import { localAddress, type LocalAddress } from '../../upstream/bind.js';
import { poolOf, type ConnectionPool } from '../../upstream/keepalive.js';
import type { UpstreamLocConf } from '../../upstream/pipeline.js';
import { joinPipelined, pipelinedGroupsOf, type PipelineOptions, type PipelinedGroups, type PipelinedHost } from '../../upstream/pipelined_conn.js';
import { upstreamModule, type UpstreamSrvConf } from '../../upstream/module.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { UpstreamRun, type UpstreamOutcome, type UpstreamTryHandle } from '../../upstream/run.js';
import type { ClusterRoute } from '../../upstream/cluster/route.js';
import type { SslRuntime } from '../../upstream/ssl.js';
import { buildCommand, type RedisCommand } from './command.js';
import type { RedisLocConf } from './conf.js';
import { RedisPipeTry } from './pipelined.js';
import { RedisTry } from './try.js';
import { ASKING, READONLY, clusterPrefix, useTlsControl } from '../../upstream/cluster/route.js';

/*
 * The redis_pass content handler (ngx_http_redis_handler and
 * create_request, 0.4.x): GET and HEAD only (else 405); the location's
 * type (types / default_type) is the response's Content-Type; the command
 * is built once ($redis_key unset or empty: `the "$redis_key" variable is
 * not set`, 500, before any upstream is chosen) and run through the
 * generic upstream loop, a RedisTry per peer tried.
 *
 * **beyond** nginx (as redis2d does for redis2, conn_state.ts there): a
 * pooled connection carries the database (and authentication) its last
 * request selected, and is only reused by requests that select the same;
 * nginx's keepalive cache would hand it to any request of the upstream,
 * e.g. a redis2 query that then reads the wrong database.
 *
 * **extension** (redis2d_pipeline, on by default): requests to the same
 * peer with the same $redis_db/$redis_auth share connections, their
 * commands written together once per event-loop turn (pipelined.ts,
 * lib/upstream/pipelined_conn.ts); `redis2d_pipeline off` and redis_bind
 * give each request a connection of its own, as nginx.
 *
 * The engine has read any request body before calling us (nginx checks
 * the method first and discards the body: the bytes sent are the same).
 */

/* requests of a location that run exclusive after one of its shared replies was large */
const BIG_REPLY_SKIP = 64;

// OpenResty's patch of the module: `redis_pass $var` names an upstream block
const TARGET_MESSAGES: PassTargetMessages = { empty: 'handler: empty "redis_pass" target', notFound: 'redis:' };

/** the content handler of a redis_pass location */
export function redisContentHandler(r: Request, rlcf: RedisLocConf): number {
  if (r.method !== 'GET' && r.method !== 'HEAD') return 405;
  const us = resolvePassTarget(r, rlcf.target, TARGET_MESSAGES);
  if (typeof us === 'number') return us;
  const key = getVariable(r, rlcf.keyIndex);
  if (key.length === 0) {
    r.log('error', 'the "$redis_key" variable is not set');
    return 500;
  }
  const cmd = buildCommand(getVariable(r, rlcf.authIndex), getVariable(r, rlcf.dbIndex), key);
  return new RedisRun(r, rlcf, us, cmd).run();
}

/** the module's command with READONLY first (on a replica) and ASKING before the GET (after -ASK) */
function clusterCommand(cmd: RedisCommand, route: ClusterRoute): Buffer {
  const parts: Buffer[] = [];
  if (route.onReplica) parts.push(READONLY);
  if (route.askingNow) {
    const cut = Buffer.byteLength(cmd.state, 'latin1');
    parts.push(cmd.bytes.subarray(0, cut), ASKING, cmd.bytes.subarray(cut));
  } else parts.push(cmd.bytes);
  return Buffer.concat(parts);
}

/* the keepalive key of the last peer and state (the same string again: its hash is kept, no string built) */
let keyPeer: PeerTarget | undefined;
let keyState = '';
let lastKey = '';

function poolKeyOf(peer: PeerTarget, state: string): string {
  if (peer !== keyPeer || state !== keyState) {
    keyPeer = peer;
    keyState = state;
    lastKey = `${peer.name}\0${state}`;
  }
  return lastKey;
}

/* a pipelined try for a run (one function for all runs: joinPipelined calls it) */
const newPipeTry = (run: RedisRun, host: PipelinedHost): RedisPipeTry => new RedisPipeTry(run, host);

/** One request's run through the upstream loop (lib/upstream/run.ts) with redis's try; also the options of a pipelined one. */
export class RedisRun extends UpstreamRun implements PipelineOptions {
  readonly rlcf: RedisLocConf;
  readonly cmd: RedisCommand;
  readonly pool: ConnectionPool;
  /** redis_bind for this request: a bound connection is the request's own, never pooled */
  readonly bind: LocalAddress | undefined;
  /** the keepalive key of the current try: peer name, NUL, the state commands */
  poolKey = '';
  /** what the current try writes: the command, after ASKING / READONLY on a cluster */
  query: Buffer;
  /** `redis_cluster` upstreams: the request's route; replies to drop before the module's own; a redirect seen */
  readonly route: ClusterRoute | undefined;
  skip = 0;
  redirect = false;
  /** redis_ssl on (lib/upstream/ssl.ts) and the name checked / sent as SNI */
  readonly ssl: SslRuntime | undefined;
  readonly sslName: string;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  readonly socketKeepalive: boolean;
  /** the location's redis2d_pipeline (lib/upstream/pipeline.ts) */
  private readonly ulcf: UpstreamLocConf;
  /** redis2d_pipeline on and no redis_bind: the upstream's shared connections (per node on a cluster); else undefined */
  private readonly groups: PipelinedGroups | undefined;

  constructor(r: Request, rlcf: RedisLocConf, us: UpstreamSrvConf, cmd: RedisCommand) {
    super(r, us, 'redis', { mask: rlcf.nextUpstream, tries: rlcf.nextUpstreamTries, timeout: rlcf.nextUpstreamTimeout });
    this.rlcf = rlcf;
    this.cmd = cmd;
    this.query = cmd.bytes;
    this.pool = poolOf(us);
    this.bind = localAddress(r, rlcf.bind);
    const route = (this.route = this.picker.cluster);
    route?.setQuery(cmd.bytes);
    const ssl = (this.ssl = rlcf.ssl.rt);
    this.sslName = ssl === undefined ? '' : ssl.name !== undefined ? evalComplexValue(r, ssl.name) : us.host;
    if (ssl !== undefined && route !== undefined) useTlsControl(route, ssl, this.sslName);
    this.connectTimeout = rlcf.connectTimeout;
    this.sendTimeout = rlcf.sendTimeout;
    this.readTimeout = rlcf.readTimeout;
    this.socketKeepalive = rlcf.socketKeepalive === 1;
    const ulcf = (this.ulcf = r.locConf[upstreamModule.index] as UpstreamLocConf);
    // a bound connection is the request's own (its local address is part of what it asked for)
    let share = ulcf.pipeline === 1 && this.bind === undefined;
    if (share && ulcf.pipelineSkip > 0) {
      ulcf.pipelineSkip--;
      share = false;
    }
    this.groups = share ? pipelinedGroupsOf(us) : undefined;
  }

  protected startTry(peer: PeerTarget): UpstreamTryHandle {
    this.poolKey = poolKeyOf(peer, this.cmd.state);
    if (this.ssl !== undefined) this.poolKey += this.ssl.poolTag + this.sslName;
    const route = this.route;
    if (route !== undefined) {
      const p = clusterPrefix(route);
      this.skip = p.skip;
      this.redirect = false;
      // ASKING holds for the one command after it: it goes right before the GET, after AUTH / SELECT
      this.query = p.skip === 0 ? this.cmd.bytes : clusterCommand(this.cmd, route);
    }
    if (this.groups !== undefined) {
      const t = joinPipelined(this.groups, this.poolKey, this.ulcf.pipelineConns, this.pool, this, newPipeTry);
      if (t !== undefined) return t;
    }
    return new RedisTry(this, peer);
  }

  protected override redirectDelay(): number {
    return this.route?.takeDelay() ?? 0;
  }

  protected override redirected(_out: UpstreamOutcome): boolean {
    const r = this.redirect;
    this.redirect = false;
    return r && !this.r.aborted;
  }

  /**
   * A reply on a shared connection was a large value: whoever joins behind
   * it waits for all of it, so this location's next requests run on
   * connections of their own for a while (then try sharing again).
   */
  bigReply(): void {
    this.ulcf.pipelineSkip = BIG_REPLY_SKIP;
  }

  started(status: number): void {
    this.replyStarted(status);
  }
}
