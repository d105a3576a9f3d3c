import { BLOCK, HTTP_MAIN_CONF, TAKE1, TAKE2, } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { numSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { evalComplexValue } from '../../http/eval.js';
import { httpRegexCompile, regexExec, type HttpRegex } from '../../http/regex_exec.js';
import type { Request } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';
import { VAR_CHANGEABLE, VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { mainConf, defineHttpModule } from '../../http/module.js';
import { addHostKey, findHost, newHostTable, type HostTable } from './hosts.js';

/*
 * ngx_http_map_module: `map SOURCE $var { key value; ... }` defines $var,
 * whose value is looked up from SOURCE when first read in a request:
 * exact keys (case-insensitive), with `hostnames` the wildcard forms, then
 * regexes in order; values may hold variables and the regex's captures.
 */

export interface MapMainConf {
  hashMaxSize: number;
  hashBucketSize: number;
}

interface MapDef {
  source: ComplexValue;
  hostnames: boolean;
  table: HostTable<ComplexValue>;
  regexes: Array<{ regex: HttpRegex; value: ComplexValue }>;
  dflt: ComplexValue | undefined;
}

const EMPTY: ComplexValue = { source: '', constant: '', parts: [], maxCapture: 0 };

/** The getter of a map variable (ngx_http_map_variable). */
function mapGetter(map: MapDef): (r: Request) => string {
  return (r) => {
    let val = evalComplexValue(r, map.source);
    if (map.hostnames && val.length > 0 && val.charCodeAt(val.length - 1) === 0x2e) val = val.slice(0, -1);
    let value = findHost(map.table, val.toLowerCase(), map.hostnames);
    if (value === undefined && val.length) {
      const regexes = map.regexes;
      for (let i = 0; i < regexes.length; i++) {
        if (regexExec(r, regexes[i]!.regex, val)) {
          value = regexes[i]!.value;
          break;
        }
      }
    }
    if (value === undefined) value = map.dflt ?? EMPTY;
    return value.constant !== undefined ? value.constant : evalComplexValue(r, value);
  };
}

function mapBlock(cf: Conf): undefined {
  const source = compileComplexValue(cf, cf.args[1]!);
  const name = cf.args[2]!;
  if (name[0] !== '$') throw cf.error(`invalid variable name "${name}"`);
  if (name.length === 1) throw cf.error('invalid variable name "$"');
  // the first map fixes the hash sizes: a later map_hash_* is "duplicate", as in nginx
  const mcf = mainConf(cf, mapModule);
  if (mcf.hashMaxSize === UNSET) mcf.hashMaxSize = 2048;
  if (mcf.hashBucketSize === UNSET) mcf.hashBucketSize = 64;
  const vars = httpVariables(cf);
  const def = vars.add(cf, name.slice(1), VAR_CHANGEABLE);

  const map: MapDef = { source, hostnames: false, table: newHostTable(), regexes: [], dflt: undefined };
  let volatile = false;
  cf.parseBlock(cf.cmdType, cf.ctx, (cf) => {
    const value = cf.args;
    if (value.length === 1 && value[0] === 'hostnames') {
      map.hostnames = true;
      return;
    }
    if (value.length === 1 && value[0] === 'volatile') {
      volatile = true;
      return;
    }
    if (value.length !== 2) throw cf.error('invalid number of the map parameters');
    if (value[0] === 'include') {
      cf.include(value[1]!);
      return;
    }
    const v = compileComplexValue(cf, value[1]!);
    let key = value[0]!;
    if (key === 'default') {
      if (map.dflt !== undefined) throw cf.error('duplicate default map parameter');
      map.dflt = v;
      return;
    }
    if (key.length && key[0] === '~') {
      key = key.slice(1);
      let caseless = false;
      if (key[0] === '*') {
        key = key.slice(1);
        caseless = true;
      }
      map.regexes.push({ regex: httpRegexCompile(cf, key, caseless), value: v });
      return;
    }
    if (key.length && key[0] === '\\') key = key.slice(1);
    const rc = addHostKey(map.table, key, v, map.hostnames);
    if (rc === 'declined') throw cf.error(`invalid hostname or wildcard "${key}"`);
    if (rc === 'busy') throw cf.error(`conflicting parameter "${key}"`);
  });
  if (volatile) def.flags |= VAR_NOCACHEABLE;
  def.get = mapGetter(map);
  return undefined;
}

const mainOf = (cf: Conf): MapMainConf => mainConf(cf, mapModule);

export const mapModule = defineHttpModule<MapMainConf, unknown, unknown>({
  name: 'http_map',
  createMainConf: () => ({ hashMaxSize: UNSET, hashBucketSize: UNSET }),
  commands: [
    { name: 'map', ctx: HTTP_MAIN_CONF, args: BLOCK | TAKE2, set: mapBlock },
    { name: 'map_hash_max_size', ctx: HTTP_MAIN_CONF, args: TAKE1, set: numSlot(mainOf, 'hashMaxSize') },
    { name: 'map_hash_bucket_size', ctx: HTTP_MAIN_CONF, args: TAKE1, set: numSlot(mainOf, 'hashBucketSize') },
  ],
});
