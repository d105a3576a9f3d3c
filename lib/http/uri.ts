/*
 * URI normalisation as ngx_http_parse_complex_uri does it: percent-decoding
 * (a decoded byte is then judged like a raw one, so `%2e%2e` is `..`),
 * `//` merged, `.` and `..` segments resolved. A `..` above the root, a bad
 * `%` escape or `%00` make the request invalid (400).
 */

import { escapeTable, escapeUriWith } from '../core/escape_uri.js';
import { hexValue } from './unescape.js';

export interface ParsedUri {
  /** the decoded, normalised path */
  uri: string;
  /** the query string without `?` and without a `#fragment` */
  args: string;
}

const enum S {
  Usual,
  Slash,
  Dot,
  DotDot,
  Quoted,
  QuotedSecond,
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PCT = 0x25;
const QM = 0x3f;
const HASH = 0x23;

/** true when the path needs the full parser (nginx's complex_uri/quoted_uri flags) */
function isSimple(path: string): boolean {
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PCT || c === HASH) return false;
    if (prev === SLASH && (c === SLASH || c === DOT)) return false;
    prev = c;
  }
  return true;
}

/**
 * `raw` is the URI from the request line starting at its path (`/...`);
 * `emptyPath` adds the `/` an absolute URI like `http://h?x` lacks;
 * `mergeSlashes` is merge_slashes.
 * Returns undefined when nginx answers 400.
 */
export function parseComplexUri(raw: string, emptyPath = false, mergeSlashes = true): ParsedUri | undefined {
  const q = raw.indexOf('?');
  const pathPart = q === -1 ? raw : raw.slice(0, q);
  if (!emptyPath && isSimple(pathPart) && raw.indexOf('#') === -1) {
    return { uri: pathPart, args: q === -1 ? '' : raw.slice(q + 1) };
  }
  const out: number[] = [];
  if (emptyPath) out.push(SLASH);
  let state = S.Usual;
  let quotedState = S.Usual;
  let decoded = 0;
  let argsStart = -1;
  const len = raw.length;
  let i = 0;
  let ch = len > 0 ? raw.charCodeAt(i++) : 0;
  // nginx reads one char past the URI (its LF); `more` tracks that sentinel
  let more = len > 0;
  const next = (): void => {
    if (i < len) ch = raw.charCodeAt(i++);
    else {
      more = false;
      i++;
    }
  };
  let done = false;
  while (more && !done) {
    switch (state) {
      case S.Usual:
        if (ch === SLASH) {
          state = S.Slash;
          out.push(ch);
        } else if (ch === PCT) {
          quotedState = state;
          state = S.Quoted;
        } else if (ch === QM) {
          argsStart = i;
          done = true;
          break;
        } else if (ch === HASH) {
          done = true;
          break;
        } else out.push(ch);
        next();
        break;
      case S.Slash:
        if (ch === SLASH) {
          // merge_slashes off keeps every `/`
          if (!mergeSlashes) out.push(ch);
        } else if (ch === DOT) {
          state = S.Dot;
          out.push(ch);
        } else if (ch === PCT) {
          quotedState = state;
          state = S.Quoted;
        } else if (ch === QM) {
          argsStart = i;
          done = true;
          break;
        } else if (ch === HASH) {
          done = true;
          break;
        } else {
          state = S.Usual;
          out.push(ch);
        }
        next();
        break;
      case S.Dot:
        if (ch === SLASH) {
          state = S.Slash;
          out.pop();
        } else if (ch === DOT) {
          state = S.DotDot;
          out.push(ch);
        } else if (ch === PCT) {
          quotedState = state;
          state = S.Quoted;
        } else if (ch === QM || ch === HASH) {
          out.pop();
          if (ch === QM) argsStart = i;
          done = true;
          break;
        } else {
          state = S.Usual;
          out.push(ch);
        }
        next();
        break;
      case S.DotDot:
        if (ch === SLASH || ch === QM || ch === HASH) {
          if (!upLevel(out)) return undefined;
          if (ch === QM) {
            argsStart = i;
            done = true;
            break;
          }
          if (ch === HASH) {
            done = true;
            break;
          }
          state = S.Slash;
        } else if (ch === PCT) {
          quotedState = state;
          state = S.Quoted;
        } else {
          state = S.Usual;
          out.push(ch);
        }
        next();
        break;
      case S.Quoted: {
        const v = hexValue(ch);
        if (v < 0) return undefined;
        decoded = v;
        state = S.QuotedSecond;
        next();
        break;
      }
      case S.QuotedSecond: {
        const v = hexValue(ch);
        if (v < 0) return undefined;
        const isDigit = ch >= 0x30 && ch <= 0x39;
        ch = (decoded << 4) + v;
        if (isDigit) {
          if (ch === PCT || ch === HASH) {
            state = S.Usual;
            out.push(ch);
            next();
            break;
          }
          if (ch === 0) return undefined;
        } else if (ch === QM) {
          state = S.Usual;
          out.push(ch);
          next();
          break;
        }
        // the decoded byte is judged again in the state before the `%`
        state = quotedState;
        break;
      }
    }
  }
  if (!done) {
    if (state === S.Quoted || state === S.QuotedSecond) return undefined;
    if (state === S.Dot) out.pop();
    else if (state === S.DotDot && !upLevel(out)) return undefined;
  }
  let args = '';
  if (argsStart !== -1) {
    const hash = raw.indexOf('#', argsStart);
    args = hash === -1 ? raw.slice(argsStart) : raw.slice(argsStart, hash);
  }
  return { uri: String.fromCharCode.apply(null, out), args };
}

/** `u -= 4; back to the previous '/'`: drop `/..` and the segment before it */
function upLevel(out: number[]): boolean {
  let u = out.length - 4;
  for (;;) {
    if (u < 0) return false;
    if (out[u] === SLASH) {
      out.length = u + 1;
      return true;
    }
    u--;
  }
}

/** ngx_escape_uri(NGX_ESCAPE_URI): controls, space, `#`, `%`, `?`, DEL and bytes >= 0x80 as %XX */
const URI_PATH = escapeTable((c) => c <= 0x20 || c === 0x23 || c === 0x25 || c === 0x3f || c >= 0x7f);

export function escapeUriPath(s: string): string {
  return escapeUriWith(s, URI_PATH);
}
