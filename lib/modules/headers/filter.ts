import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { addHeaderApplies } from '../../http/status.js';
import { Expires, type AddHeader, type HeadersLocConf } from './conf.js';
import { setExpires } from './expires.js';

/*
 * ngx_http_headers_filter: the add_header lines of the request's location
 * level that apply to the final status (empty values are skipped, as
 * nginx) go after the response's own headers.
 */
export function addHeaders(r: HttpRequest, conf: HeadersLocConf | undefined): void {
  if (conf === undefined) return;
  if (conf.trailers !== undefined && r.main === r) expectTrailers(r, conf.trailers);
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

/**
 * add_trailer: when a line applies to the status (or is `always`), the
 * response is chunked even with a length (nginx's expect_trailers), and its
 * last chunk carries the lines evaluated at the end (empty values skipped)
 */
function expectTrailers(r: HttpRequest, list: AddHeader[]): void {
  const applies = addHeaderApplies(r.status);
  if (!list.some((h) => applies || h.always)) return;
  r.trailers = () => {
    const out: Array<[string, string]> = [];
    const now = addHeaderApplies(r.status);
    for (const h of list) {
      if ((!now && !h.always) || h.value === undefined) continue;
      const v = evalComplexValue(r, h.value);
      if (v.length) out.push([h.name, v]);
    }
    return out;
  };
}
