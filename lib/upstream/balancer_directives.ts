import { HTTP_UPS_CONF, NOARGS, TAKE1, TAKE12, type Command } from '../conf/command.js';
import type { Conf } from '../conf/parser.js';
import { atoi, parseMsec } from '../conf/values.js';
import { compileComplexValue } from '../http/script.js';
import {
  UPSTREAM_BACKUP,
  UPSTREAM_CREATE,
  UPSTREAM_DOWN,
  UPSTREAM_FAIL_TIMEOUT,
  UPSTREAM_MAX_CONNS,
  UPSTREAM_MAX_FAILS,
  UPSTREAM_WEIGHT,
  type Balancer,
  type UpstreamKeepalive,
  type UpstreamSrvConf,
} from './conf.js';

/*
 * The directives of nginx's hash, ip_hash, least_conn, random and
 * keepalive upstream modules. Each balancing method replaces the upstream's
 * init hook (warning `load balancing method redefined` when one was set)
 * and narrows which `server` parameters later lines may use; parameters on
 * earlier `server` lines are not re-checked, exactly as nginx.
 */

const FLAGS_NO_BACKUP =
  UPSTREAM_CREATE | UPSTREAM_WEIGHT | UPSTREAM_MAX_CONNS | UPSTREAM_MAX_FAILS | UPSTREAM_FAIL_TIMEOUT | UPSTREAM_DOWN;

type UpsGetter = (cf: Conf) => UpstreamSrvConf;

/** Install a balancing method, as each module's handler does. */
function setBalancer(cf: Conf, uscf: UpstreamSrvConf, b: Balancer, flags: number): void {
  // `keepalive` also installs an init hook (wrapping the method before it)
  if (uscf.balancerSet || uscf.keepalive.active) cf.warn('load balancing method redefined');
  uscf.balancer = b;
  uscf.balancerSet = true;
  uscf.flags = flags;
  // the keepalive wrapper is replaced too: its cache is never used
  uscf.keepalive.active = false;
}

function msecField(get: UpsGetter, key: 'time' | 'timeout'): Command['set'] {
  return (cf) => {
    const ka: UpstreamKeepalive = get(cf).keepalive;
    if (ka[key] !== -1) return 'is duplicate';
    const v = parseMsec(cf.args[1]!);
    if (v === -1) return 'invalid value';
    ka[key] = v;
  };
}

export function balancerCommands(get: UpsGetter): Command[] {
  return [
    {
      name: 'hash',
      ctx: HTTP_UPS_CONF,
      args: TAKE12,
      set(cf) {
        const key = compileComplexValue(cf, cf.args[1]!);
        const uscf = get(cf);
        if (uscf.balancerSet || uscf.keepalive.active) cf.warn('load balancing method redefined');
        uscf.flags = FLAGS_NO_BACKUP;
        uscf.keepalive.active = false;
        if (cf.args.length === 2) {
          uscf.balancer = { kind: 'hash', key, consistent: false };
        } else if (cf.args[2] === 'consistent') {
          uscf.balancer = { kind: 'hash', key, consistent: true };
        } else {
          throw cf.error(`invalid parameter "${cf.args[2]}"`);
        }
        uscf.balancerSet = true;
      },
    },
    {
      name: 'ip_hash',
      ctx: HTTP_UPS_CONF,
      args: NOARGS,
      set(cf) {
        setBalancer(cf, get(cf), { kind: 'ip_hash' }, FLAGS_NO_BACKUP);
      },
    },
    {
      name: 'least_conn',
      ctx: HTTP_UPS_CONF,
      args: NOARGS,
      set(cf) {
        setBalancer(cf, get(cf), { kind: 'least_conn' }, FLAGS_NO_BACKUP | UPSTREAM_BACKUP);
      },
    },
    {
      name: 'random',
      ctx: HTTP_UPS_CONF,
      args: NOARGS | TAKE12,
      set(cf) {
        const b: Balancer = { kind: 'random', two: false, leastConn: false };
        setBalancer(cf, get(cf), b, FLAGS_NO_BACKUP);
        if (cf.args.length === 1) return;
        if (cf.args[1] !== 'two') throw cf.error(`invalid parameter "${cf.args[1]}"`);
        b.two = true;
        if (cf.args.length === 2) return;
        if (cf.args[2] !== 'least_conn') throw cf.error(`invalid parameter "${cf.args[2]}"`);
        b.leastConn = true;
      },
    },
    {
      // **extension**: a Redis Cluster behind the block (cluster/state.ts); the servers are seeds
      name: 'redis_cluster',
      ctx: HTTP_UPS_CONF,
      args: NOARGS | TAKE1,
      set(cf) {
        const b: Balancer = { kind: 'cluster', readReplicas: false };
        if (cf.args.length === 2) {
          if (cf.args[1] !== 'read_replicas') throw cf.error(`invalid parameter "${cf.args[1]}"`);
          b.readReplicas = true;
        }
        setBalancer(cf, get(cf), b, FLAGS_NO_BACKUP);
      },
    },
    {
      name: 'keepalive',
      ctx: HTTP_UPS_CONF,
      args: TAKE1,
      set(cf, cmd) {
        const ka = get(cf).keepalive;
        if (ka.maxCached) return 'is duplicate';
        const n = atoi(cf.args[1]!);
        if (n === -1 || n === 0) throw cf.error(`invalid value "${cf.args[1]}" in "${cmd.name}" directive`);
        ka.maxCached = n;
        ka.active = true;
      },
    },
    { name: 'keepalive_time', ctx: HTTP_UPS_CONF, args: TAKE1, set: msecField(get, 'time') },
    { name: 'keepalive_timeout', ctx: HTTP_UPS_CONF, args: TAKE1, set: msecField(get, 'timeout') },
    {
      name: 'keepalive_requests',
      ctx: HTTP_UPS_CONF,
      args: TAKE1,
      set(cf) {
        const ka = get(cf).keepalive;
        if (ka.requests !== -1) return 'is duplicate';
        const v = atoi(cf.args[1]!);
        if (v === -1) return 'invalid number';
        ka.requests = v;
      },
    },
  ];
}
