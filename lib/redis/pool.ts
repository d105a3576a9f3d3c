import type { Socket } from 'node:net';

/*
 * The seam for upstream keepalive (nginx's keepalive module): before
 * connecting, the request asks the pool for an idle connection to the peer;
 * when done it hands the connection back, saying whether it may be reused
 * (every expected reply read in full, no extra bytes). Without `keepalive`
 * the pool keeps nothing: every request connects and closes.
 */
export interface ConnectionPool {
  /** an idle, connected socket to `peer`, or undefined to connect anew */
  acquire(peer: string): Socket | undefined;
  /** give `socket` back; a pool closes whatever it does not keep */
  release(peer: string, socket: Socket, reusable: boolean): void;
}

/** No keepalive: a fresh connection per request, closed after. */
export const noPool: ConnectionPool = {
  acquire(): Socket | undefined {
    return undefined;
  },
  release(_peer: string, socket: Socket): void {
    socket.destroy();
  },
};
