import type { Conf } from '../conf/parser.js';
import type { HttpRequest } from './http_request.js';

/*
 * ngx_http_types_slot / ngx_http_merge_types / ngx_http_test_content_type:
 * the MIME-type lists of gzip_types, charset_types, sub_filter_types...
 * A level's list is its own directives' types plus the module's default
 * ones (added first, as nginx does, so naming one again warns); `*` takes
 * any type. A level without the directive inherits its parent's list.
 */

/** a set of lowercase types, or 'any' for `*` */
export type TypeList = Set<string> | 'any';

/** the directive's handler: `list` is the level's list so far (undefined before its first line) */
export function typesSlot(cf: Conf, list: TypeList | undefined, defaults: readonly string[]): TypeList {
  if (list === 'any') return list;
  const set = list ?? new Set<string>(defaults);
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
 * ngx_http_test_content_type: the response's type (before any `;`
 * parameters, lowercased) is in the list; no type never is.
 */
export function testContentType(r: HttpRequest, list: TypeList): boolean {
  const ct = r.contentType ?? r.defaultContentType();
  if (list === 'any') return true;
  if (!ct) return false;
  let end = ct.indexOf(';');
  if (end === -1) end = ct.length;
  while (end > 0 && ct.charCodeAt(end - 1) === 0x20) end--;
  return list.has(ct.slice(0, end).toLowerCase());
}
