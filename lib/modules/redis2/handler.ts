import { resolvePassTarget, type PassTargetMessages } from '../../upstream/pass_target.js';
import type { Request } from '../../http/request.js';
import { evalComplexValue } from '../../http/eval.js';
import { upstreamModule, type UpstreamSrvConf } from '../../upstream/module.js';
import { localAddress } from '../../upstream/bind.js';
import type { UpstreamLocConf } from '../../upstream/pipeline.js';
import { noPool, poolOf, type ConnectionPool } from '../../upstream/keepalive.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { UpstreamRun, type UpstreamOutcome, type UpstreamTryHandle } from '../../upstream/run.js';
import { CROSS_SLOT, interleave } from '../../upstream/cluster/commands.js';
import { Redirect, clusterPrefix, useTlsControl, type ClusterRoute } from '../../upstream/cluster/route.js';
import { DONE } from '../../http/request.js';
import { RespJsonEncoder } from './json.js';
import { AskingFilter } from './asking.js';
import { ASKING, READONLY } from '../../upstream/cluster/route.js';
import type { SslRuntime } from '../../upstream/ssl.js';
import { OUTPUT_JSON, type Redis2LocConf } from './conf.js';
import { buildQuery } from './query.js';
import { stateTag } from './conn_state.js';
import { joinPipelined, pipelinedGroupsOf, type PipelinedGroups, type PipelinedHost } from '../../upstream/pipelined_conn.js';
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

const TARGET_MESSAGES: PassTargetMessages = {
  none: 'no redis2_pass target',
  empty: 'handler: empty "redis2_pass" target',
  notFound: 'redis2:',
};

/** the content handler of a redis2_pass location */
export function redis2ContentHandler(r: Request, rlcf: Redis2LocConf): number {
  const us = resolvePassTarget(r, rlcf.target, TARGET_MESSAGES);
  if (typeof us === 'number') return us;

  const built = buildQuery(r, rlcf);
  if (!built.ok) {
    r.log('error', built.error);
    return 500;
  }
  const run = new Redis2Run(r, rlcf, us, built.query, built.expected, built.stateless, built.shareable);
  if (run.route !== undefined && run.route.slot === CROSS_SLOT) return run.crossSlot();
  return run.run();
}

/* Redis's own answer to keys in several slots (its text since 3.0), one per expected reply */
const CROSSSLOT = Buffer.from("-CROSSSLOT Keys in request don't hash to the same slot\r\n", 'latin1');
/* a held first line longer than this is no redirect: it is passed on */
const MAX_HELD = 1024;

/* requests of a location that run exclusive after one of its shared replies was large */
const BIG_REPLY_SKIP = 64;

/*
 * One request's run (the generic loop: lib/upstream/run.ts) with redis2's
 * try: the query on an exclusive connection (exclusive.ts), or joined to a
 * pipelined one (lib/upstream/pipelined_conn.ts). One fixed-shape object is the
 * options, the sink and the owner of every try.
 */
/* a pipelined try for a run (one function for all runs: joinPipelined calls it) */
const newPipelinedTry = (run: Redis2Run, host: PipelinedHost): PipelinedTry => new PipelinedTry(run, run, run, host);

class Redis2Run extends UpstreamRun implements TryOptions, ReplySink {
  readonly rlcf: Redis2LocConf;
  readonly pool: ConnectionPool;
  /** **beyond** nginx: connections are shared only between requests that set the same state (conn_state.ts) */
  readonly tagSuffix: string;
  /** what this try sends and expects: the request's query, after ASKING / READONLY on a cluster */
  query: Buffer;
  expected: number;
  private readonly baseQuery: Buffer;
  private readonly baseExpected: number;
  /** `redis_cluster` upstreams: the request's route (lib/upstream/cluster/route.ts) */
  readonly route: ClusterRoute | undefined;
  /**
   * Cluster only: the reply is held back until its first line shows it is
   * no redirect (gate), leading ASKING/READONLY replies are dropped (skip),
   * and after a redirect the rest of the try's replies are dropped (swallow).
   */
  private gate = false;
  private skip = 0;
  private swallow = false;
  private held: Buffer | undefined = undefined;
  private heldPos = 0;
  /** after -ASK with several commands: drops the replies to their ASKINGs (asking.ts) */
  private filter: AskingFilter | undefined = undefined;
  /** redis2d_output json: the encoder of this response (made when it starts, json.ts) */
  private json: RespJsonEncoder | undefined = undefined;
  /** a malformed reply cut the stream: the JSON stays open */
  private cut = false;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  readonly bufferSize: number;
  readonly bind: { host: string; port: number; text: string } | undefined;
  poolKey = '';
  /** redis2_ssl on: TLS settings and the name checked / sent as SNI (nginx's u->ssl_name) */
  readonly ssl: SslRuntime | undefined;
  readonly sslName: string;
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
    this.query = this.baseQuery = query;
    this.expected = this.baseExpected = expected;
    const route = (this.route = this.picker.cluster);
    route?.setQuery(query);
    const ssl = (this.ssl = rlcf.ssl.rt);
    this.sslName = ssl === undefined ? '' : ssl.name !== undefined ? evalComplexValue(r, ssl.name) : us.host;
    if (ssl !== undefined && route !== undefined) useTlsControl(route, ssl, this.sslName);
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
    const route = this.route;
    if (route !== undefined) {
      const p = clusterPrefix(route);
      this.gate = true;
      this.swallow = false;
      this.held = undefined;
      this.heldPos = 0;
      this.skip = p.skip;
      this.expected = this.baseExpected + p.skip;
      this.query = p.skip === 0 ? this.baseQuery : Buffer.concat([p.bytes, this.baseQuery]);
      this.filter = undefined;
      // -ASK with several commands: ASKING before each one, their replies dropped by the filter
      const each = route.askingNow && this.baseExpected > 1 ? interleave(this.baseQuery, ASKING) : undefined;
      if (each !== undefined) {
        const lead = route.onReplica ? 1 : 0;
        this.filter = new AskingFilter(lead);
        this.skip = 0;
        this.expected = this.baseExpected * 2 + lead;
        this.query = lead === 0 ? each : Buffer.concat([READONLY, each]);
      }
    }
    this.poolKey = this.tagSuffix === '' ? peer.name : peer.name + this.tagSuffix;
    if (this.ssl !== undefined) this.poolKey += this.ssl.poolTag + this.sslName;
    if (this.groups !== undefined) {
      const t = joinPipelined(this.groups, this.poolKey, this.ulcf.pipelineConns, this.pool, this, newPipelinedTry);
      if (t !== undefined) return t;
    }
    return new ExclusiveTry(this, this, this);
  }

  /** keys in several slots: Redis's -CROSSSLOT for each reply, without asking Redis */
  crossSlot(): number {
    const r = this.r;
    r.status = 200;
    r.contentLength = -1;
    const json = this.rlcf.output === OUTPUT_JSON ? new RespJsonEncoder() : undefined;
    if (json !== undefined) r.contentType = 'application/json';
    r.sendHeader();
    if (!r.headerOnly) {
      const n = this.baseExpected;
      const body = n === 1 ? CROSSSLOT : Buffer.concat(new Array<Buffer>(n).fill(CROSSSLOT));
      if (json === undefined) r.send(body);
      else r.send(Buffer.concat([json.feed(body), json.finish() ?? Buffer.alloc(0)]));
    }
    r.finish();
    return DONE;
  }

  protected override redirectDelay(): number {
    return this.route?.takeDelay() ?? 0;
  }

  protected override redirected(out: UpstreamOutcome): boolean {
    if (this.route === undefined) return false;
    if (this.swallow) {
      this.swallow = false;
      this.gate = false;
      return !out.aborted && !this.r.aborted;
    }
    if (this.gate && out.started && !out.complete && !out.aborted) {
      // the reply began but was held back: nothing reached the client, so next-upstream applies
      out.started = false;
      out.status = out.failure === 'timeout' ? 504 : 502;
    }
    this.gate = false;
    return false;
  }

  /* the reply bytes of a cluster try while its first line is unread */
  private gateWrite(chunk: Buffer): boolean {
    const b = (this.held = this.held === undefined ? chunk : Buffer.concat([this.held, chunk]));
    let pos = this.heldPos;
    while (this.skip > 0) {
      const eol = b.indexOf(0x0a, pos);
      if (eol < 0) return true;
      pos = this.heldPos = eol + 1;
      this.skip--;
    }
    if (pos >= b.length) return true;
    if (b[pos] === 0x2d) {
      const eol = b.indexOf(0x0d, pos);
      if (eol < 0 && b.length - pos < MAX_HELD) return true;
      if (eol >= 0 && this.route!.redirected(b.subarray(pos, eol)) !== Redirect.None) {
        this.swallow = true;
        this.held = undefined;
        return true;
      }
    }
    this.gate = false;
    this.held = undefined;
    this.sendStart();
    if (this.cur === undefined) return true;
    return this.out(pos === 0 ? b : b.subarray(pos));
  }

  // ---- ReplySink

  start(): void {
    // a cluster reply starts once its first line is known (gateWrite)
    if (!this.gate) this.sendStart();
  }

  private sendStart(): void {
    const r = this.r;
    if (this.rlcf.output === OUTPUT_JSON) {
      this.json = new RespJsonEncoder();
      r.contentType = 'application/json';
    }
    this.replyStarted(200);
    r.status = 200;
    r.contentLength = -1;
    const replaced = r.filterFinalized;
    r.sendHeader();
    // a header-only response (HEAD, a 304) or one a filter replaced (412): the upstream is done, as nginx's
    if (r.headerOnly || r.filterFinalized !== replaced) this.cur?.abort();
  }

  write(chunk: Buffer): boolean {
    if (this.filter !== undefined) {
      chunk = this.filter.apply(chunk);
      if (chunk.length === 0) return true;
    }
    if (this.gate) return this.swallow ? true : this.gateWrite(chunk);
    return this.out(chunk);
  }

  /* reply bytes to the client, as they are or as JSON */
  private out(chunk: Buffer): boolean {
    const json = this.json;
    if (json === undefined) return this.r.send(chunk);
    const b = json.feed(chunk);
    return b.length === 0 ? true : this.r.send(b);
  }

  invalid(): void {
    this.cut = true;
  }

  protected override completing(): void {
    // a malformed reply leaves the JSON open: it stays cut, as the raw stream does
    if (this.json === undefined || this.cut || this.r.headerOnly) return;
    const end = this.json.finish();
    if (end !== undefined) this.r.send(end);
  }

  onDrain(cb: () => void): void {
    this.r.onDrain(cb);
  }
}
