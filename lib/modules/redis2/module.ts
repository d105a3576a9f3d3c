import {
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE2, } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, enumSlot, mergeValue, msecSlot, sizeSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import type { ContentHandler } from '../../http/request.js';
import { PartKind, compileComplexValue, countVariables, type ComplexValue } from '../../http/script.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import { httpCoreModule, setUpstreamHandler } from '../../http/core/module.js';
import { upstreamAddUrl } from '../../upstream/module.js';
import { bindSlot } from '../../upstream/bind.js';
import { createSslConf, mergeSslConf, sslCommands } from '../../upstream/ssl.js';
import {
  NEXT_UPSTREAM_KV_MASKS,
  mergeNextUpstream,
} from '../../upstream/run.js';
import { OUTPUT_JSON, OUTPUT_RAW, PAGE_SIZE, type Redis2LocConf } from './conf.js';
import { redis2ContentHandler } from './handler.js';

/*
 * ngx_http_redis2_module, configuration side: the eleven directives with
 * the module's contexts, arities, conflict checks and merge rules
 * (src/ngx_http_redis2_module.c). The content handler is handler.ts.
 */

export type { Redis2LocConf } from './conf.js';

/** What clcf.handler is set to by redis2_pass: the location's conf goes with the request. */
export const redis2Handler: ContentHandler = (r) => redis2ContentHandler(r, r.locConf[redis2Module.index] as Redis2LocConf);

const conf = (cf: Conf): Redis2LocConf => locConf(cf, redis2Module);

/** beyond: the module silently drops one of two query styles; we say which. */
function warnIgnored(cf: Conf, ignored: string, winner: string): void {
  cf.warn(`"${ignored}" directive is ignored: "${winner}" in the same location takes precedence`);
}

/** Which query style a later raw/literal directive competes with. */
function checkShadow(cf: Conf, rlcf: Redis2LocConf, name: string): void {
  if (rlcf.queries) {
    warnIgnored(cf, name, 'redis2_query');
    return;
  }
  if (name === 'redis2_literal_raw_query') {
    if (rlcf.rawQuery && cf.args[1]) {
      warnIgnored(cf, rlcf.rawQueriesCount ? 'redis2_raw_queries' : 'redis2_raw_query', name);
    }
    return;
  }
  if (rlcf.literalQuery) {
    warnIgnored(cf, name, 'redis2_literal_raw_query');
    return;
  }
  // redis2_raw_queries replaces an earlier raw query without a word
  if (name === 'redis2_raw_queries' && rlcf.rawQuery) {
    warnIgnored(cf, rlcf.rawQueriesCount ? 'redis2_raw_queries' : 'redis2_raw_query', 'redis2_raw_queries');
  }
}

function redis2Query(cf: Conf): string | undefined {
  const rlcf = conf(cf);
  if (rlcf.literalQuery) return 'conflicts with redis2_literal_raw_query';
  if (rlcf.rawQuery) return 'conflicts with redis2_raw_query';
  const args: ComplexValue[] = [];
  for (let i = 1; i < cf.args.length; i++) args.push(compileComplexValue(cf, cf.args[i]!));
  (rlcf.queries ??= []).push(args);
  return undefined;
}

/**
 * A RESP bulk-length marker (`$4` + CR LF at the start of a line) can never
 * be meant as regex capture 4, yet nginx reads it as one and sends an empty
 * string, breaking the protocol (the guide's own `redis2_raw_queries` example
 * fails so under nginx). **beyond**: redis2d keeps such markers literal; every
 * other `$` in a raw query is a variable or capture, as in nginx.
 */
const RESP_LENGTH_MARKER = /(?<=^|\n)\$\d+\r\n/g;

function compileRawQuery(cf: Conf, text: string): ComplexValue {
  RESP_LENGTH_MARKER.lastIndex = 0;
  if (!RESP_LENGTH_MARKER.test(text)) return compileComplexValue(cf, text);
  const parts: ComplexValue['parts'] = [];
  let constant = true;
  let maxCapture = 0;
  let from = 0;
  const add = (segment: string): void => {
    if (!segment) return;
    const cv = compileComplexValue(cf, segment);
    if (cv.constant === undefined) constant = false;
    maxCapture = Math.max(maxCapture, cv.maxCapture);
    parts.push(...cv.parts);
  };
  RESP_LENGTH_MARKER.lastIndex = 0;
  for (let m = RESP_LENGTH_MARKER.exec(text); m; m = RESP_LENGTH_MARKER.exec(text)) {
    add(text.slice(from, m.index));
    parts.push({ kind: PartKind.Literal, text: m[0] });
    from = m.index + m[0].length;
  }
  add(text.slice(from));
  return { source: text, constant: constant ? text : undefined, parts, maxCapture };
}

function redis2RawQuery(cf: Conf, cmd: { name: string }): string | undefined {
  const rlcf = conf(cf);
  if (rlcf.rawQuery) return 'is duplicate';
  checkShadow(cf, rlcf, cmd.name);
  rlcf.rawQuery = compileRawQuery(cf, cf.args[1]!);
  return undefined;
}

function redis2RawQueries(cf: Conf, cmd: { name: string }): string | undefined {
  const rlcf = conf(cf);
  checkShadow(cf, rlcf, cmd.name);
  rlcf.rawQueriesCount = compileComplexValue(cf, cf.args[1]!);
  rlcf.rawQuery = compileRawQuery(cf, cf.args[2]!);
  return undefined;
}

function redis2LiteralRawQuery(cf: Conf, cmd: { name: string }): string | undefined {
  const rlcf = conf(cf);
  if (rlcf.literalQuery !== undefined) return 'is duplicate';
  checkShadow(cf, rlcf, cmd.name);
  rlcf.literalQuery = cf.args[1]!;
  return undefined;
}

function redis2Pass(cf: Conf): string | undefined {
  const rlcf = conf(cf);
  // the module tests only the literal target: `$a` then `$b` is accepted
  if (rlcf.target?.kind === 'upstream') return 'is duplicate';

  setUpstreamHandler(locConf(cf, httpCoreModule), redis2Handler);

  const value = cf.args[1]!;
  if (countVariables(value)) {
    rlcf.target = { kind: 'complex', value: compileComplexValue(cf, value) };
    return undefined;
  }
  rlcf.target = { kind: 'upstream', upstream: upstreamAddUrl(cf, value) };
  return undefined;
}

const LOC = HTTP_LOC_CONF | HTTP_LIF_CONF;
const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const redis2Module = defineHttpModule<unknown, unknown, Redis2LocConf>({
  name: 'redis2',
  createLocConf: () => ({
    queries: undefined,
    rawQuery: undefined,
    rawQueriesCount: undefined,
    literalQuery: undefined,
    target: undefined,
    connectTimeout: UNSET,
    sendTimeout: UNSET,
    readTimeout: UNSET,
    bufferSize: UNSET,
    nextUpstream: 0,
    bind: undefined,
    ssl: createSslConf(),
    output: UNSET,
  }),
  mergeLocConf(cf, prev, c) {
    c.connectTimeout = mergeValue(c.connectTimeout, prev.connectTimeout, 60000);
    c.sendTimeout = mergeValue(c.sendTimeout, prev.sendTimeout, 60000);
    c.readTimeout = mergeValue(c.readTimeout, prev.readTimeout, 60000);
    c.bufferSize = mergeValue(c.bufferSize, prev.bufferSize, PAGE_SIZE);
    c.nextUpstream = mergeNextUpstream(c.nextUpstream, prev.nextUpstream);
    c.output = mergeValue(c.output, prev.output, OUTPUT_RAW);
    // only a literal target is inherited: the module does not merge complex_target
    if (c.target === undefined && prev.target?.kind === 'upstream') c.target = prev.target;
    c.rawQuery ??= prev.rawQuery;
    c.rawQueriesCount ??= prev.rawQueriesCount;
    c.queries ??= prev.queries;
    c.literalQuery ??= prev.literalQuery;
    // beyond: the module never merges (nor accepts) redis2_bind; we inherit it as proxy_bind does
    if (c.bind === undefined) c.bind = prev.bind === undefined ? null : prev.bind;
    mergeSslConf(cf, 'redis2', prev.ssl, c.ssl, c.target !== undefined);
  },
  commands: [
    { name: 'redis2_query', ctx: LOC, args: MORE1, set: redis2Query },
    { name: 'redis2_raw_query', ctx: LOC, args: TAKE1, set: redis2RawQuery },
    { name: 'redis2_raw_queries', ctx: LOC, args: TAKE2, set: redis2RawQueries },
    { name: 'redis2_literal_raw_query', ctx: LOC, args: TAKE1, set: redis2LiteralRawQuery },
    { name: 'redis2_pass', ctx: LOC, args: TAKE1, set: redis2Pass },
    { name: 'redis2_bind', ctx: ALL, args: TAKE1, set: bindSlot(conf, 'bind') },
    { name: 'redis2_connect_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'connectTimeout') },
    { name: 'redis2_send_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'sendTimeout') },
    { name: 'redis2_buffer_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'bufferSize') },
    { name: 'redis2_read_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'readTimeout') },
    {
      name: 'redis2_next_upstream',
      ctx: ALL,
      args: MORE1,
      set: bitmaskSlot(conf, 'nextUpstream', NEXT_UPSTREAM_KV_MASKS),
    },
    // **extension**: replies as JSON (json.ts), README "redis2d_output"
    { name: 'redis2d_output', ctx: ALL, args: TAKE1, set: enumSlot(conf, 'output', { raw: OUTPUT_RAW, json: OUTPUT_JSON }) },
    // **extension**: TLS to Redis, nginx's proxy_ssl_* family (lib/upstream/ssl.ts)
    ...sslCommands('redis2', (cf) => conf(cf).ssl),
  ],
});
