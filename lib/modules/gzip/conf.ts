import type { HttpRegex } from '../../http/regex_exec.js';
import type { TypeList } from '../../http/types.js';

/*
 * The gzip filter's location conf. nginx keeps gzip_vary, gzip_http_version,
 * gzip_proxied and gzip_disable in the core module (ngx_http_gzip_ok is
 * shared with gzip_static); here they sit with the filter, which is
 * their only reader besides gzip_static (lib/modules/gzip_static).
 */

export interface GzipLocConf {
  enable: number;
  noBuffer: number;
  /** gzip_buffers: number and size of the output buffers (zlib's output chunk size) */
  bufs: { num: number; size: number } | undefined;
  postponeGzipping: number;
  level: number;
  /** gzip_window as zlib's windowBits (9..15) */
  wbits: number;
  /** gzip_hash as zlib's memLevel (1..9) */
  memlevel: number;
  minLength: number;
  types: TypeList | undefined;

  // ngx_http_core_module's gzip directives
  vary: number;
  /** 1000 (HTTP/1.0) or 1001 (HTTP/1.1) */
  httpVersion: number;
  /** gzip_proxied bitmask (PROXIED_*) */
  proxied: number;
  disable: HttpRegex[] | undefined;
  /** `gzip_disable msie6`: 1 set, 0 not, -1 inherit */
  disableMsie6: number;
}

export const PROXIED_OFF = 0x0002;
export const PROXIED_EXPIRED = 0x0004;
export const PROXIED_NO_CACHE = 0x0008;
export const PROXIED_NO_STORE = 0x0010;
export const PROXIED_PRIVATE = 0x0020;
export const PROXIED_NO_LM = 0x0040;
export const PROXIED_NO_ETAG = 0x0080;
export const PROXIED_AUTH = 0x0100;
export const PROXIED_ANY = 0x0200;

export const PROXIED_WORDS: Record<string, number> = {
  off: PROXIED_OFF,
  expired: PROXIED_EXPIRED,
  'no-cache': PROXIED_NO_CACHE,
  'no-store': PROXIED_NO_STORE,
  private: PROXIED_PRIVATE,
  no_last_modified: PROXIED_NO_LM,
  no_etag: PROXIED_NO_ETAG,
  auth: PROXIED_AUTH,
  any: PROXIED_ANY,
};

/** nginx's default gzip_types */
export const GZIP_DEFAULT_TYPES = ['text/html'] as const;
