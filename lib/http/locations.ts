import type { CoreLocConf } from './core/module.js';

/*
 * The static location tree (ngx_http_init_static_location_trees), built once
 * at load: exact and prefix locations of one level live in a character trie,
 * so the lookup walks the URI once, whatever the number of locations.
 * Regex locations are kept in config order; named ones in a map.
 */

interface TrieNode {
  next: Map<number, TrieNode> | undefined;
  /** `location = name` ending here */
  exact: CoreLocConf | undefined;
  /** `location name` / `location ^~ name` ending here */
  inclusive: CoreLocConf | undefined;
}

export interface LocationLevel {
  root: TrieNode;
  /** `location = name` by name: the exact match, without walking the trie */
  exact: Map<string, CoreLocConf>;
  /** no exact, prefix or regex locations: nothing to search */
  empty: boolean;
  regex: CoreLocConf[];
  named: Map<string, CoreLocConf>;
}

const levels = new WeakMap<CoreLocConf, LocationLevel>();

const newNode = (): TrieNode => ({ next: undefined, exact: undefined, inclusive: undefined });

/** Build the trees of `clcf` (a server's level) and every nested location. */
export function buildLocationTree(clcf: CoreLocConf): void {
  const level: LocationLevel = { root: newNode(), exact: new Map(), empty: true, regex: [], named: new Map() };
  for (const loc of clcf.locations) {
    if (loc.noname) continue;
    if (loc.named) {
      level.named.set(loc.name, loc);
      continue;
    }
    buildLocationTree(loc);
    level.empty = false;
    if (loc.regex) {
      level.regex.push(loc);
      continue;
    }
    let node = level.root;
    for (let i = 0; i < loc.name.length; i++) {
      const c = loc.name.charCodeAt(i);
      if (!node.next) node.next = new Map();
      let n = node.next.get(c);
      if (!n) {
        n = newNode();
        node.next.set(c, n);
      }
      node = n;
    }
    if (loc.exactMatch) {
      node.exact = loc;
      level.exact.set(loc.name, loc);
    } else node.inclusive = loc;
  }
  levels.set(clcf, level);
}

export function locationLevel(clcf: CoreLocConf): LocationLevel | undefined {
  return levels.get(clcf);
}

/** the outcome of a search: the location and the regex captures of its match */
export interface FoundLocation {
  loc: CoreLocConf;
  captures: RegExpExecArray | undefined;
  /** the URI lacks only the trailing slash of an auto_redirect location: 301 to it */
  redirect: boolean;
}

const enum Rc {
  Declined,
  Ok,
  Again,
  /** nginx's NGX_DONE: the auto_redirect of a location whose name is the URI plus `/` */
  Done,
}

/**
 * ngx_http_core_find_location: exact wins at once; else the longest prefix,
 * whose nested locations are searched next (a nested exact or regex match
 * ends the search); unless that prefix is `^~`, this level's regexes are
 * tried in order; else the longest (deepest) prefix stays.
 * Returns false when nothing matched (the server level then serves).
 */
export function findLocation(parent: CoreLocConf, uri: string, out: FoundLocation): boolean {
  out.redirect = false;
  return find(parent, uri, out) !== Rc.Declined;
}

function find(parent: CoreLocConf, uri: string, out: FoundLocation): Rc {
  const level = levels.get(parent);
  if (!level || level.empty) return Rc.Declined;
  // an exact match wins at once (the trie would end on the same node)
  if (level.exact.size) {
    const exact = level.exact.get(uri);
    if (exact !== undefined) {
      out.loc = exact;
      out.captures = undefined;
      return Rc.Ok;
    }
  }
  let rc = Rc.Declined;
  let noregex = false;
  let node = level.root;
  let best = node.inclusive;
  let i = 0;
  for (; i < uri.length; i++) {
    const n = node.next?.get(uri.charCodeAt(i));
    if (!n) break;
    node = n;
    if (node.inclusive) best = node.inclusive;
  }
  if (i === uri.length) {
    if (node.exact) {
      out.loc = node.exact;
      out.captures = undefined;
      return Rc.Ok;
    }
    // ngx_http_core_find_static_location: the URI is a location's name but its last `/`,
    // and that location (redis2_pass, proxy_pass...) asked for auto_redirect: no nested
    // or regex search, the request is redirected (an exact or prefix match of the URI wins)
    const slash = node.inclusive === undefined ? node.next?.get(0x2f) : undefined;
    if (slash !== undefined && (slash.exact?.autoRedirect || slash.inclusive?.autoRedirect)) {
      out.loc = (slash.exact ?? slash.inclusive)!;
      out.captures = undefined;
      out.redirect = true;
      return Rc.Done;
    }
  }
  if (best) {
    out.loc = best;
    out.captures = undefined;
    noregex = best.noRegex;
    const nested = find(best, uri, out);
    if (nested === Rc.Ok || nested === Rc.Done) return nested;
    rc = Rc.Again;
  }
  if (!noregex) {
    for (const loc of level.regex) {
      const m = loc.regex!.re.exec(uri);
      if (m === null) continue;
      out.loc = loc;
      out.captures = m;
      find(loc, uri, out);
      return Rc.Ok;
    }
  }
  return rc;
}
