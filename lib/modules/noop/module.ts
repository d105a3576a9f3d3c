import {
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  TAKE1,
  TAKE12,
  TAKE1234,
  TAKE2, type Command,
  type CommandHandler,
} from '../../conf/command.js';
import type { Conf, Cycle } from '../../conf/parser.js';
import { atoi, parseFlag, parseMsec, parseSec, parseSize } from '../../conf/values.js';
import type { HttpCtx } from '../../http/module.js';
import { defineHttpModule } from '../../http/module.js';

/*
 * Directives redis2d accepts with no effect (docs/behaviour.md §3), so distribution
 * configs load unchanged. Each keeps nginx's context, arity and value checks
 * (a typo is still an error, as under nginx); the names used are recorded so
 * the server can log one [warn] per name at startup.
 */

type Level = 'main' | 'srv' | 'loc';

/** how the value is judged: nginx's slot for the directive */
type Kind =
  | { t: 'flag' | 'num' | 'size' | 'msec' | 'sec' | 'str' | 'bufs' | 'any' }
  | { t: 'enum'; values: string[] }
  | { t: 'bitmask'; values: string[] }
  | { t: 'bounds'; min: number; max: number }
  | { t: 'custom'; set: CommandHandler };

interface Noop {
  name: string;
  ctx: number;
  args: number;
  level: Level;
  kind: Kind;
}

const MSL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

const STATE_KEY = 'noop.used';

/** Names of the no-effect directives this config uses, in first-use order. */
export function noEffectDirectives(cycle: Cycle): string[] {
  return [...((cycle.state.get(STATE_KEY) as Set<string> | undefined) ?? [])];
}

/** Record a directive (or listen parameter) of another module that is accepted without effect. */
export function noteNoEffect(cycle: Cycle, name: string): void {
  let used = cycle.state.get(STATE_KEY) as Set<string> | undefined;
  if (!used) cycle.state.set(STATE_KEY, (used = new Set()));
  used.add(name);
}

/** Values already set, per conf level object (for `is duplicate`). */
const seenAt = new WeakMap<object, Set<string>>();

function levelObject(cf: Conf, level: Level): object {
  const ctx = cf.ctx as HttpCtx;
  return ctx[level];
}

/** ngx_http_core_set_aio: Debian's build has threads but no file AIO. */
function setAio(cf: Conf): string | undefined {
  const v = cf.args[1]!;
  if (v === 'off' || v === 'threads' || v.startsWith('threads=')) return undefined;
  if (v === 'on') throw cf.error('"aio on" is unsupported on this platform');
  return 'invalid value';
}

function setDirectio(cf: Conf): string | undefined {
  const v = cf.args[1]!;
  if (v === 'off') return undefined;
  return parseSize(v) === -1 ? 'invalid value' : undefined;
}

/** ngx_http_core_open_file_cache */
function setOpenFileCache(cf: Conf): string | undefined {
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v.startsWith('max=')) {
      const n = atoi(v.slice(4));
      if (n === -1 || n === 0) throw cf.error(`invalid "open_file_cache" parameter "${v}"`);
      continue;
    }
    if (v.startsWith('inactive=')) {
      if (parseSec(v.slice(9)) === -1) throw cf.error(`invalid "open_file_cache" parameter "${v}"`);
      continue;
    }
    if (v === 'off') continue;
    throw cf.error(`invalid "open_file_cache" parameter "${v}"`);
  }
  return undefined;
}

/** ngx_http_log_open_file_cache: `off`, or max=N [inactive=T] [min_uses=N] [valid=T] */
function setOpenLogFileCache(cf: Conf): string | undefined {
  let off = false;
  let max = 0;
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    let ok = true;
    if (v.startsWith('max=')) ok = (max = atoi(v.slice(4))) !== -1;
    else if (v.startsWith('inactive=')) ok = parseSec(v.slice(9)) !== -1;
    else if (v.startsWith('min_uses=')) ok = atoi(v.slice(9)) !== -1;
    else if (v.startsWith('valid=')) ok = parseSec(v.slice(6)) !== -1;
    else if (v === 'off') off = true;
    else ok = false;
    if (!ok) throw cf.error(`invalid "open_log_file_cache" parameter "${v}"`);
  }
  if (!off && max === 0) throw cf.error('"open_log_file_cache" must have "max" parameter');
  return undefined;
}

/** ngx_http_core_pool_size: NGX_MIN_POOL_SIZE and NGX_POOL_ALIGNMENT of a 64-bit build */
function setPoolSize(cf: Conf): string | undefined {
  const n = parseSize(cf.args[1]!);
  if (n === -1) return 'invalid value';
  if (n < 112) throw cf.error('the pool size must be no less than 112');
  if (n % 16 !== 0) throw cf.error('the pool size must be a multiple of 16');
  return undefined;
}

/** ngx_http_core_lowat_check (and the proxy/fastcgi ones): Linux has no SO_SNDLOWAT in nginx's build, so nginx itself ignores it */
function setSendLowat(cf: Conf): string | undefined {
  if (parseSize(cf.args[1]!) === -1) return 'invalid value';
  cf.warn(`"${cf.args[0]}" is not supported, ignored`);
  return undefined;
}

const TABLE: Noop[] = [
  { name: 'sendfile', ctx: MSL | HTTP_LIF_CONF, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'tcp_nopush', ctx: MSL, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'tcp_nodelay', ctx: MSL, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'types_hash_max_size', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'num' } },
  { name: 'types_hash_bucket_size', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'num' } },
  { name: 'server_names_hash_max_size', ctx: HTTP_MAIN_CONF, args: TAKE1, level: 'main', kind: { t: 'num' } },
  { name: 'server_names_hash_bucket_size', ctx: HTTP_MAIN_CONF, args: TAKE1, level: 'main', kind: { t: 'num' } },
  { name: 'open_file_cache', ctx: MSL, args: TAKE12, level: 'loc', kind: { t: 'custom', set: setOpenFileCache } },
  { name: 'open_log_file_cache', ctx: MSL, args: TAKE1234, level: 'loc', kind: { t: 'custom', set: setOpenLogFileCache } },
  { name: 'open_file_cache_valid', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'sec' } },
  { name: 'open_file_cache_min_uses', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'num' } },
  { name: 'open_file_cache_errors', ctx: MSL, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'open_file_cache_events', ctx: MSL, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'reset_timedout_connection', ctx: MSL, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'lingering_close', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'enum', values: ['off', 'on', 'always'] } },
  { name: 'lingering_time', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'msec' } },
  { name: 'lingering_timeout', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'msec' } },
  { name: 'output_buffers', ctx: MSL, args: TAKE2, level: 'loc', kind: { t: 'bufs' } },
  { name: 'postpone_output', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'size' } },
  { name: 'aio', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'custom', set: setAio } },
  { name: 'directio', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'custom', set: setDirectio } },
  // memory and kernel tuning of nginx's own (docs/behaviour.md §3): Node has nothing to set for them
  { name: 'variables_hash_max_size', ctx: HTTP_MAIN_CONF, args: TAKE1, level: 'main', kind: { t: 'num' } },
  { name: 'variables_hash_bucket_size', ctx: HTTP_MAIN_CONF, args: TAKE1, level: 'main', kind: { t: 'num' } },
  { name: 'connection_pool_size', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: TAKE1, level: 'srv', kind: { t: 'custom', set: setPoolSize } },
  { name: 'request_pool_size', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: TAKE1, level: 'srv', kind: { t: 'custom', set: setPoolSize } },
  { name: 'send_lowat', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'custom', set: setSendLowat } },
  { name: 'proxy_send_lowat', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'custom', set: setSendLowat } },
  { name: 'fastcgi_send_lowat', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'custom', set: setSendLowat } },
  { name: 'read_ahead', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'size' } },
  { name: 'directio_alignment', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'size' } },
  { name: 'sendfile_max_chunk', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'size' } },
  { name: 'subrequest_output_buffer_size', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'size' } },
  { name: 'client_body_in_single_buffer', ctx: MSL, args: FLAG, level: 'loc', kind: { t: 'flag' } },
  { name: 'proxy_headers_hash_max_size', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'num' } },
  { name: 'proxy_headers_hash_bucket_size', ctx: MSL, args: TAKE1, level: 'loc', kind: { t: 'num' } },
];

/** kinds whose nginx slot refuses a second value at the same level */
const DUP_CHECKED = new Set(['flag', 'num', 'size', 'msec', 'sec', 'str', 'bufs', 'enum', 'bounds', 'custom']);
/** custom handlers without a duplicate check in nginx */
const NO_DUP = new Set<string>([]);

function judge(cf: Conf, n: Noop): string | undefined {
  const v = cf.args[1]!;
  const k = n.kind;
  switch (k.t) {
    case 'flag':
      if (parseFlag(v) === undefined) {
        throw cf.error(`invalid value "${v}" in "${n.name}" directive, it must be "on" or "off"`);
      }
      return undefined;
    case 'num':
      return atoi(v) === -1 ? 'invalid number' : undefined;
    case 'bounds': {
      const x = atoi(v);
      if (x === -1) return 'invalid number';
      if (x < k.min || x > k.max) throw cf.error(`value must be between ${k.min} and ${k.max}`);
      return undefined;
    }
    case 'size':
      return parseSize(v) === -1 ? 'invalid value' : undefined;
    case 'msec':
      return parseMsec(v) === -1 ? 'invalid value' : undefined;
    case 'sec':
      return parseSec(v) === -1 ? 'invalid value' : undefined;
    case 'bufs': {
      const num = atoi(v);
      const size = parseSize(cf.args[2]!);
      return num === -1 || num === 0 || size === -1 || size === 0 ? 'invalid value' : undefined;
    }
    case 'enum':
      if (!k.values.includes(v.toLowerCase())) throw cf.error(`invalid value "${v}"`);
      return undefined;
    case 'bitmask': {
      const seen = new Set<string>();
      for (let i = 1; i < cf.args.length; i++) {
        const w = cf.args[i]!;
        const hit = k.values.find((x) => x.toLowerCase() === w.toLowerCase());
        if (hit === undefined) throw cf.error(`invalid value "${w}"`);
        if (seen.has(hit)) cf.warn(`duplicate value "${w}"`);
        seen.add(hit);
      }
      return undefined;
    }
    case 'custom': {
      const rv = k.set(cf, { name: n.name, ctx: n.ctx, args: n.args, set: k.set });
      return typeof rv === 'string' ? rv : undefined;
    }
    case 'str':
    case 'any':
      return undefined;
  }
}

function makeCommand(n: Noop): Command {
  return {
    name: n.name,
    ctx: n.ctx,
    args: n.args,
    set(cf) {
      if (DUP_CHECKED.has(n.kind.t) && !NO_DUP.has(n.name)) {
        const at = levelObject(cf, n.level);
        let seen = seenAt.get(at);
        if (!seen) seenAt.set(at, (seen = new Set()));
        if (seen.has(n.name)) return 'is duplicate';
        const rv = judge(cf, n);
        if (rv !== undefined) return rv;
        seen.add(n.name);
      } else {
        const rv = judge(cf, n);
        if (rv !== undefined) return rv;
      }
      let used = cf.cycle.state.get(STATE_KEY) as Set<string> | undefined;
      if (!used) cf.cycle.state.set(STATE_KEY, (used = new Set()));
      used.add(n.name);
      return undefined;
    },
  };
}

export const noopModule = defineHttpModule({
  name: 'noop',
  commands: TABLE.map(makeCommand),
});
