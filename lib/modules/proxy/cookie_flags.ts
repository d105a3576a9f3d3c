import type { Conf } from '../../conf/parser.js';
import { evalComplexValue } from '../../http/eval.js';
import { httpRegexCompile, regexExec, type HttpRegex } from '../../http/regex_exec.js';
import type { Request } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';

/*
 * proxy_cookie_flags COOKIE|~REGEX|off [FLAG ...] (ngx_http_proxy_cookie_flags,
 * ngx_http_proxy_rewrite_cookie_flags): the first rule naming the cookie
 * (case-insensitive, or a caseless regex) sets or clears Secure, HttpOnly
 * and SameSite; the cookie is then written back as nginx rebuilds it
 * (attributes trimmed, joined by "; ").
 */

export interface CookieFlagsRule {
  name: ComplexValue | undefined;
  regex: HttpRegex | undefined;
  flags: ComplexValue[];
}

const SECURE_ON = 0x4;
const SECURE_OFF = 0x8;
const HTTPONLY_ON = 0x20;
const HTTPONLY_OFF = 0x40;
const SAMESITE_STRICT = 0x100;
const SAMESITE_LAX = 0x200;
const SAMESITE_NONE = 0x400;
const SAMESITE_OFF = 0x800;

const MASKS: Record<string, number> = {
  secure: SECURE_ON,
  nosecure: SECURE_OFF,
  httponly: HTTPONLY_ON,
  nohttponly: HTTPONLY_OFF,
  'samesite=strict': SAMESITE_STRICT,
  'samesite=lax': SAMESITE_LAX,
  'samesite=none': SAMESITE_NONE,
  nosamesite: SAMESITE_OFF,
};

/** the directive: `off`, or a rule appended; null in `holder.cookieFlags` is off */
export function cookieFlagsDirective(cf: Conf, holder: { cookieFlags: CookieFlagsRule[] | null | undefined }): string | undefined {
  if (holder.cookieFlags === null) return 'is duplicate';
  const args = cf.args;
  if (args.length === 2) {
    if (args[1] === 'off') {
      if (holder.cookieFlags !== undefined) return 'is duplicate';
      holder.cookieFlags = null;
      return undefined;
    }
    throw cf.error(`invalid parameter "${args[1]}"`);
  }
  const list = (holder.cookieFlags ??= []);
  const first = args[1]!;
  const rule: CookieFlagsRule = { name: undefined, regex: undefined, flags: [] };
  if (first.startsWith('~')) rule.regex = httpRegexCompile(cf, first.slice(1), true);
  else rule.name = compileComplexValue(cf, first);
  for (let i = 2; i < args.length; i++) rule.flags.push(compileComplexValue(cf, args[i]!));
  list.push(rule);
  return undefined;
}

type Attr = { key: string | undefined; value: string | undefined };

/** ngx_http_proxy_parse_cookie: `;`-separated name[=value] pairs, spaces around trimmed */
function parseCookie(v: string): Attr[] {
  const out: Attr[] = [];
  let start = 0;
  for (;;) {
    let last = v.indexOf(';', start);
    if (last === -1) last = v.length;
    while (start < last && v.charCodeAt(start) === 0x20) start++;
    let p = start;
    while (p < last && v.charCodeAt(p) !== 0x3d) p++;
    const key = v.slice(start, p).replace(/ +$/, '');
    let value: string | undefined;
    if (p < last) {
      p++;
      while (p < last && v.charCodeAt(p) === 0x20) p++;
      value = v.slice(p, last).replace(/ +$/, '');
    }
    out.push({ key, value });
    if (last === v.length) break;
    start = last + 1;
  }
  return out;
}

/** the Set-Cookie value with the first matching rule's flags applied, or the value as it was */
export function applyCookieFlags(r: Request, rules: CookieFlagsRule[], cookie: string): string {
  const attrs = parseCookie(cookie);
  if (attrs[0]!.value === undefined) return cookie;
  const name = attrs[0]!.key!;
  let rule: CookieFlagsRule | undefined;
  for (const rl of rules) {
    if (rl.regex !== undefined) {
      if (regexExec(r, rl.regex, name)) {
        rule = rl;
        break;
      }
      continue;
    }
    if (evalComplexValue(r, rl.name!).toLowerCase() === name.toLowerCase()) {
      rule = rl;
      break;
    }
  }
  if (rule === undefined) return cookie;
  let f = 0;
  for (const cv of rule.flags) {
    const m = MASKS[evalComplexValue(r, cv).toLowerCase()];
    if (m !== undefined) f |= m;
  }
  if (f === 0) return cookie;
  editFlags(attrs, f);
  let out = '';
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i]!;
    if (a.key === undefined) continue;
    if (i > 0) out += '; ';
    out += a.value === undefined ? a.key : `${a.key}=${a.value}`;
  }
  return out;
}

/** ngx_http_proxy_edit_cookie_flags */
function editFlags(attrs: Attr[], flags: number): void {
  for (let i = 1; i < attrs.length; i++) {
    const a = attrs[i]!;
    const k = a.key?.toLowerCase();
    if (k === 'secure') {
      if (flags & SECURE_ON) flags &= ~SECURE_ON;
      else if (flags & SECURE_OFF) a.key = undefined;
    } else if (k === 'httponly') {
      if (flags & HTTPONLY_ON) flags &= ~HTTPONLY_ON;
      else if (flags & HTTPONLY_OFF) a.key = undefined;
    } else if (k === 'samesite') {
      const v = a.value?.toLowerCase();
      const want = flags & SAMESITE_STRICT ? 'Strict' : flags & SAMESITE_LAX ? 'Lax' : flags & SAMESITE_NONE ? 'None' : undefined;
      if (want !== undefined) {
        flags &= ~(want === 'Strict' ? SAMESITE_STRICT : want === 'Lax' ? SAMESITE_LAX : SAMESITE_NONE);
        if (v !== want.toLowerCase()) {
          a.key = 'SameSite';
          a.value = want;
        }
      } else if (flags & SAMESITE_OFF) a.key = undefined;
    }
  }
  if (flags & SECURE_ON) attrs.push({ key: 'Secure', value: undefined });
  if (flags & HTTPONLY_ON) attrs.push({ key: 'HttpOnly', value: undefined });
  if (flags & (SAMESITE_STRICT | SAMESITE_LAX | SAMESITE_NONE)) {
    attrs.push({ key: 'SameSite', value: flags & SAMESITE_STRICT ? 'Strict' : flags & SAMESITE_LAX ? 'Lax' : 'None' });
  }
}
