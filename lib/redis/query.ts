import { atoi } from '../conf/values.js';
import type { Request } from '../http/request.js';
import { evalComplexValue } from '../http/eval.js';
import type { Redis2LocConf } from '../modules/redis2.js';
import { encodeCommands } from './resp.js';

/*
 * ngx_http_redis2_create_request: the bytes to send and the number of
 * replies to expect, from the location's query directives, in the module's
 * order of precedence: redis2_query lines, else a non-empty
 * redis2_literal_raw_query, else redis2_raw_query / redis2_raw_queries.
 */

export type BuiltQuery = { ok: true; query: Buffer; expected: number } | { ok: false; error: string };

export function buildQuery(r: Request, rlcf: Redis2LocConf): BuiltQuery {
  if (rlcf.queries) {
    const cmds: string[][] = [];
    for (const q of rlcf.queries) {
      const args: string[] = [];
      for (const cv of q) args.push(evalComplexValue(r, cv));
      cmds.push(args);
    }
    return { ok: true, query: encodeCommands(cmds), expected: cmds.length };
  }

  if (rlcf.literalQuery) {
    // the module points at the config's bytes; one Buffer per request is cheap enough
    return { ok: true, query: Buffer.from(rlcf.literalQuery, 'latin1'), expected: 1 };
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
  return { ok: true, query: Buffer.from(query, 'latin1'), expected };
}
