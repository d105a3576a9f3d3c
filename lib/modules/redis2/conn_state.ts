/*
 * **beyond** nginx: connection state must not leak between requests
 * through the keepalive cache. nginx caches a connection that ran
 * `SELECT 5` (or AUTH, MULTI, CLIENT REPLY OFF, SUBSCRIBE...) and hands it
 * to the next request, which then reads the wrong database, runs
 * authenticated, or has its commands queued.
 *
 * redis2d tags each connection with the state-changing commands of the
 * request that opened it (their exact bytes), and a request only reuses a
 * connection whose tag equals its own: requests without such commands get
 * only untagged connections (the nginx case), and a location that always
 * runs `auth pw` / `select 5` keeps pooling, since it puts the same state
 * back on every use.
 *
 * The query bytes are read as Redis reads them: RESP arrays
 * (`*N\r\n$len\r\narg...`, what redis2_query sends) and inline commands
 * (`select 5\r\n`, common in raw queries); command names ignore case. Bytes
 * that parse as neither make the whole query the tag, so the connection is
 * only reused by the very same query.
 */

const STATEFUL = new Set([
  'select',
  'auth',
  'hello',
  'reset',
  'client',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  'monitor',
  'readonly',
  'readwrite',
]);

/** the longest name above: longer words are not looked up */
const MAX_NAME = 12;

function nameOf(q: Buffer, start: number, end: number): string | undefined {
  if (end - start > MAX_NAME || end <= start) return undefined;
  return q.toString('latin1', start, end).toLowerCase();
}

/** the integer of a `*N\r\n` / `$N\r\n` header at `pos` (after the type byte): [value, next] */
function header(q: Buffer, pos: number): [number, number] | undefined {
  const eol = q.indexOf('\r\n', pos, 'latin1');
  if (eol < 0 || eol === pos) return undefined;
  const text = q.toString('latin1', pos, eol);
  if (!/^-?\d+$/.test(text)) return undefined;
  return [Number(text), eol + 2];
}

/*
 * Commands that never share a connection with other requests' queries
 * (redis2d_pipeline), beyond the state-setting ones above: they block the
 * connection (and so every request queued behind them), close it, or may
 * answer with other than exactly one reply.
 */
const UNSHAREABLE = new Set([
  'blpop',
  'brpop',
  'brpoplpush',
  'blmove',
  'blmpop',
  'bzpopmin',
  'bzpopmax',
  'bzmpop',
  'xread',
  'xreadgroup',
  'wait',
  'waitaof',
  'quit',
  'shutdown',
  'sync',
  'psync',
  'replconf',
  'debug',
]);

/** true when a command of this name (any case) may share a connection (stateful ones never do) */
export function isShareableName(name: string): boolean {
  if (name.length > MAX_NAME) return true;
  const n = name.toLowerCase();
  return !STATEFUL.has(n) && !UNSHAREABLE.has(n);
}

/** true when a command of this name (any case) would tag its connection */
export function isStatefulName(name: string): boolean {
  return name.length <= MAX_NAME && STATEFUL.has(name.toLowerCase());
}

/** '' when `query` changes no connection state; else the tag (see above) */
export function stateTag(query: Buffer): string {
  const q = query;
  const whole = (): string => q.toString('latin1');
  let tag = '';
  let pos = 0;
  while (pos < q.length) {
    const begin = pos;
    let name: string | undefined;
    if (q[pos] === 0x2a) {
      // *N then N bulk strings
      const h = header(q, pos + 1);
      if (!h || h[0] < 1) return whole();
      let p = h[1];
      for (let k = 0; k < h[0]; k++) {
        if (q[p] !== 0x24) return whole();
        const b = header(q, p + 1);
        if (!b || b[0] < 0 || b[1] + b[0] + 2 > q.length) return whole();
        if (k === 0) name = nameOf(q, b[1], b[1] + b[0]);
        p = b[1] + b[0] + 2;
      }
      pos = p;
    } else {
      // an inline command: its first word, up to the line end
      let eol = q.indexOf(0x0a, pos);
      if (eol < 0) eol = q.length - 1;
      let s = pos;
      while (s <= eol && (q[s] === 0x20 || q[s] === 0x09 || q[s] === 0x0d || q[s] === 0x0a)) s++;
      if (q[s] === 0x22 || q[s] === 0x27) return whole();
      let e = s;
      while (e <= eol && q[e] !== 0x20 && q[e] !== 0x09 && q[e] !== 0x0d && q[e] !== 0x0a) e++;
      name = nameOf(q, s, e);
      pos = eol + 1;
    }
    if (name !== undefined && STATEFUL.has(name)) tag += q.toString('latin1', begin, pos);
  }
  return tag;
}
