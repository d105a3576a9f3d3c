import { FLAG, HTTP_LIF_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, MORE1, TAKE1, type Command } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, flagSlot, mergeValue, msecSlot, sizeSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { httpCoreModule, setUpstreamHandler } from '../../http/core/module.js';
import { defineHttpModule, locConf, mainConf } from '../../http/module.js';
import type { ContentHandler } from '../../http/request.js';
import { compileComplexValue, countVariables } from '../../http/script.js';
import { VAR_CHANGEABLE, VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { upstreamAddUrl } from '../../upstream/module.js';
import {
  NEXT_UPSTREAM_KV_MASKS,
  mergeNextUpstream,
} from '../../upstream/run.js';
import { PAGE_SIZE, parseCmd, type MemcCmd, type MemcLocConf, type MemcMainConf } from './conf.js';
import { flagsAsHttpTime, memcContentHandler, notFound } from './handler.js';

/*
 * openresty/memc-nginx-module (0.19, Debian's libnginx-mod-http-memc),
 * configuration side: the directives with the module's contexts, arities,
 * merge rules and words. Its variables ($memc_key, $memc_cmd, $memc_flags,
 * $memc_exptime, $memc_value: changeable, not found until `set`; and
 * $memc_flags_as_http_time) exist only when some memc_pass is in the
 * config, as the module defines them at postconfiguration then.
 *
 * memc_pass takes an address with its port, `unix:PATH`, or an upstream
 * name (ngx_http_upstream_add without a default port: `no port in
 * upstream`); a value with variables names an upstream block per request.
 * memc_upstream_max_fails and memc_upstream_fail_timeout exist only to
 * refuse themselves with the module's words.
 */

export type { MemcLocConf } from './conf.js';

const conf = (cf: Conf): MemcLocConf => locConf(cf, memcModule);

/** what clcf.handler is set to by memc_pass */
const memcHandler: ContentHandler = (r) =>
  memcContentHandler(r, r.locConf[memcModule.index] as MemcLocConf, r.srv.ctx.main[memcModule.index] as MemcMainConf);

function memcPass(cf: Conf): string | undefined {
  const mlcf = conf(cf);
  if (mlcf.target?.kind === 'upstream') return 'is duplicate';
  setUpstreamHandler(locConf(cf, httpCoreModule), memcHandler);
  mainConf(cf, memcModule).used = true;
  const value = cf.args[1]!;
  if (countVariables(value)) mlcf.target = { kind: 'complex', value: compileComplexValue(cf, value) };
  else mlcf.target = { kind: 'upstream', upstream: upstreamAddUrl(cf, value) };
  return undefined;
}

/* each name one of the module's commands; a later directive replaces the list */
function cmdsAllowed(cf: Conf): string | undefined {
  const list: MemcCmd[] = [];
  for (const name of cf.args.slice(1)) {
    const cmd = parseCmd(name);
    if (cmd === undefined) throw cf.error(`Unknown memcached command "${name}" used in "memc_cmds_allowed"`);
    list.push(cmd);
  }
  conf(cf).cmdsAllowed = list;
  return undefined;
}

function unsupported(param: string): (cf: Conf, cmd: Command) => string | undefined {
  return (cf, cmd) => {
    throw cf.error(`"${cmd.name}" is not supported, use the "${param}" parameter of the "server" directive inside the "upstream" block`);
  };
}

const LIF = HTTP_LOC_CONF | HTTP_LIF_CONF;
const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const memcModule = defineHttpModule<MemcMainConf, unknown, MemcLocConf>({
  name: 'memc',
  createMainConf: () => ({ used: false, keyIndex: UNSET, cmdIndex: UNSET, flagsIndex: UNSET, exptimeIndex: UNSET, valueIndex: UNSET }),
  postConfiguration(cf) {
    const mmcf = mainConf(cf, memcModule);
    if (!mmcf.used) return;
    const vars = httpVariables(cf);
    const add = (name: string): number => {
      const def = vars.add(cf, name, VAR_CHANGEABLE);
      def.get = notFound;
      // "unset" is told apart from "" by the value `set` stored: a not-found read is never cached
      def.flags |= VAR_NOCACHEABLE;
      return vars.getIndex(name);
    };
    mmcf.keyIndex = add('memc_key');
    mmcf.cmdIndex = add('memc_cmd');
    mmcf.flagsIndex = add('memc_flags');
    mmcf.exptimeIndex = add('memc_exptime');
    mmcf.valueIndex = add('memc_value');
    vars.add(cf, 'memc_flags_as_http_time', 0).get = flagsAsHttpTime;
  },
  createLocConf: () => ({
    target: undefined,
    cmdsAllowed: undefined,
    flagsToLastModified: UNSET,
    connectTimeout: UNSET,
    sendTimeout: UNSET,
    readTimeout: UNSET,
    bufferSize: UNSET,
    nextUpstream: 0,
    ignoreClientAbort: UNSET,
  }),
  mergeLocConf(_cf, prev, c) {
    c.flagsToLastModified = mergeValue(c.flagsToLastModified, prev.flagsToLastModified, 0);
    c.connectTimeout = mergeValue(c.connectTimeout, prev.connectTimeout, 60000);
    c.sendTimeout = mergeValue(c.sendTimeout, prev.sendTimeout, 60000);
    c.readTimeout = mergeValue(c.readTimeout, prev.readTimeout, 60000);
    c.bufferSize = mergeValue(c.bufferSize, prev.bufferSize, PAGE_SIZE);
    c.nextUpstream = mergeNextUpstream(c.nextUpstream, prev.nextUpstream);
    // the literal target is inherited (a nested location without memc_pass still has no handler)
    if (c.target === undefined && prev.target?.kind === 'upstream') c.target = prev.target;
    if (c.cmdsAllowed === undefined) c.cmdsAllowed = prev.cmdsAllowed;
    c.ignoreClientAbort = mergeValue(c.ignoreClientAbort, prev.ignoreClientAbort, 0);
  },
  commands: [
    { name: 'memc_cmds_allowed', ctx: ALL | HTTP_LIF_CONF, args: MORE1, set: cmdsAllowed },
    { name: 'memc_pass', ctx: LIF, args: TAKE1, set: memcPass },
    { name: 'memc_connect_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'connectTimeout') },
    { name: 'memc_send_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'sendTimeout') },
    { name: 'memc_read_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'readTimeout') },
    { name: 'memc_buffer_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'bufferSize') },
    {
      name: 'memc_next_upstream',
      ctx: ALL,
      args: MORE1,
      set: bitmaskSlot(conf, 'nextUpstream', NEXT_UPSTREAM_KV_MASKS),
    },
    { name: 'memc_upstream_max_fails', ctx: ALL, args: TAKE1, set: unsupported('max_fails') },
    { name: 'memc_upstream_fail_timeout', ctx: ALL, args: TAKE1, set: unsupported('fail_timeout') },
    { name: 'memc_flags_to_last_modified', ctx: LIF, args: FLAG, set: flagSlot(conf, 'flagsToLastModified') },
    { name: 'memc_ignore_client_abort', ctx: LIF, args: FLAG, set: flagSlot(conf, 'ignoreClientAbort') },
  ],
});
