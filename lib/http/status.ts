/*
 * nginx's status lines (ngx_http_header_filter_module) and its built-in
 * error pages (ngx_http_special_response), byte for byte. The footer names
 * the server the way the `Server:` header does (SERVER_TOKEN / PROGRAM).
 */

/** the reason phrase nginx sends after the code; undefined = code and a space only */
const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content',
  301: 'Moved Permanently', 302: 'Moved Temporarily', 303: 'See Other', 304: 'Not Modified',
  307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden',
  404: 'Not Found', 405: 'Not Allowed', 406: 'Not Acceptable', 408: 'Request Time-out',
  409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed',
  413: 'Request Entity Too Large', 414: 'Request-URI Too Large', 415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable', 421: 'Misdirected Request', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out', 505: 'HTTP Version Not Supported',
  507: 'Insufficient Storage',
};

/** `200 OK`; codes nginx has no text for come out as `299 ` (code, space) */
export function statusLine(status: number): string {
  const reason = REASONS[status];
  if (reason === undefined) return `${String(status).padStart(3, '0')} `;
  return `${status} ${reason}`;
}

/** error page titles where they differ from the status line */
const TITLES: Record<number, string> = {
  302: '302 Found',
  401: '401 Authorization Required',
  494: '400 Request Header Or Cookie Too Large',
  495: '400 The SSL certificate error',
  496: '400 No required SSL certificate was sent',
  497: '400 The plain HTTP request was sent to HTTPS port',
  498: '404 Not Found',
};

/** codes that have a built-in page */
const PAGES = new Set([
  301, 302, 303, 307, 308, 400, 401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 421,
  429, 494, 495, 496, 497, 498, 500, 501, 502, 503, 504, 505, 507,
]);

const pageCache = new Map<number, string>();

/** the page head (without the tail), or '' when nginx sends an empty body */
export function errorPageHead(status: number): string {
  if (!PAGES.has(status)) return '';
  let page = pageCache.get(status);
  if (page === undefined) {
    const title = TITLES[status] ?? statusLine(status);
    // 494-497 are 400s with their reason under the heading (ngx_http_error_494_page...)
    const h1 = status >= 494 && status <= 497 ? `400 Bad Request</h1></center>\r\n<center>${title.slice(4)}</center>` : `${title}</h1></center>`;
    page = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${h1}\r\n`;
    pageCache.set(status, page);
  }
  return page;
}

/** `<hr><center>NAME</center>` and the closing tags */
export function errorPageTail(name: string): string {
  return `<hr><center>${name}</center>\r\n</body>\r\n</html>\r\n`;
}

/**
 * ngx_http_process_user_agent: the browsers whose friendly error pages the
 * padding defeats — `MSIE ` with at least two bytes after it (not Opera),
 * else `Chrome/` (not Gecko/)
 */
export function wantsPadding(ua: string): boolean {
  if (ua.includes('Opera')) return false;
  const m = ua.indexOf('MSIE ');
  if (m !== -1 && m + 7 < ua.length) return true;
  return !ua.includes('Gecko/') && ua.includes('Chrome/');
}

export const MSIE_PADDING = '<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n'.repeat(6);

/** statuses add_header applies to without `always` */
export function addHeaderApplies(status: number): boolean {
  switch (status) {
    case 200: case 201: case 204: case 206: case 301: case 302: case 303: case 304: case 307: case 308:
      return true;
    default:
      return false;
  }
}
