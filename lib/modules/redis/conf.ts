import type { PassTarget } from '../../upstream/pass_target.js';
import type { UpstreamLocal } from '../../upstream/module.js';
import type { UpstreamSslConf } from '../../upstream/ssl.js';

/* The redis module's (ngx_http_redis, `redis_pass`) conf shapes, read by the directives (module.ts) and the request side. */

/** ngx_pagesize on the platforms we run on: redis_buffer_size's default */
export const PAGE_SIZE = 4096;

/** `redis_pass host:port | NAME | $var` (lib/upstream/pass_target.ts) */
export type RedisTarget = PassTarget;

export interface RedisLocConf {
  target: RedisTarget | undefined;
  /** variable indexes of $redis_key, $redis_db and $redis_auth (set by redis_pass; -1 before) */
  keyIndex: number;
  dbIndex: number;
  authIndex: number;
  /** ms */
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  /** bytes: the most a reply's header may take (`upstream sent too big header` beyond) */
  bufferSize: number;
  /** NEXT_UPSTREAM_* mask after merge (never 0; OFF clears the rest) */
  nextUpstream: number;
  nextUpstreamTries: number;
  /** ms, 0: no limit */
  nextUpstreamTimeout: number;
  /** redis_bind: undefined = unset (merged to null), null = off */
  bind: UpstreamLocal | null | undefined;
  /** redis_socket_keepalive: SO_KEEPALIVE on the connections (1 on, 0 off) */
  socketKeepalive: number;
  /** redis_gzip_flag N: non-zero adds `Content-Encoding: gzip` to every found value */
  gzipFlag: number;
  /** **extension** redis_ssl_* (lib/upstream/ssl.ts) */
  ssl: UpstreamSslConf;
}
