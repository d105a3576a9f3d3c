import type { Request } from './request.js';

/*
 * ngx_http_auth_basic_user: the user and password of an `Authorization:
 * Basic` header, read once per request; $remote_user and auth_basic use
 * it. Base64 is decoded as nginx's ngx_decode_base64 does (a bad character
 * refuses the whole value; what follows `=` is ignored).
 */

export interface BasicCredentials {
  user: Buffer;
  passwd: Buffer;
}

const cache = new WeakMap<Request, BasicCredentials | null>();

/** ngx_decode_base64 (standard alphabet): undefined for a bad character or length */
export function decodeBase64(s: string): Buffer | undefined {
  let len = 0;
  for (; len < s.length; len++) {
    const c = s.charCodeAt(len);
    if (c === 0x3d) break;
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
    if (!ok) return undefined;
  }
  if (len % 4 === 1) return undefined;
  return Buffer.from(s.slice(0, len), 'base64');
}

function parse(r: Request): BasicCredentials | null {
  const h = r.req.byName.get('authorization');
  if (h === undefined || h.length < 6 || h.slice(0, 6).toLowerCase() !== 'basic ') return null;
  let i = 6;
  while (i < h.length && h.charCodeAt(i) === 0x20) i++;
  if (i === h.length) return null;
  const auth = decodeBase64(h.slice(i));
  if (auth === undefined) return null;
  const colon = auth.indexOf(0x3a);
  if (colon <= 0) return null;
  return { user: auth.subarray(0, colon), passwd: auth.subarray(colon + 1) };
}

/** the request's Basic credentials, or undefined (no header, not Basic, bad base64, no `:` or no user) */
export function basicCredentials(r: Request): BasicCredentials | undefined {
  let c = cache.get(r);
  if (c === undefined) {
    c = parse(r);
    cache.set(r, c);
  }
  return c ?? undefined;
}
