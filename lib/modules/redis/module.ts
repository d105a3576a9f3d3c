import {
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE12,
  type Command,
} from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, flagSlot, mergeValue, msecSlot, numSlot, sizeSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { httpCoreModule, setUpstreamHandler } from '../../http/core/module.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import type { ContentHandler } from '../../http/request.js';
import { compileComplexValue, countVariables } from '../../http/script.js';
import { VAR_CHANGEABLE, httpVariables } from '../../http/variables.js';
import { bindSlot } from '../../upstream/bind.js';
import { upstreamAddUrl } from '../../upstream/module.js';
import {
  NEXT_UPSTREAM_KV_MASKS,
  mergeNextUpstream,
} from '../../upstream/run.js';
import { PAGE_SIZE, type RedisLocConf } from './conf.js';
import { redisContentHandler } from './handler.js';
import { rangeHeaderFilter } from './ranges.js';

/*
 * ngx_http_redis (Sergey A. Osokin's module: `redis_pass`), configuration
 * side, as its 0.4.x source has it: the directives with their contexts,
 * arities and merge rules, and the variables $redis_db and $redis_auth
 * (changeable, empty until `set`). $redis_key is the user's own variable:
 * redis_pass only refers to it, so a config that never defines it fails
 * with `unknown "redis_key" variable`. Debian does not package the module:
 * each rule follows its source, restated, and the -t answers are checked
 * against a build of it (fixtures/conf/hr-*, t/httpredis-conf.test.ts).
 *
 * redis_pass takes an address with its port or an upstream name: no
 * default port (ngx_http_upstream_add without one, as memcached_pass):
 * `redis_pass 127.0.0.1;` fails at -t with `no port in upstream`. A value
 * with variables names an upstream block per request (OpenResty's patch of
 * the module; the module's own releases fail with `no port in upstream`; its lookup's default port 6379 never matters, since only
 * port-less upstream blocks match).
 */

export type { RedisLocConf } from './conf.js';

const conf = (cf: Conf): RedisLocConf => locConf(cf, redisModule);

/** What clcf.handler is set to by redis_pass: the location's conf goes with the request. */
const redisHandler: ContentHandler = (r) => redisContentHandler(r, r.locConf[redisModule.index] as RedisLocConf);

function redisPass(cf: Conf): string | undefined {
  const rlcf = conf(cf);
  // the module tests the literal target only: `$a` then `$b` is accepted, the last one wins
  if (rlcf.target?.kind === 'upstream') return 'is duplicate';
  const value = cf.args[1]!;
  if (countVariables(value)) rlcf.target = { kind: 'complex', value: compileComplexValue(cf, value) };
  else rlcf.target = { kind: 'upstream', upstream: upstreamAddUrl(cf, value) };
  // a location ending in `/` redirects the URI without it (nginx's auto_redirect)
  setUpstreamHandler(locConf(cf, httpCoreModule), redisHandler);
  const vars = httpVariables(cf);
  rlcf.keyIndex = vars.getIndex('redis_key');
  rlcf.dbIndex = vars.getIndex('redis_db');
  rlcf.authIndex = vars.getIndex('redis_auth');
  return undefined;
}

/* ngx_http_upstream_bind_set_slot with `transparent` (0.4.x's TAKE12): accepted, no effect; another word is an error */
const bindAddr = bindSlot(conf, 'bind');
function redisBind(cf: Conf, cmd: Command): string | undefined {
  const rc = bindAddr(cf, cmd);
  if (typeof rc === 'string') return rc;
  const param = cf.args[2];
  if (param !== undefined && param !== 'transparent') throw cf.error(`invalid parameter "${param}"`);
  return undefined;
}

const LOC = HTTP_LOC_CONF | HTTP_LIF_CONF;
const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

import { createSslConf, mergeSslConf, sslCommands } from '../../upstream/ssl.js';

export const redisModule = defineHttpModule<unknown, unknown, RedisLocConf>({
  name: 'redis',
  preConfiguration(cf) {
    // ngx_http_redis_add_variables: an empty value until `set` gives one
    const vars = httpVariables(cf);
    vars.add(cf, 'redis_db', VAR_CHANGEABLE).get = () => '';
    vars.add(cf, 'redis_auth', VAR_CHANGEABLE).get = () => '';
  },
  createLocConf: () => ({
    target: undefined,
    keyIndex: UNSET,
    dbIndex: UNSET,
    authIndex: UNSET,
    connectTimeout: UNSET,
    sendTimeout: UNSET,
    readTimeout: UNSET,
    bufferSize: UNSET,
    nextUpstream: 0,
    nextUpstreamTries: UNSET,
    nextUpstreamTimeout: UNSET,
    bind: undefined,
    socketKeepalive: UNSET,
    gzipFlag: UNSET,
    ssl: createSslConf(),
  }),
  mergeLocConf(cf, prev, c) {
    if (c.bind === undefined) c.bind = prev.bind === undefined ? null : prev.bind;
    c.socketKeepalive = mergeValue(c.socketKeepalive, prev.socketKeepalive, 0);
    c.nextUpstreamTries = mergeValue(c.nextUpstreamTries, prev.nextUpstreamTries, 0);
    c.connectTimeout = mergeValue(c.connectTimeout, prev.connectTimeout, 60000);
    c.sendTimeout = mergeValue(c.sendTimeout, prev.sendTimeout, 60000);
    c.readTimeout = mergeValue(c.readTimeout, prev.readTimeout, 60000);
    c.nextUpstreamTimeout = mergeValue(c.nextUpstreamTimeout, prev.nextUpstreamTimeout, 0);
    c.bufferSize = mergeValue(c.bufferSize, prev.bufferSize, PAGE_SIZE);
    c.nextUpstream = mergeNextUpstream(c.nextUpstream, prev.nextUpstream);
    // the literal target and the variable indexes are inherited (a nested location without redis_pass has no handler)
    if (c.target === undefined && prev.target?.kind === 'upstream') c.target = prev.target;
    if (c.keyIndex === UNSET) {
      c.keyIndex = prev.keyIndex;
      c.dbIndex = prev.dbIndex;
      c.authIndex = prev.authIndex;
    }
    c.gzipFlag = mergeValue(c.gzipFlag, prev.gzipFlag, 0);
    mergeSslConf(cf, 'redis', prev.ssl, c.ssl, c.target !== undefined);
  },
  headerFilter: rangeHeaderFilter,
  commands: [
    { name: 'redis_pass', ctx: LOC, args: TAKE1, set: redisPass },
    { name: 'redis_bind', ctx: ALL, args: TAKE12, set: redisBind },
    { name: 'redis_socket_keepalive', ctx: ALL, args: FLAG, set: flagSlot(conf, 'socketKeepalive') },
    { name: 'redis_connect_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'connectTimeout') },
    { name: 'redis_send_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'sendTimeout') },
    { name: 'redis_buffer_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'bufferSize') },
    { name: 'redis_read_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'readTimeout') },
    {
      name: 'redis_next_upstream',
      ctx: ALL,
      args: MORE1,
      set: bitmaskSlot(conf, 'nextUpstream', NEXT_UPSTREAM_KV_MASKS),
    },
    { name: 'redis_next_upstream_tries', ctx: ALL, args: TAKE1, set: numSlot(conf, 'nextUpstreamTries') },
    { name: 'redis_next_upstream_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'nextUpstreamTimeout') },
    { name: 'redis_gzip_flag', ctx: ALL, args: TAKE1, set: numSlot(conf, 'gzipFlag') },
    // **extension**: TLS to Redis, nginx's proxy_ssl_* family (lib/upstream/ssl.ts)
    ...sslCommands('redis', (cf) => conf(cf).ssl),
  ],
});
