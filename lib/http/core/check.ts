import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import type { CoreLocConf, CoreMainConf } from './module.js';
import type { ConfAddr } from './listen.js';

/*
 * Checks nginx makes after the http block is parsed and merged: duplicate
 * static locations (ngx_http_join_exact_locations) and server names shared
 * by servers on one address (ngx_http_server_names). Neither names a
 * file:line of its own, as in nginx: the location message embeds it.
 */

/** ngx_filename_cmp on a case-sensitive filesystem: '/' sorts lowest. */
function filenameCmp(a: string, b: string): number {
  const n = Math.min(a.length, b.length) + 1;
  for (let i = 0; i < n; i++) {
    const c1 = i < a.length ? a.charCodeAt(i) : 0;
    const c2 = i < b.length ? b.charCodeAt(i) : 0;
    if (c1 === c2) {
      if (c1) continue;
      return 0;
    }
    if (c1 === 0 || c2 === 0) return c1 - c2;
    return (c1 === 0x2f ? 0 : c1) - (c2 === 0x2f ? 0 : c2);
  }
  return 0;
}

const isStatic = (l: CoreLocConf): boolean => !l.regex && !l.named && !l.noname;

/**
 * ngx_http_init_static_location_trees: children first, then this level's
 * static locations sorted by name (exact before prefix of the same name);
 * two exact or two prefix locations with one name are an error naming the
 * later one.
 */
export function checkLocations(top: CoreLocConf): void {
  // each level's nested levels first, then the level itself (as nginx recurses), without recursion
  const stack: Array<{ clcf: CoreLocConf; sorted: CoreLocConf[] | undefined; next: number }> = [{ clcf: top, sorted: undefined, next: 0 }];
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.sorted === undefined) f.sorted = sortedStatics(f.clcf);
    if (f.next < f.sorted.length) {
      stack.push({ clcf: f.sorted[f.next++]!, sorted: undefined, next: 0 });
      continue;
    }
    stack.pop();
    const sorted = f.sorted;
    for (let i = 1; i < sorted.length; i++) {
      const a = sorted[i - 1]!;
      const b = sorted[i]!;
      if (a.name === b.name && a.exactMatch === b.exactMatch) {
        throw new ConfError(`duplicate location "${b.name}" in ${b.file}:${b.line}`);
      }
    }
  }
}

function sortedStatics(clcf: CoreLocConf): CoreLocConf[] {
  return clcf.locations
    .filter(isStatic)
    .map((l, i) => ({ l, i }))
    .sort((x, y) => {
      const rc = filenameCmp(x.l.name, y.l.name);
      if (rc !== 0) return rc;
      if (x.l.exactMatch !== y.l.exactMatch) return x.l.exactMatch ? -1 : 1;
      return x.i - y.i;
    })
    .map((x) => x.l);
}

/** ngx_hash_add_key(NGX_HASH_WILDCARD_KEY) for one name: its conflict keys, or undefined if invalid. */
function wildcardKeys(name: string): { exact?: string; head?: string; tail?: string } | undefined {
  let stars = 0;
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '*' && ++stars > 1) return undefined;
    if (name[i] === '.' && name[i + 1] === '.') return undefined;
    if (name[i] === '\0') return undefined;
  }
  if (name.length > 1 && name[0] === '.') return { exact: name.slice(1), head: name.slice(1) };
  if (name.length > 2) {
    if (name.startsWith('*.')) return { head: name.slice(2) };
    if (name.endsWith('.*')) return { tail: name.slice(0, -1) };
  }
  if (stars) return undefined;
  return { exact: name };
}

/**
 * ngx_http_optimize_servers' name pass: for each address served by several
 * servers, a name (or wildcard) already taken is `[warn] conflicting server
 * name`, an invalid wildcard an `[emerg]`.
 */
export function checkServerNames(cf: Conf, cmcf: CoreMainConf): void {
  for (const port of cmcf.ports) {
    for (const addr of sortAddrs(port.addrs)) {
      if (addr.servers.length < 2) continue;
      const exact = new Set<string>();
      const head = new Set<string>();
      const tail = new Set<string>();
      for (const s of addr.servers) {
        for (const sn of s.serverNames) {
          if (sn.regex) continue;
          const k = wildcardKeys(sn.name);
          if (!k) throw new ConfError(`invalid server name or wildcard "${sn.name}" on ${addr.opt.text}`);
          let busy = false;
          if (k.exact !== undefined) {
            if (exact.has(k.exact)) busy = true;
            else exact.add(k.exact);
          }
          if (!busy && k.head !== undefined) {
            if (head.has(k.head)) busy = true;
            else head.add(k.head);
          }
          if (!busy && k.tail !== undefined) {
            if (tail.has(k.tail)) busy = true;
            else tail.add(k.tail);
          }
          if (busy) {
            cf.cycle.warnings.push({
              level: 'warn',
              text: `conflicting server name "${sn.name}" on ${addr.opt.text}, ignored`,
            });
          }
        }
      }
    }
  }
}

/** ngx_http_cmp_conf_addrs: explicitly bound addresses first, the wildcard last (stable). */
function sortAddrs(addrs: ConfAddr[]): ConfAddr[] {
  const rank = (a: ConfAddr): number => (a.opt.wildcard ? 2 : a.opt.bind ? 0 : 1);
  return addrs
    .map((a, i) => ({ a, i }))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
    .map((x) => x.a);
}
