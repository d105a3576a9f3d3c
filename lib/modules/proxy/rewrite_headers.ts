import { evalComplexValue } from '../../http/eval.js';
import { regexExec } from '../../http/regex_exec.js';
import type { Request } from '../../http/request.js';
import type { ComplexValue } from '../../http/script.js';
import { PartKind } from '../../http/script.js';
import type { ProxyLocConf, RewriteRule } from './conf.js';
import { applyCookieFlags } from './cookie_flags.js';

/*
 * proxy_redirect (Location and Refresh) and proxy_cookie_domain /
 * proxy_cookie_path (Set-Cookie): the first rule that matches rewrites the
 * value (ngx_http_proxy_rewrite_*). A plain rule replaces a prefix, a
 * regex rule the whole value with its captures in the replacement.
 */

const literal = (text: string): ComplexValue => ({ source: text, constant: text, parts: [{ kind: PartKind.Literal, text }], maxCapture: 0 });

/** the rules of a location, `proxy_redirect default` expanded (nginx: the URL → the location) */
function redirectRules(plcf: ProxyLocConf): RewriteRule[] {
  const rules = plcf.redirect ? [...plcf.redirect] : [];
  const t = plcf.target;
  if (plcf.redirectDefault && t?.kind === 'upstream') {
    // without a URI part: `http://host/` → `/`
    const rule: RewriteRule =
      t.uri !== undefined
        ? { from: literal(plcf.url), regex: undefined, to: literal(plcf.location) }
        : { from: literal(`${plcf.url}/`), regex: undefined, to: literal('/') };
    rules.unshift(rule);
  }
  return rules;
}

function rewriteValue(r: Request, rules: RewriteRule[], value: string, caseless: boolean): string | undefined {
  for (const rule of rules) {
    if (rule.regex !== undefined) {
      if (regexExec(r, rule.regex, value)) return evalComplexValue(r, rule.to);
      continue;
    }
    const from = evalComplexValue(r, rule.from!);
    const head = value.slice(0, from.length);
    if (from.length <= value.length && (caseless ? head.toLowerCase() === from.toLowerCase() : head === from)) {
      return evalComplexValue(r, rule.to) + value.slice(from.length);
    }
  }
  return undefined;
}

/** the Location / Refresh rewriter of a location, undefined for `proxy_redirect off` or no rules */
export function redirectRewriter(plcf: ProxyLocConf): ((r: Request, value: string) => string | undefined) | undefined {
  if (plcf.redirect === null) return undefined;
  const rules = redirectRules(plcf);
  if (rules.length === 0) return undefined;
  return (r, value) => {
    // Refresh: `5; url=http://...` (the part after `url=`)
    const m = /^(.*?url=)(.*)$/is.exec(value);
    if (m !== null && !value.startsWith('http') && !value.startsWith('/')) {
      const v = rewriteValue(r, rules, m[2]!, false);
      return v === undefined ? undefined : m[1]! + v;
    }
    return rewriteValue(r, rules, value, false);
  };
}

/* one attribute of a Set-Cookie value: its value's start and end, or undefined */
function attribute(cookie: string, name: string): [number, number] | undefined {
  const re = new RegExp(`;\\s*${name}=`, 'i');
  const m = re.exec(cookie);
  if (m === null) return undefined;
  const start = m.index + m[0].length;
  let end = cookie.indexOf(';', start);
  if (end === -1) end = cookie.length;
  return [start, end];
}

/** the Set-Cookie rewriter of a location (domain, path, then flags), undefined when none is set */
export function cookieRewriter(plcf: ProxyLocConf): ((r: Request, value: string) => string) | undefined {
  const domain = plcf.cookieDomain;
  const path = plcf.cookiePath;
  const flags = plcf.cookieFlags;
  if (!domain && !path && !flags) return undefined;
  return (r, value) => {
    let out = value;
    if (domain) {
      const at = attribute(out, 'domain');
      if (at !== undefined) {
        const v = out.slice(at[0], at[1]);
        const dot = v.startsWith('.');
        const nv = rewriteValue(r, domain.map((d) => stripDot(d)), dot ? v.slice(1) : v, true);
        // the leading dot stays where it was (nginx compares and replaces the name after it)
        if (nv !== undefined) out = out.slice(0, at[0]) + (dot ? '.' : '') + nv + out.slice(at[1]);
      }
    }
    if (path) {
      const at = attribute(out, 'path');
      if (at !== undefined) {
        const nv = rewriteValue(r, path, out.slice(at[0], at[1]), false);
        if (nv !== undefined) out = out.slice(0, at[0]) + nv + out.slice(at[1]);
      }
    }
    // proxy_cookie_flags last, as nginx applies them after the values' rewrites
    if (flags) out = applyCookieFlags(r, flags, out);
    return out;
  };
}

/* a domain rule's leading dot does not count (nginx compares the names without it) */
function stripDot(rule: RewriteRule): RewriteRule {
  const c = rule.from?.constant;
  if (c !== undefined && c.startsWith('.')) return { ...rule, from: literal(c.slice(1)) };
  return rule;
}
