import { createServer, type Server } from 'node:net';
import type { Cycle } from '../conf/parser.js';
import { errnoSuffix } from '../core/errno.js';
import { httpModulesOf, type HttpState } from './module.js';
import { coreLoc, httpCoreModule, type CoreMainConf } from './core/module.js';
import { attachCoreVariables } from './core_variables.js';
import { HttpConnection } from './connection.js';
import { buildLocationTree } from './locations.js';
import { buildHooks } from './hooks.js';
import { buildListens, type ListenSocket } from './servers.js';

/*
 * ngx_http_block's run-time half: from a loaded cycle, build the location
 * trees, the phase table and the listening sockets, then accept.
 */

export interface BindError {
  text: string;
  err: NodeJS.ErrnoException;
}

export function bindErrorText(e: BindError): string {
  return `bind() to ${e.text} failed ${errnoSuffix(e.err)}`;
}

/** prepare the http side of a cycle; returns the sockets to open (none without `http {}`) */
export function prepareHttp(cycle: Cycle): ListenSocket[] {
  const state = cycle.state.get('http') as HttpState | undefined;
  if (!state) return [];
  attachCoreVariables(state.variables);
  buildHooks(httpModulesOf(cycle));
  const main = state.ctx.main[httpCoreModule.index] as CoreMainConf;
  for (const srv of main.servers) buildLocationTree(coreLoc(srv.ctx.loc));
  return buildListens(main.servers, state.variables);
}

function listenOne(ls: ListenSocket): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: false, noDelay: true }, (sock) => {
      new HttpConnection(sock, ls);
    });
    server.once('error', (err: NodeJS.ErrnoException) => reject({ text: ls.opt.text, err } satisfies BindError));
    const backlog = ls.opt.backlog > 0 ? ls.opt.backlog : 511;
    const done = (): void => {
      server.removeAllListeners('error');
      server.on('error', () => {});
      resolve(server);
    };
    if (ls.opt.family === 'unix') server.listen({ path: ls.opt.path!, backlog }, done);
    else server.listen({ host: ls.opt.host, port: ls.opt.port, backlog, ipv6Only: ls.opt.family === 'inet6' ? ls.opt.ipv6only : undefined, exclusive: true }, done);
  });
}

/** open every listening socket; on failure the ones opened are closed again */
export async function openListens(sockets: ListenSocket[]): Promise<Server[]> {
  const servers: Server[] = [];
  try {
    for (const ls of sockets) servers.push(await listenOne(ls));
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return servers;
}
