/*
 * The byte transforms of set_misc (openresty/set-misc-nginx-module), each
 * on latin1 byte strings: the module's patched URI escaping and unescaping,
 * SQL and JSON quoting, and nginx's own base64/hex codecs (ngx_string.c)
 * whose acceptance rules differ from Node's Buffer decoders (Buffer
 * accepts garbage silently; nginx refuses it).
 */

import { hexValue, unescapeUri as unescapeComponent } from '../../http/unescape.js';

/** ngx_escape_uri_patched's NGX_ESCAPE_URI table: 8 words of 32 bits, bit set = escape */
const URI_TABLE = [0xffffffff, 0xfc00886d, 0x78000000, 0xa8000000, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff];
const ESCAPE = new Uint8Array(256);
for (let c = 0; c < 256; c++) ESCAPE[c] = (URI_TABLE[c >> 5]! >>> (c & 31)) & 1;
const HEX_UPPER = '0123456789ABCDEF';
const HEX_LOWER = '0123456789abcdef';

/** set_escape_uri: `%XX` (uppercase) for the bytes the module's URI table marks */
export function escapeUri(s: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (ESCAPE[c]) {
      out += s.slice(start, i) + '%' + HEX_UPPER[c >> 4] + HEX_UPPER[c & 15];
      start = i + 1;
    }
  }
  return start === 0 ? s : out + s.slice(start);
}

/**
 * set_unescape_uri (ngx_unescape_uri_patched, component mode): `+` is a
 * space; `%` + a non-hex byte drops the `%` and keeps the byte; `%X` + a
 * non-hex byte drops all three; a `%` or `%X` at the end is dropped.
 */
export function unescapeUri(s: string): string {
  return unescapeComponent(s, true);
}

/** set_quote_sql_str: MySQL-style backslash escapes inside single quotes; empty → '' */
export function quoteSql(s: string): string {
  if (s.length === 0) return "''";
  let out = "'";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 0: out += '\\0'; break;
      case 8: out += '\\b'; break;
      case 10: out += '\\n'; break;
      case 13: out += '\\r'; break;
      case 9: out += '\\t'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x27: out += "\\'"; break;
      case 0x22: out += '\\"'; break;
      case 0x24: out += '\\$'; break;
      case 26: out += '\\Z'; break;
      default: out += s[i];
    }
  }
  return out + "'";
}

/**
 * The module's UTF-8 check for set_quote_pgsql_str (ngx_http_pg_utf_islegal),
 * kept as it is: a lead byte's sequence length comes from its high bits
 * (up to 6), only the last byte of a 3- or 4-byte sequence is checked, a
 * 2-byte one checks its second byte, 5- and 6-byte ones are refused, and
 * so are lone bytes 0x80-0xc1 and 0xf5-0xff.
 */
function pgUtfLegal(s: string): boolean {
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    const mblen = (c & 0x80) === 0 ? 1 : (c & 0xe0) === 0xc0 ? 2 : (c & 0xf0) === 0xe0 ? 3 : (c & 0xf8) === 0xf0 ? 4 : (c & 0xfc) === 0xf8 ? 5 : (c & 0xfe) === 0xfc ? 6 : 1;
    if (s.length - i < mblen) return false;
    let a: number;
    switch (mblen) {
      case 4:
      case 3:
      case 2:
        a = s.charCodeAt(i + mblen - 1);
        if (a < 0x80 || a > 0xbf) return false;
        break;
      case 1:
        if ((c >= 0x80 && c < 0xc2) || c > 0xf4) return false;
        break;
      default:
        return false;
    }
    i += mblen;
  }
  return true;
}

/**
 * set_quote_pgsql_str: set_quote_sql_str's quoting after an `E`; when the
 * result is not UTF-8 (by the module's check) every byte >= 0x80 becomes
 * `\\` and three octal digits. Empty → '' (no E).
 */
export function quotePgsql(s: string): string {
  if (s.length === 0) return "''";
  const q = 'E' + quoteSql(s);
  if (pgUtfLegal(q)) return q;
  let out = '';
  for (let i = 0; i < q.length; i++) {
    const c = q.charCodeAt(i);
    out += c & 0x80 ? '\\\\' + (c >> 6) + ((c >> 3) & 7) + (c & 7) : q[i];
  }
  return out;
}

/** set_quote_json_str: a JSON string literal; bytes >= 0x80 pass through; empty → null */
export function quoteJson(s: string): string {
  if (s.length === 0) return 'null';
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 13: out += '\\r'; break;
      case 10: out += '\\n'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x22: out += '\\"'; break;
      case 12: out += '\\f'; break;
      case 8: out += '\\b'; break;
      case 9: out += '\\t'; break;
      default:
        out += c < 32 ? '\\u00' + HEX_LOWER[c >> 4] + HEX_LOWER[c & 15] : s[i];
    }
  }
  return out + '"';
}

export function encodeBase64(s: string): string {
  return Buffer.from(s, 'latin1').toString('base64');
}

/** ngx_encode_base64url: `-` and `_` for `+` and `/`, no padding */
export function encodeBase64url(s: string): string {
  return Buffer.from(s, 'latin1').toString('base64url');
}

function decodeTableOf(alphabet: string): Uint8Array {
  const t = new Uint8Array(256).fill(77);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}

const B64 = decodeTableOf('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const B64URL = decodeTableOf('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');

/** ngx_decode_base64_internal: stops at `=`, refuses bytes outside the alphabet and a lone trailing sextet */
function decodeWith(s: string, table: Uint8Array): string | undefined {
  let len = 0;
  for (; len < s.length; len++) {
    const c = s.charCodeAt(len);
    if (c === 0x3d) break;
    if (c > 255 || table[c] === 77) return undefined;
  }
  if (len % 4 === 1) return undefined;
  let out = '';
  let i = 0;
  const b = (k: number): number => table[s.charCodeAt(k)]!;
  for (; len > 3; len -= 4, i += 4) {
    out += String.fromCharCode(((b(i) << 2) | (b(i + 1) >> 4)) & 255, ((b(i + 1) << 4) | (b(i + 2) >> 2)) & 255, ((b(i + 2) << 6) | b(i + 3)) & 255);
  }
  if (len > 1) out += String.fromCharCode(((b(i) << 2) | (b(i + 1) >> 4)) & 255);
  if (len > 2) out += String.fromCharCode(((b(i + 1) << 4) | (b(i + 2) >> 2)) & 255);
  return out;
}

/** ngx_decode_base64 */
export function decodeBase64(s: string): string | undefined {
  return decodeWith(s, B64);
}

/** ngx_decode_base64url: the URL alphabet; `+` and `/` are refused */
export function decodeBase64url(s: string): string | undefined {
  return decodeWith(s, B64URL);
}

/** ngx_hex_dump: lowercase */
export function encodeHex(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}

/** set_decode_hex: an even number of hex digits (either case), else undefined */
export function decodeHex(s: string): string | undefined {
  if (s.length % 2 !== 0) return undefined;
  let out = '';
  for (let i = 0; i < s.length; i += 2) {
    const h = hexValue(s.charCodeAt(i));
    const l = hexValue(s.charCodeAt(i + 1));
    if (h < 0 || l < 0) return undefined;
    out += String.fromCharCode((h << 4) | l);
  }
  return out;
}

/**
 * ngx_hash_key_lc truncated to 32 bits, as set_hashed_upstream's modulo
 * takes it: key = key * 31 + tolower(byte). The 64-bit product's low 32
 * bits equal the 32-bit product's, so Math.imul is exact.
 */
export function hashKeyLc(s: string): number {
  let key = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    key = (Math.imul(key, 31) + c) >>> 0;
  }
  return key;
}
