import type { Conf } from '../conf/parser.js';
import type { HttpRequest } from './http_request.js';

/*
 * ngx_http_types_slot / ngx_http_merge_types / ngx_http_test_content_type:
 * the MIME-type lists of gzip_types, charset_types, sub_filter_types...
 * A level's list is its own directives' types after the module's first
 * default one (so naming it again warns); `*` takes any type. A level
 * without the directive inherits its parent's list, or the defaults.
 */

/** a set of lowercase types, or 'any' for `*` */
export type TypeList = Set<string> | 'any';

/**
 * The directive's handler: `list` is the level's list so far (undefined
 * before its first line), which starts with the module's `first` type
 * (nginx's cmd->post: text/html for gzip_types and charset_types).
 */
export function typesSlot(cf: Conf, list: TypeList | undefined, first: string): TypeList {
  if (list === 'any') return list;
  const set = list ?? new Set<string>([first]);
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v === '*') return 'any';
    const low = v.toLowerCase();
    if (set.has(low)) {
      cf.warn(`duplicate MIME type "${low}"`);
      continue;
    }
    set.add(low);
  }
  return set;
}

/** ngx_http_merge_types: the level's own list, else the parent's, else the defaults */
export function mergeTypes(conf: TypeList | undefined, prev: TypeList | undefined, defaults: readonly string[]): TypeList {
  return conf ?? prev ?? new Set(defaults);
}

/**
 * The part of the Content-Type nginx matches type lists against
 * (headers_out.content_type_len): an upstream's value up to the `;` of
 * its charset parameter, any other value whole.
 */
export function contentTypeOnly(r: HttpRequest): string {
  const ct = r.contentType ?? r.defaultContentType();
  return r.ctTyped !== undefined && r.ctTyped === ct ? ct.slice(0, r.ctLen) : ct;
}

/**
 * The Content-Type line's value: the type, then `; charset=` the
 * response's charset (the charset filter's, an upstream's) when the type
 * does not carry it already, as ngx_http_header_filter writes it.
 */
export function contentTypeLine(r: HttpRequest): string {
  const ct = r.contentType ?? '';
  if (!ct || !r.charset) return ct;
  const whole = r.ctTyped !== ct || r.ctLen === ct.length;
  return whole ? `${ct}; charset=${r.charset}` : ct;
}

/** content_type.len = content_type_len: drop an upstream's charset parameter (a new one follows) */
export function cutContentType(r: HttpRequest): void {
  const ct = r.contentType ?? r.defaultContentType();
  r.contentType = r.ctTyped !== undefined && r.ctTyped === ct ? ct.slice(0, r.ctLen) : ct;
  r.ctTyped = undefined;
}

/** ngx_http_test_content_type: the response's type (lowercased) is in the list; no type never is */
export function testContentType(r: HttpRequest, list: TypeList): boolean {
  if (list === 'any') return true;
  const ct = contentTypeOnly(r);
  if (!ct) return false;
  return list.has(ct.toLowerCase());
}
