import { HTTP_LOC_CONF, HTTP_SRV_CONF, MORE1, TAKE1 } from '../../conf/command.js';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { compileRegex, type CompiledRegex } from '../../conf/regex.js';
import { numSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { httpCoreModule, type CoreSrvConf } from '../../http/core/module.js';
import { defineHttpModule, locConf, type HttpCtx } from '../../http/module.js';
import type { Request } from '../../http/request.js';
import { httpVariables } from '../../http/variables.js';
import { noteNoEffect } from '../noop/module.js';

/*
 * ngx_http_referer_module: `valid_referers` and `$invalid_referer` ("" when
 * the Referer is acceptable, "1" when not). Hosts are matched as nginx's
 * combined hash does: exact names, then `*.example.com` / `.example.com`
 * (head wildcards), then `www.example.*` (tail wildcards); a name may carry
 * a URI prefix (`example.com/pics/`). Then the server's regex names
 * (server_names) against the host, and `~regex` entries (caseless, not
 * anchored) against the Referer after its scheme.
 */

/** the URI a name requires; NO_URI: any */
const NO_URI = '';

interface RefererConf {
  /** names given at this level (undefined: none, inherit) */
  keys: Map<string, string> | undefined;
  /** `*.example.com` / `.example.com` → "example.com"; URI after */
  head: Array<[string, string]>;
  /** `www.example.*` → "www.example."; URI after */
  tail: Array<[string, string]>;
  regex: CompiledRegex[] | undefined;
  serverNameRegex: CompiledRegex[] | undefined;
  noReferer: number;
  blockedReferer: number;
  serverNames: boolean;
  /** the server whose names `server_names` means */
  srv: CoreSrvConf | undefined;
  hashMax: number;
  hashBucket: number;
  /** merged: any rule at all (else every referer is valid) */
  any: boolean;
}

const conf = (cf: Conf): RefererConf => locConf(cf, refererModule);

/**
 * ngx_hash_add_key with NGX_HASH_WILDCARD_KEY: 'ok', 'declined' (a bad
 * wildcard) or 'busy' (the same name twice)
 */
function addKey(c: RefererConf, name: string, uri: string): 'ok' | 'declined' | 'busy' {
  const keys = (c.keys ??= new Map());
  const lc = name.toLowerCase();
  const star = lc.indexOf('*');
  if (star === -1 && !lc.startsWith('.')) {
    if (keys.has(lc)) return 'busy';
    keys.set(lc, uri);
    return 'ok';
  }
  if (lc.startsWith('*.') || lc.startsWith('.')) {
    const base = lc.slice(lc.startsWith('*') ? 2 : 1);
    if (base.length === 0 || base.includes('*')) return 'declined';
    if (c.head.some(([h]) => h === base)) return 'busy';
    // `.example.com` is also the exact name example.com
    if (lc.startsWith('.')) {
      if (keys.has(base)) return 'busy';
      keys.set(base, uri);
    }
    c.head.push([base, uri]);
    return 'ok';
  }
  if (lc.endsWith('.*') && star === lc.length - 1) {
    const prefix = lc.slice(0, -1);
    if (prefix.length <= 1) return 'declined';
    if (c.tail.some(([h]) => h === prefix)) return 'busy';
    c.tail.push([prefix, uri]);
    return 'ok';
  }
  return 'declined';
}

function addReferer(cf: Conf, c: RefererConf, name: string, uri: string): void {
  const rc = addKey(c, name, uri);
  if (rc === 'declined') throw cf.error(`invalid hostname or wildcard "${name}"`);
  if (rc === 'busy') throw cf.error(`conflicting parameter "${name}"`);
}

function validReferers(cf: Conf): string | undefined {
  const c = conf(cf);
  c.keys ??= new Map();
  c.srv = (cf.ctx as HttpCtx).srv[httpCoreModule.index] as CoreSrvConf;
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v.length === 0) throw cf.error(`invalid referer "${v}"`);
    if (v === 'none') c.noReferer = 1;
    else if (v === 'blocked') c.blockedReferer = 1;
    else if (v === 'server_names') c.serverNames = true;
    else if (v.startsWith('~')) {
      if (v.length === 1) throw cf.error(`empty regex in "${v}"`);
      (c.regex ??= []).push(compileRegex(cf, v.slice(1), true));
    } else {
      const slash = v.indexOf('/');
      addReferer(cf, c, slash === -1 ? v : v.slice(0, slash), slash === -1 ? NO_URI : v.slice(slash));
    }
  }
  return undefined;
}

/** ngx_hash_find_combined: the URI a host's entry requires, or undefined when no entry matches */
function findHost(c: RefererConf, host: string): string | undefined {
  const exact = c.keys?.get(host);
  if (exact !== undefined) return exact;
  // the longest head wildcard whose base the host ends with (after a dot)
  let best: [string, string] | undefined;
  for (const e of c.head) {
    if (host.length > e[0].length && host.endsWith(e[0]) && host.charCodeAt(host.length - e[0].length - 1) === 0x2e) {
      if (best === undefined || e[0].length > best[0].length) best = e;
    }
  }
  if (best !== undefined) return best[1];
  for (const e of c.tail) {
    if (host.length > e[0].length && host.startsWith(e[0])) return e[1];
  }
  return undefined;
}

/** ngx_http_referer_variable: true when the request's Referer is not valid */
function invalid(r: Request, c: RefererConf): boolean {
  if (!c.any) return false;
  const ref = r.req.byName.get('referer');
  if (ref === undefined) return c.noReferer !== 1;
  let start = -1;
  if (ref.length >= 11) {
    const scheme = ref.slice(0, 8).toLowerCase();
    if (scheme.startsWith('http://')) start = 7;
    else if (scheme === 'https://') start = 8;
  }
  if (start === -1) return c.blockedReferer !== 1;
  let p = start;
  while (p < ref.length) {
    const ch = ref.charCodeAt(p);
    if (ch === 0x2f || ch === 0x3a) break;
    p++;
  }
  if (p - start > 256) return true;
  const host = ref.slice(start, p).toLowerCase();
  const uri = findHost(c, host);
  if (uri !== undefined) {
    if (uri === NO_URI) return false;
    while (p < ref.length && ref.charCodeAt(p) !== 0x2f) p++;
    return !ref.startsWith(uri, p);
  }
  if (c.serverNameRegex) for (const re of c.serverNameRegex) if (exec(re, host)) return false;
  if (c.regex) {
    const rest = ref.slice(start);
    for (const re of c.regex) if (exec(re, rest)) return false;
  }
  return true;
}

function exec(re: CompiledRegex, s: string): boolean {
  re.re.lastIndex = 0;
  return re.re.test(s);
}

export const refererModule = defineHttpModule<unknown, unknown, RefererConf>({
  name: 'referer',
  preConfiguration(cf) {
    httpVariables(cf).add(cf, 'invalid_referer', 0).get = (r) => (invalid(r, r.locConf[refererModule.index] as RefererConf) ? '1' : '');
  },
  createLocConf: () => ({
    keys: undefined,
    head: [],
    tail: [],
    regex: undefined,
    serverNameRegex: undefined,
    noReferer: UNSET,
    blockedReferer: UNSET,
    serverNames: false,
    srv: undefined,
    hashMax: UNSET,
    hashBucket: UNSET,
    any: false,
  }),
  mergeLocConf(_cf, prev, c) {
    if (c.keys === undefined) {
      // no valid_referers here: everything from the level above (ngx_http_referer_merge_conf)
      c.keys = prev.keys;
      c.head = prev.head;
      c.tail = prev.tail;
      c.regex ??= prev.regex;
      c.serverNameRegex ??= prev.serverNameRegex;
      c.noReferer = c.noReferer === UNSET ? (prev.noReferer === UNSET ? 0 : prev.noReferer) : c.noReferer;
      c.blockedReferer = c.blockedReferer === UNSET ? (prev.blockedReferer === UNSET ? 0 : prev.blockedReferer) : c.blockedReferer;
      c.any = prev.any;
      return;
    }
    if (c.serverNames && c.srv !== undefined) {
      for (const sn of c.srv.serverNames) {
        if (sn.regex !== undefined) (c.serverNameRegex ??= []).push(sn.regex);
        else {
          // ngx_http_add_referer's checks, without a place (nginx reports them from the merge)
          const rc = addKey(c, sn.name, NO_URI);
          if (rc === 'declined') throw new ConfError(`invalid hostname or wildcard "${sn.name}"`);
          if (rc === 'busy') throw new ConfError(`conflicting parameter "${sn.name}"`);
        }
      }
    }
    if ((c.noReferer === 1 || c.blockedReferer === 1) && c.keys.size === 0 && c.head.length === 0 && c.tail.length === 0) {
      throw new ConfError('the "none" or "blocked" referers are specified in the "valid_referers" directive without any valid referer');
    }
    c.regex ??= prev.regex;
    c.serverNameRegex ??= prev.serverNameRegex;
    if (c.noReferer === UNSET) c.noReferer = 0;
    if (c.blockedReferer === UNSET) c.blockedReferer = 0;
    c.any = c.keys.size > 0 || c.head.length > 0 || c.tail.length > 0 || c.regex !== undefined || c.serverNameRegex !== undefined;
  },
  commands: [
    { name: 'valid_referers', ctx: HTTP_SRV_CONF | HTTP_LOC_CONF, args: MORE1, set: validReferers },
    {
      name: 'referer_hash_max_size',
      ctx: HTTP_SRV_CONF | HTTP_LOC_CONF,
      args: TAKE1,
      set(cf, cmd) {
        noteNoEffect(cf.cycle, cmd.name);
        return numSlot(conf, 'hashMax')(cf, cmd);
      },
    },
    {
      name: 'referer_hash_bucket_size',
      ctx: HTTP_SRV_CONF | HTTP_LOC_CONF,
      args: TAKE1,
      set(cf, cmd) {
        noteNoEffect(cf.cycle, cmd.name);
        return numSlot(conf, 'hashBucket')(cf, cmd);
      },
    },
  ],
});
