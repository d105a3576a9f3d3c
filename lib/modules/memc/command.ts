import { escapeTable, escapeUriWith } from '../../core/escape_uri.js';
import { MemcCmd, isStorage } from './conf.js';

/*
 * The bytes the memc module writes to memcached (its create_request
 * functions, 0.19), built once per request; a retry on the next peer
 * resends them:
 *
 *   get KEY\r\n
 *   CMD KEY FLAGS EXPTIME BYTES\r\nVALUE\r\n      set add replace append prepend
 *   delete KEY[ EXPTIME]\r\n                      EXPTIME only when non-empty
 *   incr|decr KEY VALUE\r\n
 *   flush_all[ EXPTIME]\r\n
 *   stats\r\n  version\r\n
 *
 * The key is escaped with ngx_escape_uri's memcached table: bytes 00-20
 * and `%` become %XX (uppercase hex), the rest goes as is; the escaped key
 * is what the log lines quote and what a VALUE line must repeat.
 */

/** ngx_escape_uri(NGX_ESCAPE_MEMCACHED) */
const MEMC_KEY = escapeTable((c) => c <= 0x20 || c === 0x25);

/** the key escaped as the module sends it (a latin1 byte string in, one out) */
export function escapeKey(key: string): string {
  return escapeUriWith(key, MEMC_KEY);
}

export interface MemcArgs {
  cmd: MemcCmd;
  /** the command's name as $memc_cmd holds it */
  name: string;
  /** the escaped key ('' for commands without one) */
  key: string;
  flags: string;
  exptime: string;
  /** storage: the value ($memc_value, or the request body's chunks); incr/decr: the amount */
  value: string | Buffer[];
}

/** the request bytes for one command (the caller checked what the module checks before) */
export function buildRequest(a: MemcArgs): Buffer {
  const cmd = a.cmd;
  if (isStorage(cmd)) {
    const v = a.value;
    let bytes = 0;
    if (typeof v === 'string') bytes = v.length;
    else for (const b of v) bytes += b.length;
    const head = Buffer.from(`${a.name} ${a.key} ${a.flags} ${a.exptime} ${bytes}\r\n`, 'latin1');
    const parts: Buffer[] = [head];
    if (typeof v === 'string') parts.push(Buffer.from(v, 'latin1'));
    else parts.push(...v);
    parts.push(CRLF);
    return Buffer.concat(parts, head.length + bytes + 2);
  }
  let line: string;
  switch (cmd) {
    case MemcCmd.Get:
      line = `get ${a.key}`;
      break;
    case MemcCmd.Delete:
      line = a.exptime.length > 0 ? `${a.name} ${a.key} ${a.exptime}` : `${a.name} ${a.key}`;
      break;
    case MemcCmd.Incr:
    case MemcCmd.Decr:
      line = `${a.name} ${a.key} ${a.value as string}`;
      break;
    case MemcCmd.FlushAll:
      line = a.exptime.length > 0 ? `${a.name} ${a.exptime}` : a.name;
      break;
    default:
      line = a.name;
  }
  return Buffer.from(`${line}\r\n`, 'latin1');
}

const CRLF = Buffer.from('\r\n', 'latin1');

/** ngx_http_memc_valid_uint32_str / _uint64_str: at most `max` bytes, digits only (empty passes) */
export function validDigits(s: string, max: number): boolean {
  if (s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** the module's NGX_UINT32_LEN and NGX_UINT64_LEN: NGX_INT32_LEN - 1 and NGX_INT64_LEN - 1 (10 and 19) */
export const UINT32_LEN = 10;
export const UINT64_LEN = 19;
