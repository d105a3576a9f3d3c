import { unescapeUri } from './unescape.js';

/*
 * ngx_http_parse_unsafe_uri (nginx core, ngx_http_parse.c): the target of a
 * subrequest a module builds from a value (echo_location,
 * echo_subrequest, srcache_fetch / srcache_store): `uri?args` split, `..`
 * segments and NUL bytes refused, before and after percent-decoding.
 */

/** ngx_http_parse.c's `usual` table: bytes that need no attention in a path */
const USUAL = [0x00000000, 0x7fff37d6, 0xffffffff, 0x7fffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff];
const isUsual = (c: number): boolean => ((USUAL[c >> 5]! >>> (c & 31)) & 1) === 1;

function hasDotDot(p: string): boolean {
  if (p.length > 1 && p[0] === '.' && p[1] === '.' && (p.length === 2 || p[2] === '/')) return true;
  for (let i = 0; i < p.length; i++) {
    const len = p.length - i;
    if (p[i] === '\0') return true;
    if (p[i] === '/' && len > 2 && p[i + 1] === '.' && p[i + 2] === '.' && (len === 3 || p[i + 3] === '/')) return true;
  }
  return false;
}

export interface ParsedUri {
  /** the path; when unsafe, the URI as nginx's debug line shows it */
  uri: string;
  args: string | undefined;
  unsafe: boolean;
}

/**
 * ngx_http_parse_unsafe_uri: split `uri?args`, refuse `..` segments and
 * NUL bytes (before and after percent-decoding).
 */
export function parseUnsafeUri(uri: string): ParsedUri {
  const bad = (shown: string): ParsedUri => ({ uri: shown, args: undefined, unsafe: true });
  if (uri.length === 0 || uri[0] === '?') return bad(uri);
  let args: string | undefined;
  let quoted = false;
  let path = uri;
  if (uri.length > 1 && uri[0] === '.' && uri[1] === '.' && (uri.length === 2 || uri[2] === '/')) return bad(uri);
  for (let i = 0; i < uri.length; i++) {
    const ch = uri.charCodeAt(i);
    if (ch === 0x25) {
      quoted = true;
      continue;
    }
    if (isUsual(ch)) continue;
    if (ch === 0x3f) {
      args = uri.slice(i + 1);
      path = uri.slice(0, i);
      break;
    }
    if (ch === 0) return bad(uri);
    const len = uri.length - i;
    if (ch === 0x2f && len > 2 && uri[i + 1] === '.' && uri[i + 2] === '.' && (len === 3 || uri[i + 3] === '/')) return bad(uri);
  }
  if (quoted) {
    path = unescapeUri(path, false); // ngx_unescape_uri type 0: no `+` rule
    if (hasDotDot(path)) return bad(path);
  }
  return { uri: path, args, unsafe: false };
}
