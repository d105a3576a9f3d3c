import cluster from 'node:cluster';
import { createServer, type Server } from 'node:net';
import { acceptConnection } from '../http/connection.js';
import { bindErrorText, type BindError } from '../http/engine.js';
import type { ErrorLog } from '../core/error_log.js';
import type { ListenSocket } from '../http/servers.js';

/*
 * The listening sockets of a serving process (ngx_open_listening_sockets).
 * Each socket serves through a mutable ListenSocket, so a reload in a single
 * process (master_process off) keeps the bound socket and swaps the
 * configuration new connections see. In a cluster worker the bind happens
 * in the master (node:cluster's shared handles): every worker accepts on
 * the same socket, as nginx's workers do, and the socket outlives a reload.
 */

interface Listening {
  server: Server;
  ls: ListenSocket;
}

const listening = new Map<string, Listening>();

const keyOf = (ls: ListenSocket): string =>
  ls.opt.family === 'unix' ? `unix:${ls.opt.path}` : `${ls.opt.family}|${ls.opt.host}|${ls.opt.port}`;

function listenOne(ls: ListenSocket): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const entry: Listening = { server: undefined as unknown as Server, ls };
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
      // half-open: a client's FIN ends its side only; HttpConnection answers what it asked, then closes;
      // a slot of worker_connections first (acceptConnection closes the socket when there is none)
      acceptConnection(sock, entry.ls);
    });
    entry.server = server;
    server.once('error', (err: NodeJS.ErrnoException) => reject({ text: ls.opt.text, err } satisfies BindError));
    const backlog = ls.opt.backlog > 0 ? ls.opt.backlog : 511;
    const done = (): void => {
      server.removeAllListeners('error');
      server.on('error', () => {});
      resolve(entry);
    };
    if (ls.opt.family === 'unix') server.listen({ path: ls.opt.path!, backlog }, done);
    else {
      server.listen(
        {
          host: ls.opt.host,
          port: ls.opt.port,
          backlog,
          ipv6Only: ls.opt.family === 'inet6' ? ls.opt.ipv6only : undefined,
          // a worker shares the master's socket; a lone process binds its own
          exclusive: !cluster.isWorker,
        },
        done,
      );
    }
  });
}

/**
 * Open (or keep) the sockets of a configuration: nginx's 5 tries 500 ms
 * apart when the address is in use, each failure an `[emerg]` line, then
 * `still could not bind()`. Sockets the configuration no longer names are
 * closed. Returns false after logging the failure.
 */
export async function openListening(sockets: ListenSocket[], log: ErrorLog | undefined): Promise<boolean> {
  const wanted = new Map(sockets.map((ls) => [keyOf(ls), ls]));
  const opened: string[] = [];
  for (const [key, ls] of wanted) {
    const have = listening.get(key);
    if (have) continue;
    for (let attempt = 0; ; attempt++) {
      try {
        listening.set(key, await listenOne(ls));
        opened.push(key);
        break;
      } catch (e) {
        const be = e as BindError;
        if (!be.err) throw e;
        log?.write('emerg', 0, bindErrorText(be));
        if (be.err.code !== 'EADDRINUSE' || attempt === 4) {
          if (be.err.code === 'EADDRINUSE') log?.write('emerg', 0, 'still could not bind()');
          for (const k of opened) {
            listening.get(k)!.server.close();
            listening.delete(k);
          }
          return false;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  // every socket now serves the new configuration; the ones it dropped close
  for (const [key, entry] of listening) {
    const ls = wanted.get(key);
    if (ls) entry.ls = ls;
    else {
      entry.server.close();
      listening.delete(key);
    }
  }
  return true;
}

/** stop accepting (graceful and fast stop alike) */
export function closeListening(): void {
  for (const entry of listening.values()) entry.server.close();
  listening.clear();
}

/** how many sockets this process listens on (each holds a worker_connections slot) */
export function listeningCount(): number {
  return listening.size;
}
