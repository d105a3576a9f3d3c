import { atoi } from '../../conf/values.js';
import type { Request } from '../../http/request.js';
import { evalComplexValue } from '../../http/eval.js';
import type { Redis2LocConf } from './conf.js';
import type { ComplexValue } from '../../http/script.js';
import { encodeCommands, numSize } from './resp.js';
import { isShareableName, isStatefulName } from './conn_state.js';

/*
 * ngx_http_redis2_create_request: the bytes to send and the number of
 * replies to expect, from the location's query directives, in the module's
 * order of precedence: redis2_query lines, else a non-empty
 * redis2_literal_raw_query, else redis2_raw_query / redis2_raw_queries.
 */

/**
 * `stateless`: known at config time to change no connection state (conn_state.ts: its tag is '');
 * `shareable`: may also share a connection with other requests' queries (lib/upstream/pipelined_conn.ts)
 */
export type BuiltQuery =
  | { ok: true; query: Buffer; expected: number; stateless: boolean; shareable: boolean }
  | { ok: false; error: string };

/*
 * redis2_query lines compiled once per location (on first use): the RESP
 * bytes of every constant argument (and the `*N` headers) are ready
 * Buffers, and only the variable arguments are encoded per request. A
 * query without variables is one shared Buffer.
 */
interface QueryPlan {
  /** the whole query, when nothing in it varies */
  constant: Buffer | undefined;
  /** literal RESP bytes, or a variable argument to encode as a bulk string */
  pieces: Array<Buffer | ComplexValue>;
  /** bytes of the literal pieces */
  literalSize: number;
  /** every command name is a constant that sets no connection state */
  stateless: boolean;
  /** stateless, and no command blocks or answers other than with exactly one reply */
  shareable: boolean;
}

const plans = new WeakMap<ComplexValue[][], QueryPlan>();

function compilePlan(queries: ComplexValue[][]): QueryPlan {
  const pieces: Array<Buffer | ComplexValue> = [];
  let lit: string[][] = [];
  let literalSize = 0;
  let varying = false;
  const flush = (): void => {
    // literal runs are whole commands or arguments; a header-only run is `*N\r\n`
    if (lit.length === 0) return;
    const b = Buffer.concat(lit.map((x) => Buffer.from(x.join(''), 'latin1')));
    pieces.push(b);
    literalSize += b.length;
    lit = [];
  };
  for (const q of queries) {
    lit.push([`*${q.length}\r\n`]);
    for (const cv of q) {
      if (cv.constant !== undefined) {
        lit.push([`$${cv.constant.length}\r\n`, cv.constant, '\r\n']);
      } else {
        varying = true;
        flush();
        pieces.push(cv);
      }
    }
  }
  flush();
  const stateless = queries.every((q) => q.length > 0 && q[0]!.constant !== undefined && !isStatefulName(q[0]!.constant));
  const shareable = stateless && queries.every((q) => isShareableName(q[0]!.constant!));
  if (!varying) {
    const constant = encodeCommands(queries.map((q) => q.map((cv) => cv.constant!)));
    return { constant, pieces, literalSize, stateless, shareable };
  }
  return { constant: undefined, pieces, literalSize, stateless, shareable };
}

function runPlan(r: Request, plan: QueryPlan): Buffer {
  const pieces = plan.pieces;
  const values: string[] = [];
  let size = plan.literalSize;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (Buffer.isBuffer(p)) continue;
    const v = evalComplexValue(r, p);
    values.push(v);
    size += 1 + numSize(v.length) + 2 + v.length + 2;
  }
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  let k = 0;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (Buffer.isBuffer(p)) {
      off += p.copy(buf, off);
      continue;
    }
    const v = values[k++]!;
    buf[off++] = 36; /* $ */
    off += buf.write(String(v.length), off, 'latin1');
    buf[off++] = 13;
    buf[off++] = 10;
    off += buf.write(v, off, 'latin1');
    buf[off++] = 13;
    buf[off++] = 10;
  }
  if (off !== size) {
    // the module checks the same thing ("redis2_query buffer error")
    throw new Error(`redis2: redis2_query buffer error ${off} != ${size}`);
  }
  return buf;
}


export function buildQuery(r: Request, rlcf: Redis2LocConf): BuiltQuery {
  if (rlcf.queries) {
    let plan = plans.get(rlcf.queries);
    if (plan === undefined) {
      plan = compilePlan(rlcf.queries);
      plans.set(rlcf.queries, plan);
    }
    return {
      ok: true,
      query: plan.constant ?? runPlan(r, plan),
      expected: rlcf.queries.length,
      stateless: plan.stateless,
      shareable: plan.shareable,
    };
  }

  if (rlcf.literalQuery) {
    // the module points at the config's bytes; one Buffer per request is cheap enough
    return { ok: true, query: Buffer.from(rlcf.literalQuery, 'latin1'), expected: 1, stateless: false, shareable: false };
  }

  if (!rlcf.rawQuery) return { ok: false, error: 'no redis2 query specified or the query is empty' };
  const query = evalComplexValue(r, rlcf.rawQuery);
  if (query.length === 0) return { ok: false, error: 'the redis query is empty' };

  let expected = 1;
  if (rlcf.rawQueriesCount) {
    const n = evalComplexValue(r, rlcf.rawQueriesCount);
    if (n.length === 0) return { ok: false, error: 'the N argument to redis2_raw_queries is empty' };
    expected = atoi(n);
    if (expected <= 0) return { ok: false, error: 'the N argument to redis2_raw_queries is invalid' };
  }
  // raw queries are never shared: their reply count is the user's word, not checked
  return { ok: true, query: Buffer.from(query, 'latin1'), expected, stateless: false, shareable: false };
}
