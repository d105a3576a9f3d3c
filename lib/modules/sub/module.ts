import { FLAG, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, MORE1, TAKE2 } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { compileComplexValue } from '../../http/script.js';
import { mergeTypes, typesSlot } from '../../http/types.js';
import type { SubLocConf } from './conf.js';
import { subHeaderFilter } from './filter.js';
import { buildTables } from './tables.js';

/*
 * ngx_http_sub_filter_module: sub_filter STRING REPLACEMENT (up to 255,
 * the string matched case-insensitively, both may hold variables),
 * sub_filter_once, sub_filter_types, sub_filter_last_modified. A level
 * without sub_filter lines inherits its parent's as a whole.
 */

/** ngx_strlow: ASCII letters only */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

const MSL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;
const conf = (cf: Conf): SubLocConf => locConf<SubLocConf>(cf, subModule);

export const subModule = defineHttpModule<unknown, unknown, SubLocConf>({
  name: 'sub',
  createLocConf: () => ({ pairs: undefined, tables: undefined, once: UNSET, lastModified: UNSET, types: undefined }),
  mergeLocConf(_cf, prev, c) {
    c.once = mergeValue(c.once, prev.once, 1);
    c.lastModified = mergeValue(c.lastModified, prev.lastModified, 0);
    c.types = mergeTypes(c.types, prev.types, ['text/html']);
    if (c.pairs === undefined) {
      c.pairs = prev.pairs;
      c.tables = prev.tables;
    }
    if (c.pairs !== undefined && c.tables === undefined && c.pairs.every((p) => p.match.constant !== undefined)) {
      c.tables = buildTables(c.pairs.map((p, i) => ({ match: p.match.constant!, pair: i })));
    }
  },
  headerFilter(r) {
    subHeaderFilter(r, r.locConf[subModule.index] as SubLocConf | undefined);
  },
  commands: [
    {
      name: 'sub_filter',
      ctx: MSL,
      args: TAKE2,
      set(cf) {
        const c = conf(cf);
        if (cf.args[1]!.length === 0) throw cf.error('empty search pattern');
        c.pairs ??= [];
        if (c.pairs.length === 255) throw cf.error('number of search patterns exceeds 255');
        // nginx lowercases the pattern as written, variables' names included
        const match = compileComplexValue(cf, asciiLower(cf.args[1]!));
        c.pairs.push({ match, value: compileComplexValue(cf, cf.args[2]!) });
        return undefined;
      },
    },
    {
      name: 'sub_filter_types',
      ctx: MSL,
      args: MORE1,
      set(cf) {
        const c = conf(cf);
        c.types = typesSlot(cf, c.types, 'text/html');
        return undefined;
      },
    },
    { name: 'sub_filter_once', ctx: MSL, args: FLAG, set: flagSlot(conf, 'once') },
    { name: 'sub_filter_last_modified', ctx: MSL, args: FLAG, set: flagSlot(conf, 'lastModified') },
  ],
});
