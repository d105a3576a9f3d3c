/*
 * The search tables of ngx_http_sub_filter_module: patterns (lowercase)
 * sorted, stably, by their character at min_len - 1; a skip table over the
 * last min_len characters of each (a Horspool shift); index[c]..index[c+1]
 * the patterns whose character there is c. Which pattern wins at a
 * position follows from that order, so the tables are nginx's, built the
 * same way.
 */

export interface Pattern {
  /** lowercase bytes (latin1 string) */
  match: string;
  /** the sub_filter line it came from (its replacement) */
  pair: number;
}

export interface Tables {
  patterns: Pattern[];
  min: number;
  max: number;
  shift: Uint8Array;
  /** 257 entries */
  index: Uint16Array;
}

export function buildTables(list: Pattern[]): Tables {
  let min = list[0]!.match.length;
  let max = min;
  for (const p of list) {
    min = Math.min(min, p.match.length);
    max = Math.max(max, p.match.length);
  }
  const at = min - 1;
  // a stable sort by the character at min_len - 1
  const patterns = list
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.match.charCodeAt(at) - b.p.match.charCodeAt(at) || a.i - b.i)
    .map((x) => x.p);
  const shiftMax = Math.min(min, 255);
  const shift = new Uint8Array(256).fill(shiftMax);
  const index = new Uint16Array(257);
  let ch = 0;
  for (let i = 0; i < patterns.length; i++) {
    const m = patterns[i]!.match;
    for (let j = 0; j < shiftMax; j++) {
      const c = m.charCodeAt(min - 1 - j);
      shift[c] = Math.min(shift[c]!, j);
    }
    const c = m.charCodeAt(min - 1);
    while (ch <= c) index[ch++] = i;
  }
  while (ch < 257) index[ch++] = patterns.length;
  return { patterns, min, max, shift, index };
}
