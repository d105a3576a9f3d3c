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

/** Build the trees of `clcf` (a server's level) and every nested location (without recursion: nesting can be deep). */
export function buildLocationTree(top: CoreLocConf): void {
  const todo = [top];
  while (todo.length) {
    const clcf = todo.pop()!;
    const level: LocationLevel = { root: newNode(), exact: new Map(), empty: true, regex: [], named: new Map() };
    for (const loc of clcf.locations) {
      if (loc.noname) continue;
      if (loc.named) {
        level.named.set(loc.name, loc);
        continue;
      }
      todo.push(loc);
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

/*
 * The levels whose regexes are still to be tried once the deeper search
 * returns (nginx recurses; nested locations can be thousands deep, so the
 * pending levels are kept here instead of on the call stack). find() is
 * never re-entered while it runs.
 */
const pendingLevels: LocationLevel[] = [];
const pendingNoRegex: boolean[] = [];

/** the first regex of the level that matches `uri` (sets out), else undefined */
function matchRegex(level: LocationLevel, uri: string, out: FoundLocation): CoreLocConf | undefined {
  for (const loc of level.regex) {
    const m = loc.regex!.re.exec(uri);
    if (m === null) continue;
    out.loc = loc;
    out.captures = m;
    return loc;
  }
  return undefined;
}

function find(parent: CoreLocConf, uri: string, out: FoundLocation): Rc {
  let depth = 0;
  let cur = parent;
  /** a regex matched: the search is Ok whatever its nested levels find */
  let forced = false;
  let rc: Rc;
  for (;;) {
    // down: the longest prefix of each level, as deep as they nest
    for (;;) {
      const level = levels.get(cur);
      if (!level || level.empty) {
        rc = Rc.Declined;
        break;
      }
      // an exact match wins at once (the trie would end on the same node)
      if (level.exact.size) {
        const exact = level.exact.get(uri);
        if (exact !== undefined) {
          out.loc = exact;
          out.captures = undefined;
          rc = Rc.Ok;
          break;
        }
      }
      let node = level.root;
      let best = node.inclusive;
      let i = 0;
      for (; i < uri.length; i++) {
        const n = node.next?.get(uri.charCodeAt(i));
        if (!n) break;
        node = n;
        if (node.inclusive) best = node.inclusive;
      }
      if (i === uri.length && node.exact) {
        out.loc = node.exact;
        out.captures = undefined;
        rc = Rc.Ok;
        break;
      }
      if (i === uri.length) {
        // ngx_http_core_find_static_location: the URI is a location's name but its last `/`,
        // and that location (redis2_pass, proxy_pass...) asked for auto_redirect: no nested
        // or regex search, the request is redirected (an exact or prefix match of the URI wins)
        const slash = node.inclusive === undefined ? node.next?.get(0x2f) : undefined;
        if (slash !== undefined && (slash.exact?.autoRedirect || slash.inclusive?.autoRedirect)) {
          out.loc = (slash.exact ?? slash.inclusive)!;
          out.captures = undefined;
          out.redirect = true;
          rc = Rc.Done;
          break;
        }
      }
      if (best) {
        out.loc = best;
        out.captures = undefined;
        pendingLevels[depth] = level;
        pendingNoRegex[depth++] = best.noRegex;
        cur = best;
        continue;
      }
      const re = matchRegex(level, uri, out);
      if (re !== undefined) {
        // a regex location: its own nested locations are searched, the outcome is Ok regardless
        forced = true;
        depth = 0;
        cur = re;
        continue;
      }
      rc = Rc.Declined;
      break;
    }
    // up: a level whose prefix search found nothing exact tries its regexes
    let again = false;
    while (depth > 0) {
      if (rc === Rc.Ok || rc === Rc.Done) {
        depth = 0;
        break;
      }
      const level = pendingLevels[--depth]!;
      rc = Rc.Again;
      if (!pendingNoRegex[depth]) {
        const re = matchRegex(level, uri, out);
        if (re !== undefined) {
          forced = true;
          depth = 0;
          cur = re;
          again = true;
          break;
        }
      }
    }
    if (!again) break;
  }
  pendingLevels.length = 0;
  return forced ? Rc.Ok : rc;
}
