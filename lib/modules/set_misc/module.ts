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
  TAKE3, type Command,
} from '../../conf/command.js';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { atoi } from '../../conf/values.js';
import { evalComplexValue, setVariable } from '../../http/eval.js';
import type { Request } from '../../http/request.js';
import { compileComplexValue, countVariables } from '../../http/script.js';
import { mainConf, defineHttpModule } from '../../http/module.js';
import { addRewriteHandler, defineSetVariable } from '../rewrite/module.js';
import type { ScriptEngine } from '../rewrite/ops.js';
import type { SetMiscFilter, SetMiscMainConf, SetMiscStep, UpstreamList } from './conf.js';
import { FILTERS } from './filters.js';

/*
 * set_misc (openresty/set-misc-nginx-module) and NDK's `upstream_list`,
 * configuration side. Every set_* directive is NDK's set_var: it defines
 * its variable as `set` does and compiles one statement into the rewrite
 * program of its level, so it runs in directive order among set/if/rewrite.
 * The value transforms themselves are in filters.ts; a directive without
 * one fails the request with 500.
 */

export type { SetMiscFilter, SetMiscMainConf, SetMiscStep, UpstreamList };

function runStep(step: SetMiscStep, lists: UpstreamList[]) {
  // the transform is chosen once, as the directive is compiled
  const f: SetMiscFilter | undefined = Object.hasOwn(FILTERS, step.directive) ? FILTERS[step.directive] : undefined;
  return (r: Request, e: ScriptEngine): void => {
    const values = step.values.map((cv) => evalComplexValue(r, cv));
    const v = f ? f(r, values, step, lists) : undefined;
    if (v === undefined) {
      if (!f) r.log('alert', `"${step.directive}" is not implemented`);
      e.status = 500;
      e.stop = true;
      return;
    }
    setVariable(r, step.index, v);
  };
}

/** NDK's ndk_set_var_*_core: define the variable, compile the values, append the statement. */
function addStep(cf: Conf, directive: string, name: string, values: string[], list?: UpstreamList): undefined {
  const index = defineSetVariable(cf, name);
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

function setIfEmpty(cf: Conf, cmd: Command): undefined {
  // the multi-value starts at the variable itself: [$var, default]
  return addStep(cf, cmd.name, cf.args[1]!, [cf.args[1]!, cf.args[2]!]);
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
  'set_quote_json_str',
  'set_encode_base64',
  'set_decode_base64',
  'set_encode_hex',
  'set_decode_hex',
  'set_md5',
  'set_sha1',
  'set_secure_random_alphanum',
];

export const setMiscModule = defineHttpModule<SetMiscMainConf, unknown, unknown>({
  name: 'set_misc',
  createMainConf: () => ({ upstreamLists: [] }),
  commands: [
    ...VALUE_DIRECTIVES.map((name): Command => ({ name, ctx: ALL_IF, args: TAKE12, set: setVarValue })),
    { name: 'set_if_empty', ctx: ALL_IF, args: TAKE2, set: setIfEmpty },
    { name: 'set_hashed_upstream', ctx: ALL_IF, args: TAKE3, set: setHashedUpstream },
    // the value is compiled (it is the variable itself) but the transform ignores it
    { name: 'set_local_today', ctx: ALL_IF, args: TAKE1, set: setVarValue },
    { name: 'set_formatted_gmt_time', ctx: ALL_IF, args: TAKE2, set: setVarValue },
    { name: 'set_random', ctx: ALL_IF, args: TAKE3, set: setVarMulti(2) },
    { name: 'upstream_list', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: MORE2, set: upstreamList },
  ],
});
