import { FLAG, HTTP_LIF_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, MORE1, TAKE1, TAKE2, BLOCK, type CommandHandler } from '../../conf/command.js';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { defineHttpModule, locConf, mainConf } from '../../http/module.js';
import { httpVariables } from '../../http/variables.js';
import { mergeTypes, typesSlot } from '../../http/types.js';
import { CHARSET_DEFAULT_TYPES, type CharsetLocConf, type CharsetMainConf, type CharsetRef } from './conf.js';
import { charsetHeaderFilter } from './filter.js';
import { addCharset, charsetMapBlock } from './map.js';

/*
 * ngx_http_charset_filter_module: charset, source_charset,
 * override_charset, charset_types and charset_map, with nginx's slots,
 * messages and merge; the recodings the locations ask for are checked
 * against the maps once the http block is read ("no charset_map between
 * the charsets ..."), as nginx's postconfiguration does. The header
 * filter is filter.ts, the body recoding recode.ts.
 */

export type { CharsetLocConf, CharsetMainConf };

const MSL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;
const lconf = (cf: Conf): CharsetLocConf => locConf<CharsetLocConf>(cf, charsetModule);
const mconf = (cf: Conf): CharsetMainConf => mainConf<CharsetMainConf>(cf, charsetModule);

/** ngx_http_set_charset_slot: `off` (charset only), `$variable`, or a name */
function charsetSlot(key: 'charset' | 'source'): CommandHandler {
  return (cf) => {
    const c = lconf(cf);
    if (c[key].kind !== 'unset') return 'is duplicate';
    const v = cf.args[1]!;
    if (key === 'charset' && v === 'off') {
      c[key] = { kind: 'off' };
      return undefined;
    }
    if (v.startsWith('$')) {
      c[key] = { kind: 'var', index: httpVariables(cf).getIndex(v.slice(1)) };
      return undefined;
    }
    c[key] = { kind: 'index', index: addCharset(mconf(cf), v) };
    return undefined;
  };
}

function mergeRef(conf: CharsetRef, prev: CharsetRef): CharsetRef {
  if (conf.kind !== 'unset') return conf;
  return prev.kind !== 'unset' ? prev : { kind: 'off' };
}

export const charsetModule = defineHttpModule<CharsetMainConf, unknown, CharsetLocConf>({
  name: 'charset',
  createMainConf: () => ({ charsets: [], maps: [], recodes: [] }),
  createLocConf: () => ({ charset: { kind: 'unset' }, source: { kind: 'unset' }, override: UNSET, types: undefined }),
  mergeLocConf(cf, prev, conf) {
    conf.types = mergeTypes(conf.types, prev.types, CHARSET_DEFAULT_TYPES);
    conf.override = mergeValue(conf.override, prev.override, 0);
    conf.charset = mergeRef(conf.charset, prev.charset);
    conf.source = mergeRef(conf.source, prev.source);
    const dst = conf.charset;
    const src = conf.source;
    // a recoding between two named charsets must have a map (checked in postConfiguration)
    if (dst.kind !== 'index' || src.kind !== 'index' || dst.index === src.index) return;
    const m = mconf(cf);
    if (!m.recodes.some((x) => x.src === src.index && x.dst === dst.index)) m.recodes.push({ src: src.index, dst: dst.index });
  },
  postConfiguration(cf) {
    const m = mconf(cf);
    for (const rc of m.recodes) {
      if (m.maps.some((t) => (t.src === rc.src && t.dst === rc.dst) || (t.src === rc.dst && t.dst === rc.src))) continue;
      throw new ConfError(`no "charset_map" between the charsets "${m.charsets[rc.src]!.name}" and "${m.charsets[rc.dst]!.name}"`);
    }
    for (const t of m.maps) {
      m.charsets[t.src]!.tables.set(t.dst, t.src2dst);
      m.charsets[t.dst]!.tables.set(t.src, t.dst2src);
    }
  },
  headerFilter(r) {
    const conf = r.locConf[charsetModule.index] as CharsetLocConf | undefined;
    if (conf !== undefined) charsetHeaderFilter(r, conf, r.srv.ctx.main[charsetModule.index] as CharsetMainConf);
  },
  commands: [
    { name: 'charset', ctx: MSL | HTTP_LIF_CONF, args: TAKE1, set: charsetSlot('charset') },
    { name: 'source_charset', ctx: MSL | HTTP_LIF_CONF, args: TAKE1, set: charsetSlot('source') },
    { name: 'override_charset', ctx: MSL | HTTP_LIF_CONF, args: FLAG, set: flagSlot(lconf, 'override') },
    {
      name: 'charset_types',
      ctx: MSL,
      args: MORE1,
      set(cf) {
        const c = lconf(cf);
        c.types = typesSlot(cf, c.types, 'text/html');
        return undefined;
      },
    },
    { name: 'charset_map', ctx: HTTP_MAIN_CONF, args: BLOCK | TAKE2, set: (cf) => charsetMapBlock(cf, mconf(cf)) },
  ],
});
