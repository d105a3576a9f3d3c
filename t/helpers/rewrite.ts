import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfError } from '../../lib/conf/errors.js';
import { loadConfig } from '../../lib/process/config.js';
import type { Cycle } from '../../lib/conf/parser.js';
import { attachCoreVariables } from '../../lib/http/core_variables.js';
import type { Request } from '../../lib/http/request.js';
import type { Variables } from '../../lib/http/variables.js';
import type { HttpState } from '../../lib/http/module.js';
import { coreLoc, httpCoreModule, type CoreLocConf, type CoreMainConf, type CoreSrvConf } from '../../lib/http/core/module.js';

/*
 * Test helpers for the rewrite/access/map modules: load a config from text
 * and build Request-shaped objects carrying just what the hooks read.
 */

const dir = mkdtempSync(join(tmpdir(), 'redis2d-rw-'));
/** each loaded server's variable registry, for the requests built on it */
const registries = new WeakMap<CoreSrvConf, Variables>();
let n = 0;

export interface Loaded {
  cycle: Cycle;
  vars: Variables;
  servers: CoreSrvConf[];
}

export function load(text: string): Loaded {
  const file = join(dir, `c${n++}.conf`);
  writeFileSync(file, text, 'latin1');
  const cycle = loadConfig({ confFile: file, prefix: dir });
  const state = cycle.state.get('http') as HttpState;
  attachCoreVariables(state.variables);
  const main = state.ctx.main[httpCoreModule.index] as CoreMainConf;
  for (const srv of main.servers) registries.set(srv, state.variables);
  return { cycle, vars: state.variables, servers: main.servers };
}

/** The error text (without the file:line) a config fails with, or 'ok'. */
export function loadError(text: string): string {
  try {
    load(text);
  } catch (e) {
    if (e instanceof ConfError) return e.message;
    throw e;
  }
  return 'ok';
}

/** The server's location with this name (first level). */
export function location(srv: CoreSrvConf, name: string): CoreLocConf {
  const loc = coreLoc(srv.ctx.loc).locations.find((l) => l.name === name && !l.noname);
  if (!loc) throw new Error(`no location ${name}`);
  return loc;
}

export interface FakeRequest extends Request {
  logs: string[];
}

export function request(srv: CoreSrvConf, loc: CoreLocConf | undefined, uri: string, args = '', peer = '127.0.0.1'): FakeRequest {
  const locConf = loc ? loc.locConf : srv.ctx.loc;
  const logs: string[] = [];
  const r = {
    uri,
    args,
    requestUri: args ? `${uri}?${args}` : uri,
    method: 'GET',
    srv,
    loc: coreLoc(locConf),
    locConf,
    uriChanged: false,
    uriChanges: 11,
    internal: false,
    captures: undefined,
    namedCaptures: undefined,
    vars: [],
    variables: registries.get(srv),
    headersOut: [],
    status: 0,
    socket: { remoteAddress: peer },
    headers: { host: 'localhost' },
    req: { headers: { host: 'localhost' } },
    logs,
    log(level: string, msg: string) {
      logs.push(`[${level}] ${msg}`);
    },
    discardBody() {
      return 0;
    },
  };
  return r as unknown as FakeRequest;
}
