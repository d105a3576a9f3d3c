import { parseHttpTime } from '../http/http_time.js';
import type { Request } from '../http/request.js';

/*
 * An HTTP upstream's response header, turned into the client's
 * (ngx_http_upstream_process_headers and the ngx_http_upstream_headers_in
 * table): the status and its reason phrase pass as the backend sent them;
 * Content-Type, Content-Length and Location become the response's own
 * fields (the header filter writes them in nginx's order, and makes a
 * relative Location absolute); hop-by-hop headers stop here; a location's
 * hidden headers (the protocol's defaults plus *_hide_header, minus
 * *_pass_header) are dropped; the rest follow in the backend's order.
 */

/** headers no upstream response passes on: they describe the upstream connection */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

/** How one location passes an upstream's headers. */
export interface HeaderPolicy {
  /** lowercased names never passed (defaults + *_hide_header - *_pass_header) */
  hide: ReadonlySet<string>;
  /** rewrite a Location or Refresh value (proxy_redirect); undefined: no rule matched */
  redirect?: ((r: Request, value: string) => string | undefined) | undefined;
  /**
   * the protocol stands in an empty Server and Date for a backend that sent
   * none (ngx_http_proxy_process_header): passed (*_pass_header), they keep
   * nginx's own lines out
   */
  placeholders?: boolean;
  /** rewrite a Set-Cookie value (proxy_cookie_domain / _path); undefined: as is */
  cookie?: ((r: Request, value: string) => string) | undefined;
}

/** the hidden set of a location: the defaults and hide_header names, less the pass_header ones */
export function hiddenHeaders(defaults: readonly string[], hide: readonly string[], pass: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const h of defaults) out.add(h.toLowerCase());
  for (const h of hide) out.add(h.toLowerCase());
  for (const h of pass) out.delete(h.toLowerCase());
  return out;
}

/**
 * ngx_http_upstream_copy_content_type: a `charset=` parameter (after a
 * `;` and spaces) becomes the response's charset (quotes dropped), and the
 * type is matched without it; the value itself goes out as it came.
 */
function upstreamCharset(r: Request, value: string): void {
  r.ctTyped = value;
  r.ctLen = value.length;
  r.charset = '';
  for (let p = 0; p < value.length; p++) {
    if (value.charCodeAt(p) !== 0x3b) continue;
    const last = p;
    while (value.charCodeAt(++p) === 0x20);
    if (p >= value.length) return;
    if (value.slice(p, p + 8).toLowerCase() !== 'charset=') continue;
    p += 8;
    r.ctLen = last;
    if (value[p] === '"') p++;
    let end = value.length;
    if (value[end - 1] === '"') end--;
    r.charset = value.slice(p, Math.max(p, end));
    return;
  }
}

/**
 * Copy an upstream response header onto r. `headers` are [name, value]
 * pairs in the backend's order. Returns the Content-Length the backend
 * announced (-1 when none or invalid).
 */
export function copyResponseHeaders(
  r: Request,
  status: number,
  reason: string | undefined,
  headers: ReadonlyArray<readonly [string, string]>,
  policy: HeaderPolicy,
): number {
  r.status = status;
  r.statusLine = reason !== undefined && reason.length > 0 ? `${status} ${reason}` : undefined;
  // ngx_http_upstream_process_headers: without a cache, not cacheable, so no 304 / 412 from nginx's filter
  r.disableNotModified = true;
  // no Content-Type from the backend: none goes out (no default_type for upstream responses)
  r.contentType = '';
  let length = -1;
  let server = policy.placeholders === true;
  let date = server;
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]!;
    const key = name.toLowerCase();
    if (HOP_BY_HOP.has(key)) continue;
    if (key === 'content-length') {
      if (/^[0-9]{1,18}$/.test(value)) length = Number(value);
      continue;
    }
    if (policy.hide.has(key)) continue;
    switch (key) {
      case 'server':
        server = true;
        break;
      case 'date':
        date = true;
        break;
      case 'content-type':
        r.contentType = value;
        upstreamCharset(r, value);
        continue;
      case 'location': {
        // a Location proxy_redirect rewrote is the response's own (made absolute, in its place);
        // any other passes as a plain header line (ngx_http_upstream_rewrite_location)
        const v = policy.redirect?.(r, value);
        if (v !== undefined) r.location = v;
        else r.headersOut.push([name, value]);
        continue;
      }
      case 'refresh':
        r.headersOut.push([name, policy.redirect?.(r, value) ?? value]);
        continue;
      case 'last-modified': {
        // the response's Last-Modified (ngx_http_upstream_copy_last_modified): expires modified,
        // conditional requests and gzip_proxied see its time; it goes out in the list's order
        const e: [string, string] = [name, value];
        r.headersOut.push(e);
        r.lastModified = e;
        r.lastModifiedTime = parseHttpTime(value);
        continue;
      }
      case 'set-cookie':
        r.headersOut.push([name, policy.cookie ? policy.cookie(r, value) : value]);
        continue;
      case 'etag': {
        // headers_out.etag (ngx_http_upstream_copy_header_line): If-Range, the weak ETag of gzip, the clearing of a special response
        const e: [string, string] = [name, value];
        r.headersOut.push(e);
        r.etag = e;
        continue;
      }
    }
    r.headersOut.push([name, value]);
  }
  // a Server or Date the location passes is the backend's (or none): nginx's own stays out
  if (server && !policy.hide.has('server')) r.ownServer = false;
  if (date && !policy.hide.has('date')) r.ownDate = false;
  r.contentLength = length;
  return length;
}
