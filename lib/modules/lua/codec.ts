import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { unescapeUri } from '../../http/unescape.js';

/*
 * The byte codecs of the ngx API (ngx_http_lua_string.c): everything is a
 * latin1 string (one char per byte), as Lua strings reach the host.
 */

/** nginx's NGX_ESCAPE_URI_COMPONENT table (bit set = escaped), by 32-char row */
const COMPONENT_ROWS = [0xffffffff, 0xfc00987d, 0x78000001, 0xb8000001, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff];
const ESCAPED = new Uint8Array(256);
for (let c = 0; c < 256; c++) ESCAPED[c] = (COMPONENT_ROWS[c >> 5]! >>> (c & 31)) & 1;
const HEX = '0123456789ABCDEF';

export function escapeUri(s: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    if (!ESCAPED[c]) continue;
    out += s.slice(last, i) + '%' + HEX[c >> 4] + HEX[c & 15];
    last = i + 1;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** ngx.unescape_uri: %XX decoded, `+` as a space (ngx_lua's URI component unescaping) */
export function unescapeUriComponent(s: string): string {
  return unescapeUri(s, true);
}

/** ngx.decode_args / get_uri_args: ordered pairs; a key without `=` has the value true */
export function decodeArgs(s: string, max: number): Array<[string, string | true]> {
  const out: Array<[string, string | true]> = [];
  if (s === '') return out;
  for (const part of s.split('&')) {
    if (max > 0 && out.length >= max) break;
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq === -1) out.push([unescapeUriComponent(part), true]);
    else {
      const k = part.slice(0, eq);
      if (k === '') continue;
      out.push([unescapeUriComponent(k), unescapeUriComponent(part.slice(eq + 1))]);
    }
  }
  return out;
}

export function md5Hex(s: string): string {
  return createHash('md5').update(Buffer.from(s, 'latin1')).digest('hex');
}
export function md5Bin(s: string): string {
  return createHash('md5').update(Buffer.from(s, 'latin1')).digest().toString('latin1');
}
export function sha1Bin(s: string): string {
  return createHash('sha1').update(Buffer.from(s, 'latin1')).digest().toString('latin1');
}
export function hmacSha1(key: string, s: string): string {
  return createHmac('sha1', Buffer.from(key, 'latin1')).update(Buffer.from(s, 'latin1')).digest().toString('latin1');
}
export function crc32Of(s: string): number {
  return crc32(Buffer.from(s, 'latin1')) >>> 0;
}
export function encodeBase64(s: string, noPadding: boolean): string {
  const b = Buffer.from(s, 'latin1').toString('base64');
  return noPadding ? b.replace(/=+$/, '') : b;
}
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** ngx_decode_base64: undefined for bytes outside the alphabet or a length of 4n+1 */
export function decodeBase64(s: string): string | undefined {
  if (!B64.test(s)) return undefined;
  const body = s.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  return Buffer.from(body, 'base64').toString('latin1');
}

const SQL_ESC: Record<string, string> = {
  '\0': '\\0', '\b': '\\b', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1a': '\\Z', '\\': '\\\\', "'": "\\'", '"': '\\"',
};
export function quoteSqlStr(s: string): string {
  return `'${s.replace(/[\0\b\n\r\t\x1a\\'"]/g, (c) => SQL_ESC[c]!)}'`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => (n < 10 ? '0' : '') + n;

export function httpTime(sec: number): string {
  const d = new Date(sec * 1000);
  return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`;
}
export function cookieTime(sec: number): string {
  const d = new Date(sec * 1000);
  return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${p2(d.getUTCFullYear() % 100)} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`;
}
export function localTime(ms: number, utc: boolean): string {
  const d = new Date(ms);
  if (utc) return `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}
