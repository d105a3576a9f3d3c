import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { addHeaderApplies } from '../../http/status.js';
import { Expires, type HeadersLocConf } from './conf.js';
import { setExpires } from './expires.js';

/*
 * ngx_http_headers_filter: the add_header lines of the request's location
 * level that apply to the final status (empty values are skipped, as
 * nginx) go after the response's own headers.
 */
export function addHeaders(r: HttpRequest, conf: HeadersLocConf | undefined): void {
  if (conf === undefined) return;
  const ex = conf.expires;
  // expires: main requests, the statuses add_header serves without `always`, before add_header's lines
  if (ex !== undefined && ex.kind !== Expires.Off && r.main === r && addHeaderApplies(r.status)) setExpires(r, ex);
  const list = conf.headers;
  if (!list) return;
  const applies = addHeaderApplies(r.status);
  for (const h of list) {
    if (!applies && !h.always) continue;
    if (h.value === undefined) continue;
    const v = evalComplexValue(r, h.value);
    if (v.length) r.headersOut.push([h.name, v]);
  }
}
