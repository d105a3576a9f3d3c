import { BLOCK, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, HTTP_UPS_CONF, MORE1, TAKE1, TAKE12 } from '../conf/command.js';
import { ConfError } from '../conf/errors.js';
import { mallocFails } from '../core/memory.js';
import type { Conf, Cycle } from '../conf/parser.js';
import { atoi, parseSec } from '../conf/values.js';
import type { HttpCtx, HttpState } from '../http/module.js';
import { balancerCommands } from './balancer_directives.js';
import {
  UPSTREAM_BACKUP,
  UPSTREAM_CREATE,
  UPSTREAM_DOWN,
  UPSTREAM_FAIL_TIMEOUT,
  UPSTREAM_MAX_CONNS,
  UPSTREAM_MAX_FAILS,
  UPSTREAM_WEIGHT,
  type UpstreamMainConf,
  type UpstreamPeers,
  type UpstreamServer,
  type UpstreamSrvConf,
} from './conf.js';
import { parseUrl, type ParsedUrl } from './url.js';
import { clusterStateOf } from './cluster/state.js';
import { defineHttpModule, locConf } from '../http/module.js';
import { createUpstreamLocConf, mergeUpstreamLocConf, pipelineDirective, type UpstreamLocConf } from './pipeline.js';

export * from './conf.js';

/*
 * ngx_http_upstream_module, configuration side: `upstream NAME {}`,
 * `server`, implicit upstreams (ngx_http_upstream_add) and the peer lists
 * ngx_http_upstream_init_round_robin builds at the end of the http block.
 * Balancing methods and keepalive live in upstream_balancers.ts.
 */

const BLOCK_FLAGS =
  UPSTREAM_CREATE |
  UPSTREAM_WEIGHT |
  UPSTREAM_MAX_CONNS |
  UPSTREAM_MAX_FAILS |
  UPSTREAM_FAIL_TIMEOUT |
  UPSTREAM_DOWN |
  UPSTREAM_BACKUP;

/** The upstream a directive inside `upstream {}` writes to. */
function upsConf(cf: Conf): UpstreamSrvConf {
  return (cf.ctx as HttpCtx).srv[upstreamModule.index] as UpstreamSrvConf;
}

function umcfOf(cf: Conf): UpstreamMainConf {
  return (cf.ctx as HttpCtx).main[upstreamModule.index] as UpstreamMainConf;
}

function newUpstream(cf: Conf, u: ParsedUrl, flags: number): UpstreamSrvConf {
  const where = cf.where();
  return {
    host: u.host,
    port: u.port,
    noPort: u.noPort,
    flags,
    file: where.file,
    line: where.line,
    servers: undefined,
    balancer: { kind: 'round_robin' },
    balancerSet: false,
    keepalive: { maxCached: 0, active: false, time: -1, timeout: -1, requests: -1 },
    peers: undefined,
    backup: undefined,
  };
}

/**
 * ngx_http_upstream_add: find or create the upstream `u` names. Without
 * UPSTREAM_CREATE this is a reference (`redis2_pass host:port` or `NAME`):
 * it reuses a block or an implicit upstream with the same host and port,
 * else creates an implicit one; a name with no block and no port fails at
 * the end of the http block (`no port in upstream`).
 */
export function upstreamAdd(cf: Conf, u: ParsedUrl, flags: number): UpstreamSrvConf {
  const umcf = umcfOf(cf);
  const create = (flags & UPSTREAM_CREATE) !== 0;
  const lhost = u.host.toLowerCase();

  for (const us of umcf.upstreams) {
    if (us.host.length !== u.host.length || us.host.toLowerCase() !== lhost) continue;

    if (create && us.flags & UPSTREAM_CREATE) throw cf.error(`duplicate upstream "${u.host}"`);
    if (us.flags & UPSTREAM_CREATE && !u.noPort) {
      throw cf.error(`upstream "${u.host}" may not have port ${u.port}`);
    }
    if (create && !us.noPort) {
      // nginx logs this one with ngx_log_error: the place is that of the reference
      throw new ConfError(`upstream "${u.host}" may not have port ${us.port} in ${us.file}:${us.line}`);
    }
    if (us.port && u.port && us.port !== u.port) continue;

    if (create) {
      us.flags = flags;
      us.port = 0;
    }
    return us;
  }

  const us = newUpstream(cf, u, flags);
  if (u.addrs.length === 1 && (u.port || u.family === 'unix')) {
    // nginx zeroes this server: weight, max_fails and fail_timeout are 0
    us.servers = [
      { name: '', addrs: u.addrs, weight: 0, maxConns: 0, maxFails: 0, failTimeout: 0, down: false, backup: false },
    ];
  }
  umcf.upstreams.push(us);
  return us;
}

/** A literal upstream reference (`redis2_pass TEXT`, no variables). */
export function upstreamAddUrl(cf: Conf, text: string): UpstreamSrvConf {
  const r = parseUrl(text, { defaultPort: 0, noResolve: true });
  if (!r.ok) throw cf.error(`${r.err} in upstream "${text}"`);
  return upstreamAdd(cf, r.url, 0);
}

function upstreamBlock(cf: Conf): string | undefined {
  const name = cf.args[1]!;
  const u: ParsedUrl = { url: name, host: name, port: 0, noPort: true, family: 'inet', addrs: [] };
  const uscf = upstreamAdd(cf, u, BLOCK_FLAGS);

  const parent = cf.ctx as HttpCtx;
  const srv: unknown[] = [];
  srv[upstreamModule.index] = uscf;
  const ctx: HttpCtx = { main: parent.main, srv, loc: [] };
  uscf.servers = [];
  cf.parseBlock(HTTP_UPS_CONF, ctx);

  if (uscf.servers.length === 0) throw cf.error('no servers are inside upstream');
  return undefined;
}

function serverDirective(cf: Conf): string | undefined {
  const uscf = upsConf(cf);
  const args = cf.args;
  let weight = 1;
  let maxConns = 0;
  let maxFails = 1;
  let failTimeout = 10;
  let down = false;
  let backup = false;

  for (let i = 2; i < args.length; i++) {
    const v = args[i]!;
    const invalid = () => cf.error(`invalid parameter "${v}"`);
    const notSupported = () => cf.error(`balancing method does not support parameter "${v}"`);

    if (v.startsWith('weight=')) {
      if (!(uscf.flags & UPSTREAM_WEIGHT)) throw notSupported();
      weight = atoi(v.slice(7));
      if (weight === -1 || weight === 0) throw invalid();
    } else if (v.startsWith('max_conns=')) {
      if (!(uscf.flags & UPSTREAM_MAX_CONNS)) throw notSupported();
      maxConns = atoi(v.slice(10));
      if (maxConns === -1) throw invalid();
    } else if (v.startsWith('max_fails=')) {
      if (!(uscf.flags & UPSTREAM_MAX_FAILS)) throw notSupported();
      maxFails = atoi(v.slice(10));
      if (maxFails === -1) throw invalid();
    } else if (v.startsWith('fail_timeout=')) {
      if (!(uscf.flags & UPSTREAM_FAIL_TIMEOUT)) throw notSupported();
      failTimeout = parseSec(v.slice(13));
      if (failTimeout === -1) throw invalid();
    } else if (v === 'backup') {
      if (!(uscf.flags & UPSTREAM_BACKUP)) throw notSupported();
      backup = true;
    } else if (v === 'down') {
      if (!(uscf.flags & UPSTREAM_DOWN)) throw notSupported();
      down = true;
    } else {
      throw invalid();
    }
  }

  const text = args[1]!;
  const r = parseUrl(text, { defaultPort: 80, noResolve: false });
  if (!r.ok) throw cf.error(`${r.err} in upstream "${text}"`);

  const server: UpstreamServer = {
    name: text,
    addrs: r.url.addrs,
    weight,
    maxConns,
    maxFails,
    failTimeout,
    down,
    backup,
  };
  uscf.servers!.push(server);
  return undefined;
}

function peersOf(servers: UpstreamServer[]): UpstreamPeers | undefined {
  const peers: UpstreamPeers = { peers: [], totalWeight: 0, weighted: false, tries: 0, single: false };
  for (const s of servers) {
    for (const addr of s.addrs) {
      peers.peers.push({
        addr,
        server: s.name,
        weight: s.weight,
        maxConns: s.maxConns,
        maxFails: s.maxFails,
        failTimeout: s.failTimeout,
        down: s.down,
      });
      peers.totalWeight += s.weight;
      if (!s.down) peers.tries++;
    }
  }
  if (peers.peers.length === 0) return undefined;
  peers.weighted = peers.totalWeight !== peers.peers.length;
  peers.single = peers.peers.length === 1;
  return peers;
}

/** ngx_http_upstream_init_round_robin: every balancing method starts with it. */
function initPeers(us: UpstreamSrvConf): void {
  if (us.servers) {
    const primary = peersOf(us.servers.filter((s) => !s.backup));
    if (!primary) {
      throw new ConfError(`no servers in upstream "${us.host}" in ${us.file}:${us.line}`);
    }
    us.peers = primary;
    us.backup = peersOf(us.servers.filter((s) => s.backup));
    if (us.backup) primary.single = false;
    return;
  }

  // an upstream implicitly defined by `redis2_pass NAME[:PORT]`
  if (us.port === 0) throw new ConfError(`no port in upstream "${us.host}" in ${us.file}:${us.line}`);
  const r = parseUrl(`${us.host}:${us.port}`, { defaultPort: 0, noResolve: false });
  if (!r.ok || r.url.addrs.length === 0) {
    throw new ConfError(`host not found in upstream "${us.host}" in ${us.file}:${us.line}`);
  }
  const n = r.url.addrs.length;
  us.peers = {
    peers: r.url.addrs.map((addr) => ({
      addr,
      server: '',
      weight: 1,
      maxConns: 0,
      maxFails: 1,
      failTimeout: 10,
      down: false,
    })),
    totalWeight: n,
    weighted: false,
    tries: n,
    single: n === 1,
  };
}

function redis2dPipeline(cf: Conf, cmd: { name: string }): string | undefined {
  return pipelineDirective(locConf<UpstreamLocConf>(cf, upstreamModule), cf, cmd);
}

export const upstreamModule = defineHttpModule<UpstreamMainConf, unknown, UpstreamLocConf>({
  name: 'upstream',
  createMainConf: () => ({ upstreams: [] }),
  createLocConf: createUpstreamLocConf,
  mergeLocConf: (_cf, prev, c) => mergeUpstreamLocConf(prev, c),
  initMainConf(_cf, umcf) {
    for (const us of umcf.upstreams) {
      initPeers(us);
      const ka = us.keepalive;
      if (ka.active) {
        // ngx_http_upstream_init_keepalive allocates the whole cache now: N items of 152 bytes (size_t arithmetic)
        const size = (BigInt(ka.maxCached) * 152n) & ((1n << 64n) - 1n);
        if (mallocFails(size)) throw new ConfError(`malloc(${size}) failed (12: Cannot allocate memory)`);
      }
      // ngx_conf_init_*_value in ngx_http_upstream_init_keepalive
      if (ka.time === -1) ka.time = 3600000;
      if (ka.timeout === -1) ka.timeout = 60000;
      if (ka.requests === -1) ka.requests = 1000;
    }
  },
  initProcess(cycle) {
    // `redis_cluster` upstreams read their slot map as the worker starts (cluster/state.ts)
    const umcf = upstreamMainConf(cycle);
    for (const us of umcf?.upstreams ?? []) if (us.balancer.kind === 'cluster') clusterStateOf(us);
  },
  commands: [
    { name: 'upstream', ctx: HTTP_MAIN_CONF, args: BLOCK | TAKE1, set: upstreamBlock },
    { name: 'server', ctx: HTTP_UPS_CONF, args: MORE1, set: serverDirective },
    ...balancerCommands(upsConf),
    // **extension**: cross-request pipelining of the Redis modules (pipeline.ts, pipelined_conn.ts), README "redis2d_pipeline"
    {
      name: 'redis2d_pipeline',
      ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF,
      args: TAKE12,
      set: redis2dPipeline,
    },
  ],
});

/** The upstream main conf of a loaded config (for the runtime). */
export function upstreamMainConf(cycle: Cycle): UpstreamMainConf | undefined {
  const http = cycle.state.get('http') as HttpState | undefined;
  return http?.ctx.main[upstreamModule.index] as UpstreamMainConf | undefined;
}

/**
 * The runtime lookup of `redis2_pass $var` (ngx_http_redis2_upstream_add):
 * the value is a host with port 0, so only upstream blocks (and port-less
 * implicit names, which never pass -t) match; case-insensitive.
 */
export function findUpstream(umcf: UpstreamMainConf, host: string, port = 0): UpstreamSrvConf | undefined {
  const l = host.toLowerCase();
  for (const us of umcf.upstreams) {
    if (us.host.length === host.length && us.host.toLowerCase() === l && us.port === port) return us;
  }
  return undefined;
}

const resolved = new Map<string, UpstreamSrvConf>();

/**
 * A URL with variables (`proxy_pass http://$host:8080`) that names no
 * upstream block: nginx connects to a literal address at once (it would
 * need a `resolver` for a name; redis2d resolves none, as at config time).
 * The implicit upstream is made once per address and worker.
 */
export function resolvedUpstream(host: string, port: number): UpstreamSrvConf | undefined {
  const key = `${host}:${port}`;
  let us = resolved.get(key);
  if (us !== undefined) return us;
  const r = parseUrl(key, { defaultPort: 0, noResolve: true });
  if (!r.ok || r.url.addrs.length === 0) return undefined;
  us = {
    host,
    port,
    noPort: false,
    flags: 0,
    file: '',
    line: 0,
    servers: undefined,
    balancer: { kind: 'round_robin' },
    balancerSet: false,
    keepalive: { maxCached: 0, active: false, time: -1, timeout: -1, requests: -1 },
    peers: {
      peers: [{ addr: r.url.addrs[0]!, server: '', weight: 0, maxConns: 0, maxFails: 0, failTimeout: 0, down: false }],
      totalWeight: 0,
      weighted: false,
      tries: 1,
      single: true,
    },
    backup: undefined,
  };
  resolved.set(key, us);
  return us;
}
