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
