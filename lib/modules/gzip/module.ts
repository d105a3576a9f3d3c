import {
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE2,
  type CommandHandler,
} from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, enumSlot, flagSlot, mergeValue, sizeSlot } from '../../conf/slots.js';
import { UNSET, atoi, parseSize } from '../../conf/values.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { httpRegexCompile } from '../../http/regex_exec.js';
import { mergeTypes, typesSlot } from '../../http/types.js';
import { httpVariables } from '../../http/variables.js';
import { VAR_NOCACHEABLE } from '../../http/variables.js';
import { GZIP_DEFAULT_TYPES, PROXIED_OFF, PROXIED_WORDS, type GzipLocConf } from './conf.js';
import { gzipHeaderFilter, gzipRatio } from './filter.js';

/*
 * ngx_http_gzip_filter_module's directives (gzip, gzip_buffers,
 * gzip_types, gzip_comp_level, gzip_window, gzip_hash, postpone_gzipping,
 * gzip_no_buffer, gzip_min_length) and the core module's gzip ones
 * (gzip_vary, gzip_http_version, gzip_proxied, gzip_disable), with
 * nginx's slots, messages and merge defaults; $gzip_ratio.
 */

export type { GzipLocConf };

const MSL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;
const conf = (cf: Conf): GzipLocConf => locConf(cf, gzipModule);

/** the 4 KiB page nginx's buffer defaults are counted in */
const PAGE = 4096;

/** ngx_conf_set_num_slot with ngx_conf_check_num_bounds */
const compLevel: CommandHandler = (cf) => {
  const c = conf(cf);
  if (c.level !== UNSET) return 'is duplicate';
  const n = atoi(cf.args[1]!);
  if (n === -1) return 'invalid number';
  if (n < 1 || n > 9) throw cf.error('value must be between 1 and 9');
  c.level = n;
  return undefined;
};

/** ngx_conf_set_size_slot, then the post handler turning a size into zlib's bits */
function bitsSlot(key: 'wbits' | 'memlevel', top: number, topBits: number, msg: string): CommandHandler {
  return (cf) => {
    const c = conf(cf);
    if (c[key] !== UNSET) return 'is duplicate';
    const v = parseSize(cf.args[1]!);
    if (v === -1) return 'invalid value';
    let bits = topBits;
    for (let size = top; size > 256; size >>= 1, bits--) {
      if (size === v) {
        c[key] = bits;
        return undefined;
      }
    }
    return msg;
  };
}

/** ngx_conf_set_bufs_slot */
const gzipBuffers: CommandHandler = (cf) => {
  const c = conf(cf);
  if (c.bufs !== undefined) return 'is duplicate';
  const num = atoi(cf.args[1]!);
  const size = parseSize(cf.args[2]!);
  if (num <= 0 || size <= 0) return 'invalid value';
  c.bufs = { num, size };
  return undefined;
};

/** ngx_http_gzip_disable: case-insensitive regexes; `msie6` is a word (no degradation module in Debian's build) */
const gzipDisable: CommandHandler = (cf) => {
  const c = conf(cf);
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v === 'msie6') {
      c.disableMsie6 = 1;
      continue;
    }
    (c.disable ??= []).push(httpRegexCompile(cf, v, true));
  }
  return undefined;
};

export const gzipModule = defineHttpModule<unknown, unknown, GzipLocConf>({
  name: 'gzip',
  preConfiguration(cf) {
    httpVariables(cf).add(cf, 'gzip_ratio', VAR_NOCACHEABLE).get = (r) => gzipRatio(r as HttpRequest);
  },
  createLocConf: () => ({
    enable: UNSET,
    noBuffer: UNSET,
    bufs: undefined,
    postponeGzipping: UNSET,
    level: UNSET,
    wbits: UNSET,
    memlevel: UNSET,
    minLength: UNSET,
    types: undefined,
    vary: UNSET,
    httpVersion: UNSET,
    proxied: 0,
    disable: undefined,
    disableMsie6: UNSET,
  }),
  mergeLocConf(_cf, prev, c) {
    c.enable = mergeValue(c.enable, prev.enable, 0);
    c.noBuffer = mergeValue(c.noBuffer, prev.noBuffer, 0);
    c.bufs ??= prev.bufs ?? { num: (128 * 1024) / PAGE, size: PAGE };
    c.postponeGzipping = mergeValue(c.postponeGzipping, prev.postponeGzipping, 0);
    c.level = mergeValue(c.level, prev.level, 1);
    c.wbits = mergeValue(c.wbits, prev.wbits, 15);
    c.memlevel = mergeValue(c.memlevel, prev.memlevel, 8);
    c.minLength = mergeValue(c.minLength, prev.minLength, 20);
    c.types = mergeTypes(c.types, prev.types, GZIP_DEFAULT_TYPES);
    c.vary = mergeValue(c.vary, prev.vary, 0);
    c.httpVersion = mergeValue(c.httpVersion, prev.httpVersion, 1001);
    if (c.proxied === 0) c.proxied = prev.proxied === 0 ? PROXIED_OFF : prev.proxied;
    c.disable ??= prev.disable;
    if (c.disableMsie6 === UNSET) c.disableMsie6 = prev.disableMsie6 === UNSET ? 0 : prev.disableMsie6;
  },
  headerFilter(r) {
    gzipHeaderFilter(r, r.locConf[gzipModule.index] as GzipLocConf | undefined);
  },
  commands: [
    { name: 'gzip', ctx: MSL | HTTP_LIF_CONF, args: FLAG, set: flagSlot(conf, 'enable') },
    { name: 'gzip_buffers', ctx: MSL, args: TAKE2, set: gzipBuffers },
    {
      name: 'gzip_types',
      ctx: MSL,
      args: MORE1,
      set(cf) {
        const c = conf(cf);
        c.types = typesSlot(cf, c.types, 'text/html');
        return undefined;
      },
    },
    { name: 'gzip_comp_level', ctx: MSL, args: TAKE1, set: compLevel },
    { name: 'gzip_window', ctx: MSL, args: TAKE1, set: bitsSlot('wbits', 32 * 1024, 15, 'must be 512, 1k, 2k, 4k, 8k, 16k, or 32k') },
    { name: 'gzip_hash', ctx: MSL, args: TAKE1, set: bitsSlot('memlevel', 128 * 1024, 9, 'must be 512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k') },
    { name: 'postpone_gzipping', ctx: MSL, args: TAKE1, set: sizeSlot(conf, 'postponeGzipping') },
    { name: 'gzip_no_buffer', ctx: MSL, args: FLAG, set: flagSlot(conf, 'noBuffer') },
    { name: 'gzip_min_length', ctx: MSL, args: TAKE1, set: sizeSlot(conf, 'minLength') },
    // ngx_http_core_module's
    { name: 'gzip_vary', ctx: MSL, args: FLAG, set: flagSlot(conf, 'vary') },
    { name: 'gzip_http_version', ctx: MSL, args: TAKE1, set: enumSlot(conf, 'httpVersion', { '1.0': 1000, '1.1': 1001 }) },
    { name: 'gzip_proxied', ctx: MSL, args: MORE1, set: bitmaskSlot(conf, 'proxied', PROXIED_WORDS) },
    { name: 'gzip_disable', ctx: MSL, args: MORE1, set: gzipDisable },
  ],
});
