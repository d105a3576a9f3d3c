import { FLAG, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1, type Command, type CommandHandler } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { flagSlot, mergeValue, numSlot, sizeSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { httpCoreModule, type CoreLocConf, type CoreMainConf, type CoreSrvConf } from '../../http/core/module.js';
import type { H2Conf } from '../../http/h2.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf, mainConf, srvConf, type HttpCtx } from '../../http/module.js';
import { compileComplexValue } from '../../http/script.js';
import { httpVariables } from '../../http/variables.js';
import { noteNoEffect } from '../noop/module.js';

/*
 * ngx_http_v2_module's directives as nginx 1.22.1 has them (docs/behaviour.md
 * §11): contexts, arities, value checks and messages, merge defaults, and
 * the obsolete ones that only warn (`the "http2_idle_timeout" directive is
 * obsolete, use the "keepalive_timeout" directive instead`). What node:http2
 * can apply is hung on each server's CoreSrvConf.http2 after the http block:
 * http2_max_concurrent_streams (SETTINGS and refused streams),
 * http2_body_preread_size (the initial window), and, as nginx 1.22 itself
 * does, keepalive_timeout (idle timeout), keepalive_requests (GOAWAY after
 * that many streams) and large_client_header_buffers (the largest header
 * list). The rest (recv buffer, pool and index sizes, chunk size, server
 * push) is accepted and noted as having no effect. Also $http2.
 */

interface H2Main {
  recvBufferSize: number;
}

interface H2Srv {
  poolSize: number;
  concurrentStreams: number;
  concurrentPushes: number;
  prereadSize: number;
  streamsIndexSize: number;
}

interface H2Loc {
  chunkSize: number;
  pushPreload: number;
  /** `http2_push off` 0, a URI 1, unset -1 */
  push: number;
  pushes: number;
}

const MS = HTTP_MAIN_CONF | HTTP_SRV_CONF;
const MSL = MS | HTTP_LOC_CONF;
/** NGX_HTTP_V2_STATE_BUFFER_SIZE */
const STATE_BUFFER = 16;
const MAX_WINDOW = 2147483647;
const MAX_FRAME_SIZE = 16777215;
/** NGX_MIN_POOL_SIZE (a pool header and two large-block links, aligned) and NGX_POOL_ALIGNMENT on 64-bit Linux */
const MIN_POOL_SIZE = 112;
const POOL_ALIGNMENT = 16;

const main = (cf: Conf): H2Main => mainConf(cf, http2Module);
const srv = (cf: Conf): H2Srv => srvConf(cf, http2Module);
const loc = (cf: Conf): H2Loc => locConf(cf, http2Module);

/** a slot, then nginx's post handler on the value it stored */
function withPost<C>(slot: CommandHandler, get: (cf: Conf) => C, key: keyof C, post: (cf: Conf, v: number) => string | undefined): CommandHandler {
  return (cf, cmd) => {
    const rv = slot(cf, cmd);
    if (typeof rv === 'string') return rv;
    return post(cf, (get(cf) as Record<keyof C, number>)[key]);
  };
}

/** ngx_http_v2_obsolete: a warning naming the directive to use, nothing else */
function obsolete(instead: string): CommandHandler {
  return (cf, cmd) => {
    cf.warn(`the "${cmd.name}" directive is obsolete, use the "${instead}" directive instead`);
    return undefined;
  };
}

/** ngx_http_v2_push: `off`, or URIs (complex values) */
function setPush(cf: Conf): string | undefined {
  const c = loc(cf);
  const v = cf.args[1]!;
  if (v === 'off') {
    if (c.pushes > 0) return '"off" parameter cannot be used with URI';
    if (c.push === 0) return 'is duplicate';
    c.push = 0;
    return undefined;
  }
  if (c.push === 0) return 'URI cannot be used with "off" parameter';
  c.push = 1;
  c.pushes++;
  compileComplexValue(cf, v);
  return undefined;
}

const commands: Command[] = [
  {
    name: 'http2_recv_buffer_size',
    ctx: HTTP_MAIN_CONF,
    args: TAKE1,
    set: withPost(sizeSlot<H2Main>(main, 'recvBufferSize'), main, 'recvBufferSize', (_cf, v) => (v <= 2 * STATE_BUFFER ? 'value is too small' : undefined)),
  },
  {
    name: 'http2_pool_size',
    ctx: MS,
    args: TAKE1,
    set: withPost(sizeSlot<H2Srv>(srv, 'poolSize'), srv, 'poolSize', (cf, v) => {
      if (v < MIN_POOL_SIZE) throw cf.error(`the pool size must be no less than ${MIN_POOL_SIZE}`);
      if (v % POOL_ALIGNMENT) throw cf.error(`the pool size must be a multiple of ${POOL_ALIGNMENT}`);
      return undefined;
    }),
  },
  { name: 'http2_max_concurrent_streams', ctx: MS, args: TAKE1, set: numSlot<H2Srv>(srv, 'concurrentStreams') },
  { name: 'http2_max_concurrent_pushes', ctx: MS, args: TAKE1, set: numSlot<H2Srv>(srv, 'concurrentPushes') },
  { name: 'http2_max_requests', ctx: MS, args: TAKE1, set: obsolete('keepalive_requests') },
  { name: 'http2_max_field_size', ctx: MS, args: TAKE1, set: obsolete('large_client_header_buffers') },
  { name: 'http2_max_header_size', ctx: MS, args: TAKE1, set: obsolete('large_client_header_buffers') },
  {
    name: 'http2_body_preread_size',
    ctx: MS,
    args: TAKE1,
    set: withPost(sizeSlot<H2Srv>(srv, 'prereadSize'), srv, 'prereadSize', (cf, v) => {
      if (v > MAX_WINDOW) throw cf.error(`the maximum body preread buffer size is ${MAX_WINDOW}`);
      return undefined;
    }),
  },
  {
    name: 'http2_streams_index_size',
    ctx: MS,
    args: TAKE1,
    set: withPost(numSlot<H2Srv>(srv, 'streamsIndexSize'), srv, 'streamsIndexSize', (_cf, v) => (v === 0 || (v & (v - 1)) !== 0 ? 'must be a power of two' : undefined)),
  },
  { name: 'http2_recv_timeout', ctx: MS, args: TAKE1, set: obsolete('client_header_timeout') },
  { name: 'http2_idle_timeout', ctx: MS, args: TAKE1, set: obsolete('keepalive_timeout') },
  {
    name: 'http2_chunk_size',
    ctx: MSL,
    args: TAKE1,
    set: withPost(sizeSlot<H2Loc>(loc, 'chunkSize'), loc, 'chunkSize', (cf, v) => {
      if (v === 0) throw cf.error('the http2 chunk size cannot be zero');
      if (v > MAX_FRAME_SIZE) loc(cf).chunkSize = MAX_FRAME_SIZE;
      return undefined;
    }),
  },
  { name: 'http2_push_preload', ctx: MSL, args: FLAG, set: flagSlot<H2Loc>(loc, 'pushPreload') },
  { name: 'http2_push', ctx: MSL, args: TAKE1, set: setPush },
];

/**
 * After the http block: each server's settings for node:http2, and the
 * no-effect notes. Per address, node:http2 takes its default server's
 * (nginx reads them from the connection's server, which is that one
 * unless SNI picked another).
 */
function postConfiguration(cf: Conf): void {
  const ctx = cf.ctx as HttpCtx;
  const cmcf = ctx.main[httpCoreModule.index] as CoreMainConf;
  const h2m = ctx.main[http2Module.index] as H2Main;
  let any = false;
  for (const port of cmcf.ports) for (const addr of port.addrs) if (addr.opt.http2) any = true;
  for (const cscf of cmcf.servers) cscf.http2 = settingsOf(cscf);
  if (!any) return;
  if (h2m.recvBufferSize !== 256 * 1024) noteNoEffect(cf.cycle, 'http2_recv_buffer_size');
  for (const cscf of cmcf.servers) {
    const s = cscf.ctx.srv[http2Module.index] as H2Srv;
    if (s.poolSize !== 4096) noteNoEffect(cf.cycle, 'http2_pool_size');
    if (s.streamsIndexSize !== 32) noteNoEffect(cf.cycle, 'http2_streams_index_size');
    if (s.concurrentPushes !== 10) noteNoEffect(cf.cycle, 'http2_max_concurrent_pushes');
  }
  for (const name of locUsed.get(cf.cycle) ?? []) noteNoEffect(cf.cycle, name);
}

/** location-level directives set to other than their defaults somewhere (noted after the http block) */
const locUsed = new WeakMap<object, Set<string>>();
function usedAt(cf: Conf, name: string): void {
  let set = locUsed.get(cf.cycle);
  if (set === undefined) locUsed.set(cf.cycle, (set = new Set()));
  set.add(name);
}

function settingsOf(cscf: CoreSrvConf): H2Conf {
  const s = cscf.ctx.srv[http2Module.index] as H2Srv;
  const l = cscf.ctx.loc[httpCoreModule.index] as CoreLocConf;
  const lch = cscf.largeClientHeaderBuffers;
  return {
    maxConcurrentStreams: s.concurrentStreams,
    prereadSize: s.prereadSize,
    maxHeaderListSize: lch.num * lch.size,
    idleTimeout: l.keepaliveTimeout,
    maxRequests: l.keepaliveRequests,
  };
}

export const http2Module = defineHttpModule<H2Main, H2Srv, H2Loc>({
  name: 'http2',
  commands,
  preConfiguration(cf) {
    // ngx_http_v2_variable: "h2" on TLS, "h2c" on plain HTTP/2, empty otherwise
    const def = httpVariables(cf).add(cf, 'http2', 0);
    def.get = (r) => (r as HttpRequest).conn.h2 ?? '';
  },
  createMainConf: () => ({ recvBufferSize: UNSET }),
  initMainConf(_cf, c) {
    if (c.recvBufferSize === UNSET) c.recvBufferSize = 256 * 1024;
  },
  createSrvConf: () => ({ poolSize: UNSET, concurrentStreams: UNSET, concurrentPushes: UNSET, prereadSize: UNSET, streamsIndexSize: UNSET }),
  mergeSrvConf(_cf, prev, c) {
    c.poolSize = mergeValue(c.poolSize, prev.poolSize, 4096);
    c.concurrentStreams = mergeValue(c.concurrentStreams, prev.concurrentStreams, 128);
    c.concurrentPushes = mergeValue(c.concurrentPushes, prev.concurrentPushes, 10);
    c.prereadSize = mergeValue(c.prereadSize, prev.prereadSize, 65536);
    c.streamsIndexSize = mergeValue(c.streamsIndexSize, prev.streamsIndexSize, 32);
  },
  createLocConf: () => ({ chunkSize: UNSET, pushPreload: UNSET, push: UNSET, pushes: 0 }),
  mergeLocConf(cf, prev, c) {
    c.chunkSize = mergeValue(c.chunkSize, prev.chunkSize, 8 * 1024);
    c.push = mergeValue(c.push, prev.push, 1);
    if (c.push && c.pushes === 0) c.pushes = prev.pushes;
    c.pushPreload = mergeValue(c.pushPreload, prev.pushPreload, 0);
    if (c.pushes > 0) usedAt(cf, 'http2_push');
    if (c.pushPreload === 1) usedAt(cf, 'http2_push_preload');
    if (c.chunkSize !== 8 * 1024) usedAt(cf, 'http2_chunk_size');
  },
  postConfiguration,
});
