import {
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SIF_CONF,
  HTTP_SRV_CONF,
  MORE2,
  TAKE1,
  TAKE12,
  TAKE2,
  TAKE3,
  FLAG,
  type Command,
  type CommandHandler,
} from '../../conf/command.js';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { UNSET, atoi } from '../../conf/values.js';
import { flagSlot, mergeValue } from '../../conf/slots.js';
import { evalComplexValue, setVariable } from '../../http/eval.js';
import type { Request } from '../../http/request.js';
import { compileComplexValue, countVariables } from '../../http/script.js';
import { mainConf, locConf, defineHttpModule } from '../../http/module.js';
import { VAR_CHANGEABLE, VAR_WEAK, httpVariables, type VariableDef } from '../../http/variables.js';
import { addRewriteHandler, uninitializedGetter } from '../rewrite/module.js';
import type { ScriptEngine } from '../rewrite/ops.js';
import { DEFAULT_BASE32_ALPHABET, decodeTable } from './base32.js';
import type { SetMiscFilter, SetMiscLocConf, SetMiscMainConf, SetMiscStep, UpstreamList } from './conf.js';
import { FILTERS } from './filters.js';

/*
 * set_misc (openresty/set-misc-nginx-module) and NDK's `upstream_list`,
 * configuration side. Every set_* directive is NDK's set_var: it defines
 * its variable (defineNdkVariable) and compiles one statement into the
 * rewrite program of its level, so it runs in directive order among
 * set/if/rewrite. The value transforms themselves are in filters.ts; the
 * base32 settings and set_rotate's memory are location confs
 * (SetMiscLocConf), merged inward as the module's.
 */

export type { SetMiscFilter, SetMiscLocConf, SetMiscMainConf, SetMiscStep, UpstreamList };

function runStep(step: SetMiscStep, lists: UpstreamList[]) {
  // the transform is chosen once, as the directive is compiled
  const f: SetMiscFilter | undefined = Object.hasOwn(FILTERS, step.directive) ? FILTERS[step.directive] : undefined;
  return (r: Request, e: ScriptEngine): void => {
    const values = step.values.map((cv) => evalComplexValue(r, cv));
    const v = f ? f(r, values, step, lists, r.locConf[setMiscModule.index] as SetMiscLocConf) : undefined;
    if (v === undefined) {
      if (!f) r.log('alert', `"${step.directive}" is not implemented`);
      e.status = 500;
      e.stop = true;
      return;
    }
    setVariable(r, step.index, v);
  };
}

/* the prefix variables NDK leaves their own getter to (ndk_set_var_name) */
const NDK_PREFIXES = ['arg_', 'cookie_', 'http_', 'sent_http_', 'upstream_http_'];
/** the definitions NDK left getter-less (a prefix name first defined by a set_* directive) */
const ndkPrefixed = new WeakSet<VariableDef>();

/**
 * ndk_set_var_name: the variable is added as changeable (not weak, unlike
 * `set`) and, unless it already exists or its name starts with one of
 * NDK_PREFIXES, reads as "uninitialized" before its first set. A name
 * with one of those prefixes gets no getter of its own, so nginx serves
 * it by the prefix variable: `set_if_empty $arg_bar 15` reads the
 * request's `bar` argument first. redis2d's registry expresses "no getter
 * of its own, the prefix decides" with the weak flag (variables.ts
 * initVars), kept on however often the name is set this way.
 */
function defineNdkVariable(cf: Conf, word: string): number {
  if (word[0] !== '$') throw cf.error(`invalid variable name "${word}"`);
  const name = word.slice(1);
  // ngx_http_add_variable's wording for an empty name
  if (name.length === 0) throw cf.error('invalid variable name "$"');
  const vars = httpVariables(cf);
  const lc = name.toLowerCase();
  // core variables get their getters later, from the request side: only a
  // variable first defined here is "uninitialized" or left to its prefix
  const fresh = !vars.defs.has(lc);
  const def = vars.add(cf, name, VAR_CHANGEABLE);
  const index = vars.getIndex(name);
  if (NDK_PREFIXES.some((p) => lc.startsWith(p))) {
    if (def.get === undefined && (fresh || ndkPrefixed.has(def))) {
      def.flags |= VAR_WEAK;
      ndkPrefixed.add(def);
    }
  } else if (fresh) {
    def.get = uninitializedGetter;
  }
  return index;
}

/** NDK's ndk_set_var_*_core: define the variable, compile the values, append the statement. */
function addStep(cf: Conf, directive: string, name: string, values: string[], list?: UpstreamList): undefined {
  const index = defineNdkVariable(cf, name);
  const step: SetMiscStep = {
    directive,
    index,
    values: values.map((v) => compileComplexValue(cf, v)),
    list,
  };
  addRewriteHandler(cf, runStep(step, mainConf(cf, setMiscModule).upstreamLists));
  return undefined;
}

/** NDK_SET_VAR_VALUE with ndk_set_var_value: `set_x $var [value]`, value defaulting to $var. */
function setVarValue(cf: Conf, cmd: Command): undefined {
  const a = cf.args;
  return addStep(cf, cmd.name, a[1]!, [a.length === 2 ? a[1]! : a[2]!]);
}

/** ndk_set_var_multi_value: `size` values after the variable name. */
function setVarMulti(size: number) {
  return (cf: Conf, cmd: Command): undefined => addStep(cf, cmd.name, cf.args[1]!, cf.args.slice(2, 2 + size));
}

/** set_if_empty and set_rotate: the multi-value starts at the variable itself ([$var, ...rest]) */
function setVarSelfMulti(cf: Conf, cmd: Command): undefined {
  return addStep(cf, cmd.name, cf.args[1]!, cf.args.slice(1));
}

function base32Alphabet(cf: Conf, cmd: Command): string | undefined {
  const a = cf.args[1]!;
  if (a.length !== 32) {
    throw cf.error(`"${cmd.name}" directive takes an alphabet of ${a.length} bytes but 32 expected`);
  }
  const lcf = lcfOf(cf);
  if (lcf.base32Alphabet !== undefined) return 'is duplicate';
  lcf.base32Alphabet = a;
  return undefined;
}

const lcfOf = (cf: Conf): SetMiscLocConf => locConf<SetMiscLocConf>(cf, setMiscModule);
const paddingSlot: CommandHandler = flagSlot(lcfOf, 'base32Padding');

/** set_misc_base32_padding: set_base32_padding's old name, with ngx_conf_deprecated's warning */
function deprecatedPadding(cf: Conf, cmd: Command): string | undefined {
  const rv = paddingSlot(cf, cmd);
  if (rv) return rv;
  cf.warn('the "set_misc_base32_padding" directive is deprecated, use the "set_base32_padding" directive instead');
  return undefined;
}

function findList(cf: Conf, name: string): UpstreamList | undefined {
  const l = name.toLowerCase();
  return mainConf(cf, setMiscModule).upstreamLists.find((u) => u.name.length === name.length && u.name.toLowerCase() === l);
}

function setHashedUpstream(cf: Conf, cmd: Command): undefined {
  const [, name, listName, key] = cf.args as [string, string, string, string];
  if (countVariables(listName)) return addStep(cf, cmd.name, name, [listName, key]);
  const list = findList(cf, listName);
  if (!list) {
    // logged with ngx_log_error at level error: no file and line
    throw new ConfError(`set_hashed_upstream: upstream list "${listName}" not defined yet`, undefined, undefined, 'error');
  }
  return addStep(cf, cmd.name, name, [key], list);
}

/** ndk_upstream_list_parse_weight: `[N:]name`. */
function parseWeight(cf: Conf, s: string): { weight: number; name: string } {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  if (i === 0) return { weight: 1, name: s };
  if (i === s.length) throw cf.error(`upstream list just consists of number "${s}"`);
  if (s[i] !== ':') throw cf.error(`upstream list not correct format "${s}"`);
  return { weight: atoi(s.slice(0, i)), name: s.slice(i + 1) };
}

function upstreamList(cf: Conf): undefined {
  const name = cf.args[1]!;
  if (findList(cf, name)) throw cf.error(`duplicate upstream list name "${name}"`);
  const list: UpstreamList = { name, buckets: [] };
  for (const s of cf.args.slice(2)) {
    const { weight, name: us } = parseWeight(cf, s);
    for (let j = 0; j < weight; j++) list.buckets.push(us);
  }
  mainConf(cf, setMiscModule).upstreamLists.push(list);
  return undefined;
}

const ALL_IF = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_SIF_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF;

const VALUE_DIRECTIVES = [
  'set_unescape_uri',
  'set_escape_uri',
  'set_quote_sql_str',
  'set_quote_pgsql_str',
  'set_quote_json_str',
  'set_encode_base64',
  'set_decode_base64',
  'set_encode_base64url',
  'set_decode_base64url',
  'set_encode_base32',
  'set_decode_base32',
  'set_encode_hex',
  'set_decode_hex',
  'set_md5',
  'set_sha1',
  'set_secure_random_alphanum',
  'set_secure_random_lcalpha',
];

export const setMiscModule = defineHttpModule<SetMiscMainConf, unknown, SetMiscLocConf>({
  name: 'set_misc',
  createMainConf: () => ({ upstreamLists: [] }),
  createLocConf: () => ({ base32Padding: UNSET, base32Alphabet: undefined, basis32: new Uint8Array(0), current: UNSET }),
  mergeLocConf(_cf, prev, conf) {
    conf.base32Padding = mergeValue(conf.base32Padding, prev.base32Padding, 1);
    conf.base32Alphabet ??= prev.base32Alphabet ?? DEFAULT_BASE32_ALPHABET;
    conf.basis32 = decodeTable(conf.base32Alphabet);
    conf.current = mergeValue(conf.current, prev.current, UNSET);
  },
  commands: [
    ...VALUE_DIRECTIVES.map((name): Command => ({ name, ctx: ALL_IF, args: TAKE12, set: setVarValue })),
    { name: 'set_if_empty', ctx: ALL_IF, args: TAKE2, set: setVarSelfMulti },
    { name: 'set_rotate', ctx: ALL_IF, args: TAKE3, set: setVarSelfMulti },
    { name: 'set_hmac_sha1', ctx: ALL_IF, args: TAKE3, set: setVarMulti(2) },
    { name: 'set_hmac_sha256', ctx: ALL_IF, args: TAKE3, set: setVarMulti(2) },
    { name: 'set_misc_base32_padding', ctx: ALL_IF, args: FLAG, set: deprecatedPadding },
    { name: 'set_base32_padding', ctx: ALL_IF, args: FLAG, set: paddingSlot },
    { name: 'set_base32_alphabet', ctx: ALL_IF, args: TAKE1, set: base32Alphabet },
    { name: 'set_hashed_upstream', ctx: ALL_IF, args: TAKE3, set: setHashedUpstream },
    // the value is compiled (it is the variable itself) but the transform ignores it
    { name: 'set_local_today', ctx: ALL_IF, args: TAKE1, set: setVarValue },
    { name: 'set_formatted_gmt_time', ctx: ALL_IF, args: TAKE2, set: setVarValue },
    { name: 'set_formatted_local_time', ctx: ALL_IF, args: TAKE2, set: setVarValue },
    { name: 'set_random', ctx: ALL_IF, args: TAKE3, set: setVarMulti(2) },
    { name: 'upstream_list', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: MORE2, set: upstreamList },
  ],
});
