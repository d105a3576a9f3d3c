/*
 * The two URI transforms `rewrite` applies (ngx_string.c): captures put
 * into arguments or redirects are escaped as NGX_ESCAPE_ARGS when the
 * request URI had `%` or `+`; a redirect target is then unescaped with
 * NGX_UNESCAPE_REDIRECT (printable characters decoded, the rest kept).
 */

import { escapeTable, escapeUriWith } from '../../core/escape_uri.js';
import { hexValue } from '../../http/unescape.js';

/** nginx's `args` escape table: bit set = escape (for bytes 0x00..0xff) */
const ARGS_TABLE = [
  0xffffffff, 0xd800086d, 0x50000000, 0xb8000001, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
];
const ARGS = escapeTable((c) => (ARGS_TABLE[c >>> 5]! & (1 << (c & 0x1f))) !== 0);

/** ngx_escape_uri(..., NGX_ESCAPE_ARGS) on a byte string */
export function escapeArgs(s: string): string {
  return escapeUriWith(s, ARGS);
}

/**
 * ngx_unescape_uri(..., NGX_UNESCAPE_REDIRECT), quirks included: decoding
 * stops after a (literal or decoded) `?`; an invalid `%X` drops the `%`,
 * an invalid `%XY` drops all three.
 */
export function unescapeRedirect(s: string): string {
  if (s.indexOf('%') === -1) return s;
  let out = '';
  let state = 0;
  let decoded = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const ch = s.charCodeAt(i);
    if (state === 0) {
      if (ch === 0x3f) return out + s.slice(i);
      if (ch === 0x25) state = 1;
      else out += s[i];
    } else if (state === 1) {
      const h = hexValue(ch);
      if (h === -1) {
        state = 0;
        out += s[i];
      } else {
        decoded = h;
        state = 2;
      }
    } else {
      state = 0;
      const h = hexValue(ch);
      if (h === -1) continue;
      const c = (decoded << 4) + h;
      if (c === 0x3f && ch > 0x39) return out + '?' + s.slice(i + 1);
      if (c > 0x25 && c < 0x7f) out += String.fromCharCode(c);
      else out += '%' + s[i - 1] + s[i];
    }
  }
  return out;
}
