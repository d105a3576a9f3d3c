/*
 * ngx_http_process_user_agent's browser flags, from the first User-Agent
 * header: what keepalive_disable asks (msie6, safari).
 */

/** keepalive_disable's words (nginx's NGX_HTTP_KEEPALIVE_DISABLE_*) */
export const KEEPALIVE_DISABLE_NONE = 0x2;
export const KEEPALIVE_DISABLE_MSIE6 = 0x4;
export const KEEPALIVE_DISABLE_SAFARI = 0x8;

/** MSIE 4.x, 5.x, or 6.x without SV1, and not Opera */
export function uaMsie6(ua: string): boolean {
  if (ua.includes('Opera')) return false;
  const i = ua.indexOf('MSIE ');
  if (i === -1 || !(i + 7 < ua.length) || ua[i + 6] !== '.') return false;
  const v = ua[i + 5];
  if (v === '4' || v === '5') return true;
  return v === '6' && !ua.includes('SV1', i + 8);
}

/** Safari on Mac OS X: neither MSIE nor Opera, Gecko or Chrome */
export function uaSafari(ua: string): boolean {
  if (ua.includes('Opera')) return false;
  const i = ua.indexOf('MSIE ');
  if (i !== -1 && i + 7 < ua.length) return false;
  if (ua.includes('Gecko/') || ua.includes('Chrome/')) return false;
  return ua.includes('Safari/') && ua.includes('Mac OS X');
}

/** headers_in.msie: `MSIE ` with two more bytes after it, and not Opera */
export function uaMsie(ua: string): boolean {
  if (ua.includes('Opera')) return false;
  const i = ua.indexOf('MSIE ');
  return i !== -1 && i + 7 < ua.length;
}

/** ngx_escape_uri(NGX_ESCAPE_REFRESH): controls, space, " ' < > \\ ^ ` { | } ~ DEL and bytes >= 0x80 as %XX */
export function escapeRefresh(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || '"\'<>\\^`{|}~'.includes(s[i]!)) out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += s[i];
  }
  return out;
}
