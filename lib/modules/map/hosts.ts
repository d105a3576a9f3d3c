/*
 * The key table of a map (ngx_hash_keys_arrays_t + ngx_hash_find_combined):
 * exact keys, and with `hostnames` the wildcard forms `*.example.com`,
 * `.example.com` (the domain itself too) and `www.example.*`. Lookups
 * walk label boundaries only, so their cost does not grow with the number
 * of keys.
 */

export interface HostTable<V> {
  exact: Map<string, V>;
  /** head wildcards by the domain after `*.` / `.`; dot = `.example.com` form */
  head: Map<string, { value: V; dot: boolean }>;
  /** tail wildcards by the part before `.*` */
  tail: Map<string, V>;
  /** the names nginx checks conflicts against (exact keys and `.x` domains) */
  names: Set<string>;
}

export function newHostTable<V>(): HostTable<V> {
  return { exact: new Map(), head: new Map(), tail: new Map(), names: new Set() };
}

/** ngx_tolower over a byte string (ASCII letters only) */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return s;
}

/** ngx_hash_add_key: 'ok', 'busy' (conflict) or 'declined' (bad wildcard). */
export function addHostKey<V>(t: HostTable<V>, key: string, value: V, wildcard: boolean): 'ok' | 'busy' | 'declined' {
  if (wildcard) {
    let stars = 0;
    for (let i = 0; i < key.length; i++) {
      const c = key[i];
      if (c === '*' && ++stars > 1) return 'declined';
      if (c === '.' && key[i + 1] === '.') return 'declined';
      if (c === '\0') return 'declined';
    }
    if (key.length > 1 && key[0] === '.') {
      const domain = asciiLower(key.slice(1));
      if (t.names.has(domain)) return 'busy';
      t.names.add(domain);
      if (t.head.has(domain)) return 'busy';
      t.head.set(domain, { value, dot: true });
      return 'ok';
    }
    if (key.length > 2) {
      if (key[0] === '*' && key[1] === '.') {
        const domain = asciiLower(key.slice(2));
        if (t.head.has(domain)) return 'busy';
        t.head.set(domain, { value, dot: false });
        return 'ok';
      }
      if (key[key.length - 2] === '.' && key[key.length - 1] === '*') {
        const prefix = asciiLower(key.slice(0, -2));
        if (t.tail.has(prefix)) return 'busy';
        t.tail.set(prefix, value);
        return 'ok';
      }
    }
    if (stars) return 'declined';
  }
  const k = asciiLower(key);
  if (t.names.has(k)) return 'busy';
  t.names.add(k);
  t.exact.set(k, value);
  return 'ok';
}

/** ngx_hash_find_combined on a lowercased name: exact, then head, then tail wildcards. */
export function findHost<V>(t: HostTable<V>, low: string, wildcard: boolean): V | undefined {
  const v = t.exact.get(low);
  if (v !== undefined || !wildcard) return v;
  if (t.head.size) {
    // the most specific domain first: the name itself (`.x` form), then each parent
    const self = t.head.get(low);
    if (self !== undefined && self.dot) return self.value;
    for (let dot = low.indexOf('.'); dot !== -1; dot = low.indexOf('.', dot + 1)) {
      const h = t.head.get(low.slice(dot + 1));
      if (h !== undefined) return h.value;
    }
  }
  if (t.tail.size) {
    for (let dot = low.lastIndexOf('.'); dot > 0; dot = low.lastIndexOf('.', dot - 1)) {
      if (dot === low.length - 1) continue;
      const tv = t.tail.get(low.slice(0, dot));
      if (tv !== undefined) return tv;
    }
  }
  return undefined;
}
