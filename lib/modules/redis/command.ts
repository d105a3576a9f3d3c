/*
 * The bytes ngx_http_redis (0.4.x) sends, built once per request
 * (ngx_http_redis_create_request; a retry on the next peer resends them):
 *
 *   [*2 $4 auth $N <$redis_auth>]      only when $redis_auth is non-empty
 *   *2 $6 select $N <$redis_db or 0>   always: `select 0` when $redis_db is unset or empty
 *   *2 $3 get $N <$redis_key, escaped>
 *
 * as RESP arrays of bulk strings, command names in lowercase. The module
 * always selects (0 by default) so its reply parser can count lines; the
 * values go out as bulk strings, so no value can inject a command.
 *
 * The key is escaped with ngx_escape_uri's table 4 (the module's
 * NGX_ESCAPE_REDIS, which is nginx's NGX_ESCAPE_REFRESH): bytes 00-20,
 * `"`, `'`, 7F-FF become %XX with uppercase hex; everything else (including
 * `%`, `?`, `&`, `/`) is sent as is. The bulk length is the escaped length
 * (0.4.2; 0.3.9 sent the unescaped length, which broke escaped keys). The
 * escaped key is also what the log lines quote.
 */

import { escapeTable, escapeUriWith } from '../../core/escape_uri.js';

/** ngx_escape_uri(NGX_ESCAPE_REFRESH) */
const REDIS_KEY = escapeTable((c) => c <= 0x20 || c === 0x22 || c === 0x27 || c >= 0x7f);

/** the key as the module sends it (a latin1 byte string in, one out) */
export function escapeKey(key: string): string {
  return escapeUriWith(key, REDIS_KEY);
}

function bulkCommand(name: string, arg: string): string {
  return `*2\r\n$${name.length}\r\n${name}\r\n$${arg.length}\r\n${arg}\r\n`;
}

export interface RedisCommand {
  /** everything written to Redis, in one write */
  bytes: Buffer;
  /** the escaped key: log lines name it */
  key: string;
  /**
   * The AUTH and SELECT commands' bytes: the state they leave on the
   * connection. A pooled connection is only reused by requests with the
   * same state (the keepalive key carries it, see handler.ts); it equals
   * what redis2's conn_state.ts computes for the same commands, so a
   * redis2 location sending the very same `select` shares connections.
   */
  state: string;
  /** AUTH was sent: its +OK comes first in the reply */
  auth: boolean;
}

/* the AUTH / SELECT part for the last ($redis_auth, $redis_db) seen: the same for nearly every request */
let lastAuth = '';
let lastDb = '0';
let lastState = bulkCommand('select', '0');

function stateOf(auth: string, db: string): string {
  if (auth !== lastAuth || db !== lastDb) {
    lastAuth = auth;
    lastDb = db;
    const s = auth.length > 0 ? bulkCommand('auth', auth) : '';
    lastState = s + bulkCommand('select', db.length > 0 ? db : '0');
  }
  return lastState;
}

/** the command for this request's $redis_auth, $redis_db and (non-empty) $redis_key */
export function buildCommand(auth: string, db: string, key: string): RedisCommand {
  const escaped = escapeKey(key);
  const state = stateOf(auth, db);
  // one string, one Buffer.from (cheaper than several Buffer writes)
  const bytes = Buffer.from(`${state}*2\r\n$3\r\nget\r\n$${escaped.length}\r\n${escaped}\r\n`, 'latin1');
  return { bytes, key: escaped, state, auth: auth.length > 0 };
}
