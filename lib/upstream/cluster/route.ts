import type { UpstreamSrvConf } from '../conf.js';
import type { RtPeer } from '../peer_state.js';
import { NO_SLOT, routeOf } from './commands.js';
import { clusterStateOf, type ClusterNode, type ClusterState } from './state.js';
import { openUpstreamSocket, type SslRuntime } from '../ssl.js';

/*
 * One request's way through a Redis Cluster (the PeerPicker of a
 * `redis_cluster` upstream asks it for each try): the slot of the
 * request's keys, the node of the next try (the slot's primary, a replica
 * for read-only requests under `read_replicas`, or where a redirect
 * pointed), and what that try must send first: ASKING after -ASK, READONLY
 * on a replica. The protocol holds the first reply line back from the
 * client (lib/modules/redis2/handler.ts) and hands it to redirected();
 * only when it is no redirect does anything reach the client.
 */

/** redirects followed per request before the reply is passed on as it is */
export const MAX_REDIRECTS = 5;

export const enum Redirect {
  None,
  Moved,
  Ask,
  /** -CLUSTERDOWN / -TRYAGAIN: the same request again after a pause (an election, a migration step) */
  Retry,
}

/* the pause before the k-th retry after -CLUSTERDOWN / -TRYAGAIN: 50 ms doubling (1.55 s over 5) */
const RETRY_BASE_MS = 50;

export class ClusterRoute {
  readonly state: ClusterState;
  private readonly readReplicas: boolean;
  slot = NO_SLOT;
  readonly = false;
  private redirect: ClusterNode | undefined = undefined;
  private asking = false;
  redirects = 0;
  /** a try failed: later tries go to primaries (and the map is read again) */
  private failed = false;
  /** the current try goes to a replica (READONLY first) */
  onReplica = false;
  /** the current try follows -ASK (ASKING first) */
  askingNow = false;
  /** ms to wait before the next try (after -CLUSTERDOWN / -TRYAGAIN) */
  delay = 0;

  constructor(us: UpstreamSrvConf, readReplicas: boolean) {
    this.state = clusterStateOf(us);
    this.readReplicas = readReplicas;
  }

  /** the request's commands (keys, read-only-ness) */
  setQuery(q: Buffer): void {
    const r = routeOf(q, this.state.table);
    this.slot = r.slot;
    this.readonly = r.readonly;
  }

  next(): RtPeer | undefined {
    this.askingNow = false;
    this.onReplica = false;
    let node = this.redirect;
    if (node !== undefined) {
      this.askingNow = this.asking;
      this.redirect = undefined;
      this.asking = false;
      return node.peer;
    }
    if (this.readReplicas && this.readonly && !this.failed) {
      node = this.state.replica(this.slot);
      if (node !== undefined) {
        this.onReplica = true;
        return node.peer;
      }
    }
    return this.state.pick(this.slot)?.peer;
  }

  /**
   * The first line of the first reply (without CR LF): a -MOVED or -ASK
   * makes the next try go where it says (MOVED also updates the map and
   * asks for a refresh). Past MAX_REDIRECTS, the reply is passed on.
   */
  redirected(line: Buffer): Redirect {
    let kind: Redirect;
    let p: number;
    if (line.length > 7 && line.toString('latin1', 0, 7) === '-MOVED ') {
      kind = Redirect.Moved;
      p = 7;
    } else if (line.length > 5 && line.toString('latin1', 0, 5) === '-ASK ') {
      kind = Redirect.Ask;
      p = 5;
    } else if (startsWord(line, '-CLUSTERDOWN') || startsWord(line, '-TRYAGAIN')) {
      if (this.redirects >= MAX_REDIRECTS) return Redirect.None;
      this.delay = RETRY_BASE_MS << this.redirects;
      this.redirects++;
      this.state.refresh();
      return Redirect.Retry;
    } else return Redirect.None;
    if (this.redirects >= MAX_REDIRECTS) return Redirect.None;
    const sp = line.indexOf(0x20, p);
    if (sp < 0) return Redirect.None;
    const slot = Number(line.toString('latin1', p, sp));
    const node = this.state.nodeByText(line.toString('latin1', sp + 1));
    if (node === undefined) return Redirect.None;
    this.redirects++;
    this.redirect = node;
    if (kind === Redirect.Moved) {
      this.state.moved(slot, node);
      this.state.refresh();
    } else this.asking = true;
    return kind;
  }

  /** the pause before the next try, once */
  takeDelay(): number {
    const d = this.delay;
    this.delay = 0;
    return d;
  }

  /** a try failed (connection error, timeout): the map may have changed */
  tryFailed(): void {
    this.failed = true;
    this.state.refresh();
  }
}

function startsWord(line: Buffer, word: string): boolean {
  return line.length > word.length && line[word.length] === 0x20 && line.toString('latin1', 0, word.length) === word;
}

/* what a cluster try sends before the request's own commands */
export const ASKING = Buffer.from('*1\r\n$6\r\nASKING\r\n', 'latin1');
export const READONLY = Buffer.from('*1\r\n$8\r\nREADONLY\r\n', 'latin1');
const BOTH = Buffer.concat([READONLY, ASKING]);
const NONE = Buffer.alloc(0);

/** the commands the current try must send first, and how many replies they add */
export function clusterPrefix(route: ClusterRoute): { bytes: Buffer; skip: number } {
  if (route.askingNow && route.onReplica) return { bytes: BOTH, skip: 2 };
  if (route.askingNow) return { bytes: ASKING, skip: 1 };
  if (route.onReplica) return { bytes: READONLY, skip: 1 };
  return { bytes: NONE, skip: 0 };
}

/** the locations using the cluster speak TLS: so do its control connections (once set, kept) */
export function useTlsControl(route: ClusterRoute, ssl: SslRuntime, name: string): void {
  const state = route.state;
  if (state.tls) return;
  state.tls = true;
  state.connect = (host, port) => ({ socket: openUpstreamSocket({ name: `${host}:${port}`, host, port }, undefined, ssl, name), ready: 'secureConnect' });
  state.refresh();
}
