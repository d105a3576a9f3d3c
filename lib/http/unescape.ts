/*
 * Percent-decoding shared by the URI parser, rewrite, echo and set_misc: one
 * hex-digit reader, and the component unescape echo's subrequest URIs and
 * set_unescape_uri both use (they differ only in whether `+` is a space).
 */

/** the value of one hex digit byte, or -1 */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * ngx_unescape_uri's component decoding: `%` + a non-hex byte drops the `%`
 * and keeps the byte; `%X` + a non-hex byte drops all three; a `%` or `%X`
 * at the end is dropped. `plusIsSpace` is set_misc's patched rule (`+` → space);
 * echo's plain ngx_unescape_uri leaves `+` alone.
 */
export function unescapeUri(s: string, plusIsSpace: boolean): string {
  let out = '';
  let state = 0;
  let decoded = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (state === 0) {
      if (ch === 0x25) state = 1;
      else out += plusIsSpace && ch === 0x2b ? ' ' : s[i];
    } else if (state === 1) {
      const v = hexValue(ch);
      if (v >= 0) {
        decoded = v;
        state = 2;
      } else {
        state = 0;
        out += s[i];
      }
    } else {
      state = 0;
      const v = hexValue(ch);
      if (v >= 0) out += String.fromCharCode((decoded << 4) + v);
    }
  }
  return out;
}

/** nginx's NGX_ESCAPE_URI table (ngx_escape_uri): 8 words of 32 bits, bit set = escape */
const URI_PATH_TABLE = [0xffffffff, 0xd000002d, 0x50000000, 0xb8000001, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff];
const ESCAPE_PATH = new Uint8Array(256);
for (let c = 0; c < 256; c++) ESCAPE_PATH[c] = (URI_PATH_TABLE[c >> 5]! >>> (c & 31)) & 1;
const HEX = '0123456789ABCDEF';

/**
 * ngx_escape_uri(NGX_ESCAPE_URI), as nginx escapes a URI it puts in a
 * Location (a directory's redirect, a location's auto_redirect): `%XX` for
 * controls, space, `"`, `#`, `%`, `?`, `<`, `>`, `\`, `^`, backquote, `{`,
 * `|`, `}`, DEL and bytes above.
 */
export function escapeUriPath(s: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || ESCAPE_PATH[c]) {
      out += s.slice(start, i) + '%' + HEX[(c >> 4) & 15] + HEX[c & 15];
      start = i + 1;
    }
  }
  return start === 0 ? s : out + s.slice(start);
}
