/*
 * ngx_escape_uri: a byte string's bytes that a table marks become %XX
 * (upper-case hex), the rest are kept. nginx has one table per use
 * (NGX_ESCAPE_URI, _ARGS, _REFRESH, _MEMCACHED...); each caller builds its
 * table once from the predicate that describes it (escapeTable) and
 * escapes through the one loop here. Input and output are latin1 byte
 * strings (one char per byte).
 */

const HEX = '0123456789ABCDEF';

/** a 256-entry table, 1 = escape, from a predicate over byte values */
export function escapeTable(escapes: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = escapes(c) ? 1 : 0;
  return t;
}

/** `s` with the bytes `table` marks as %XX; `s` itself when none is (the common case, no copy) */
export function escapeUriWith(s: string, table: Uint8Array): string {
  let i = 0;
  const n = s.length;
  while (i < n && table[s.charCodeAt(i) & 0xff] === 0) i++;
  if (i === n) return s;
  let out = s.slice(0, i);
  for (; i < n; i++) {
    const c = s.charCodeAt(i) & 0xff;
    out += table[c] === 1 ? `%${HEX[c >> 4]}${HEX[c & 15]}` : s[i];
  }
  return out;
}
