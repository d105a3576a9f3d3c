import net, { type Socket } from 'node:net';
import type { UpstreamSrvConf } from '../conf.js';
import type { RtPeer } from '../peer_state.js';
import { commandTable, type CommandTable } from './commands.js';
import { RespError, parseResp, type RespValue } from './resp_value.js';
import { SLOTS } from './slot.js';

/*
 * **extension** `redis_cluster`: one worker's view of a Redis Cluster
 * behind an upstream block, kept per upstream (and per worker, as nginx
 * keeps peer state without a zone). The `server` lines are seeds; the slot
 * map (CLUSTER SHARDS, or CLUSTER SLOTS on servers without it) and the
 * command table (COMMAND, for key positions) are read over a control
 * connection of their own when the worker starts, and again whenever a
 * request learns the map changed (-MOVED) or a node failed. One refresh
 * runs at a time; asks that come meanwhile make one more run after it,
 * at most every REFRESH_GAP ms, and every REFRESH_PERIOD ms anyway. Requests never wait for a refresh: before
 * the first map arrives they go to a seed and follow its -MOVED.
 */

const REFRESH_GAP = 100;
/* the map is also read this often, to see changes no request ran into (new replicas) */
const REFRESH_PERIOD = 10000;
const CONTROL_TIMEOUT = 2000;

export interface ClusterNode {
  /** `host:port` as Redis names it in -MOVED and as $upstream_addr shows it */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** a peer object for the generic upstream loop (no max_fails accounting: the map decides) */
  readonly peer: RtPeer;
}

interface Shard {
  primary: ClusterNode | undefined;
  replicas: ClusterNode[];
  /** round robin over replicas */
  rr: number;
}

/** opens a control connection (plain or TLS, as the locations using the cluster connect) */
export type ClusterConnect = (host: string, port: number) => { socket: Socket; ready: string };

const plainConnect: ClusterConnect = (host, port) => ({ socket: net.connect({ host, port }), ready: 'connect' });

function nodePeer(host: string, port: number, name: string): RtPeer {
  const family = host.includes(':') ? 'inet6' : 'inet';
  const conf = {
    addr: { family, host, port, name } as const,
    server: name,
    weight: 1,
    maxConns: 0,
    maxFails: 0,
    failTimeout: 10,
    down: false,
  };
  return {
    conf,
    name,
    server: name,
    index: 0,
    weight: 1,
    maxFails: 0,
    failTimeout: 10,
    down: false,
    effectiveWeight: 1,
    currentWeight: 0,
    conns: 0,
    fails: 0,
    accessed: 0,
    checked: 0,
  };
}

function hostPortName(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** ask `cmds` on a fresh control connection; every reply, or a rejection */
function ask(connect: ClusterConnect, host: string, port: number, cmds: string[][]): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    const { socket, ready } = connect(host, port);
    let buf: Buffer = Buffer.alloc(0);
    const out: RespValue[] = [];
    let pos = 0;
    const done = (e: Error | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      if (e) reject(e);
      else resolve(out);
    };
    const timer = setTimeout(() => done(new Error('cluster control connection timed out')), CONTROL_TIMEOUT);
    timer.unref();
    socket.on('error', (e) => done(e));
    socket.on('close', () => done(new Error('cluster control connection closed')));
    socket.once(ready, () => {
      const parts: string[] = [];
      for (const c of cmds) {
        parts.push(`*${c.length}\r\n`);
        for (const a of c) parts.push(`$${Buffer.byteLength(a)}\r\n${a}\r\n`);
      }
      socket.write(parts.join(''));
    });
    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        let v: [RespValue, number] | undefined;
        try {
          v = parseResp(buf, pos);
        } catch (e) {
          return done(e as Error);
        }
        if (v === undefined) return;
        out.push(v[0]);
        pos = v[1];
        if (out.length === cmds.length) return done(undefined);
      }
    });
  });
}

/** a flat key/value list (RESP2 form of a map) as a lookup */
function fields(v: RespValue): Map<string, RespValue> {
  const m = new Map<string, RespValue>();
  if (!Array.isArray(v)) return m;
  for (let i = 0; i + 1 < v.length; i += 2) if (typeof v[i] === 'string') m.set(v[i] as string, v[i + 1]!);
  return m;
}

export class ClusterState {
  readonly seeds: ClusterNode[];
  private readonly nodes = new Map<string, ClusterNode>();
  /** the shard owning each slot, -1 unknown */
  private readonly slotShard = new Int16Array(SLOTS).fill(-1);
  private shards: Shard[] = [];
  table: CommandTable | undefined = undefined;
  /** maps applied so far (tests and status) */
  version = 0;
  private refreshing = false;
  private again = false;
  private last = 0;
  private seedRr = 0;
  connect: ClusterConnect = plainConnect;
  /** the control connection prefers tls-port when the locations speak TLS */
  tls = false;

  constructor(us: UpstreamSrvConf) {
    const seeds: ClusterNode[] = [];
    for (const s of us.servers ?? []) {
      for (const a of s.addrs) if (a.family !== 'unix') seeds.push(this.node(a.host, a.port));
    }
    this.seeds = seeds;
    // the timer must not keep the state alive: after a reload the old config (and this state) goes away
    const self = new WeakRef(this);
    const timer: NodeJS.Timeout = setInterval(() => {
      const st = self.deref();
      if (st === undefined) clearInterval(timer);
      else st.refresh();
    }, REFRESH_PERIOD);
    timer.unref();
  }

  /** the node named `host:port` (from -MOVED, -ASK or the map), made once */
  node(host: string, port: number): ClusterNode {
    const name = hostPortName(host, port);
    let n = this.nodes.get(name);
    if (n === undefined) {
      n = { name, host, port, peer: nodePeer(host, port, name) };
      this.nodes.set(name, n);
    }
    return n;
  }

  /** `host:port` text of a redirect; undefined when it is not one */
  nodeByText(text: string): ClusterNode | undefined {
    const i = text.lastIndexOf(':');
    if (i <= 0) return undefined;
    const port = Number(text.slice(i + 1));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
    let host = text.slice(0, i);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    return this.node(host, port);
  }

  get ready(): boolean {
    return this.version > 0;
  }

  /** the primary owning `slot` (any primary for NO_SLOT), else a seed */
  pick(slot: number): ClusterNode | undefined {
    const sh = this.shardOf(slot);
    if (sh?.primary !== undefined) return sh.primary;
    return this.seeds.length > 0 ? this.seeds[this.seedRr++ % this.seeds.length] : undefined;
  }

  /** a replica of the shard owning `slot`, round robin; undefined when it has none */
  replica(slot: number): ClusterNode | undefined {
    const sh = this.shardOf(slot);
    if (sh === undefined || sh.replicas.length === 0) return undefined;
    return sh.replicas[sh.rr++ % sh.replicas.length];
  }

  private shardOf(slot: number): Shard | undefined {
    if (slot >= 0) {
      const i = this.slotShard[slot]!;
      return i >= 0 ? this.shards[i] : undefined;
    }
    // no key: any primary answers
    return this.shards.length > 0 ? this.shards[this.seedRr++ % this.shards.length] : undefined;
  }

  /** -MOVED: the slot is owned elsewhere now (kept until the next refresh replaces the map) */
  moved(slot: number, node: ClusterNode): void {
    if (slot < 0 || slot >= SLOTS) return;
    let i = this.shards.findIndex((s) => s.primary === node);
    if (i < 0) {
      i = this.shards.length;
      this.shards.push({ primary: node, replicas: [], rr: 0 });
    }
    this.slotShard[slot] = i;
  }

  /** read the map again (soon); never more than one control exchange at a time */
  refresh(): void {
    if (this.refreshing) {
      this.again = true;
      return;
    }
    this.refreshing = true;
    const wait = Math.max(0, this.last + REFRESH_GAP - Date.now());
    const t = setTimeout(() => {
      this.load()
        .catch(() => undefined)
        .finally(() => {
          this.last = Date.now();
          this.refreshing = false;
          if (this.again) {
            this.again = false;
            this.refresh();
          }
        });
    }, wait);
    t.unref();
  }

  /** the nodes to ask, primaries first, then replicas, then the seeds */
  private candidates(): ClusterNode[] {
    const out: ClusterNode[] = [];
    const seen = new Set<ClusterNode>();
    const add = (n: ClusterNode | undefined): void => {
      if (n !== undefined && !seen.has(n)) {
        seen.add(n);
        out.push(n);
      }
    };
    for (const s of this.shards) add(s.primary);
    for (const s of this.shards) for (const r of s.replicas) add(r);
    for (const s of this.seeds) add(s);
    return out;
  }

  private async load(): Promise<void> {
    for (const n of this.candidates()) {
      const cmds = [['CLUSTER', 'SHARDS']];
      if (this.table === undefined) cmds.push(['COMMAND']);
      let replies: RespValue[];
      try {
        replies = await ask(this.connect, n.host, n.port, cmds);
      } catch {
        continue;
      }
      if (replies[1] !== undefined && this.table === undefined) this.table = commandTable(replies[1]);
      let ok = replies[0] instanceof RespError ? false : this.applyShards(replies[0]!);
      if (!ok) {
        try {
          const [slots] = await ask(this.connect, n.host, n.port, [['CLUSTER', 'SLOTS']]);
          ok = this.applySlots(slots!);
        } catch {
          continue;
        }
      }
      if (ok) return;
    }
  }

  private install(shards: Shard[], ranges: Array<[number, number, number]>): boolean {
    if (ranges.length === 0) return false;
    this.slotShard.fill(-1);
    for (const [a, b, i] of ranges) this.slotShard.fill(i, a, Math.min(b, SLOTS - 1) + 1);
    this.shards = shards;
    this.version++;
    return true;
  }

  /** CLUSTER SHARDS (Redis 7) */
  private applyShards(v: RespValue): boolean {
    if (!Array.isArray(v)) return false;
    const shards: Shard[] = [];
    const ranges: Array<[number, number, number]> = [];
    for (const s of v) {
      const f = fields(s);
      const slots = f.get('slots');
      const nodes = f.get('nodes');
      if (!Array.isArray(slots) || !Array.isArray(nodes) || slots.length === 0) continue;
      const sh: Shard = { primary: undefined, replicas: [], rr: 0 };
      for (const nv of nodes) {
        const nf = fields(nv);
        const host = (nf.get('ip') ?? nf.get('endpoint')) as string | undefined;
        const port = (this.tls ? (nf.get('tls-port') ?? nf.get('port')) : (nf.get('port') ?? nf.get('tls-port'))) as number | undefined;
        if (typeof host !== 'string' || typeof port !== 'number' || port <= 0) continue;
        const node = this.node(host, port);
        const health = nf.get('health');
        if (nf.get('role') === 'master') sh.primary = node;
        // Redis 7.0 reports a replica `loading` until its replication offset moves: only `failed` is left out
        else if (health !== 'failed') sh.replicas.push(node);
      }
      const i = shards.push(sh) - 1;
      for (let k = 0; k + 1 < slots.length; k += 2) ranges.push([Number(slots[k]), Number(slots[k + 1]), i]);
    }
    return this.install(shards, ranges);
  }

  /** CLUSTER SLOTS (before Redis 7) */
  private applySlots(v: RespValue): boolean {
    if (!Array.isArray(v)) return false;
    const shards: Shard[] = [];
    const byPrimary = new Map<ClusterNode, number>();
    const ranges: Array<[number, number, number]> = [];
    for (const e of v) {
      if (!Array.isArray(e) || e.length < 3) continue;
      const nodes: ClusterNode[] = [];
      for (const nv of e.slice(2)) {
        if (!Array.isArray(nv) || typeof nv[0] !== 'string' || typeof nv[1] !== 'number') continue;
        nodes.push(this.node(nv[0], nv[1]));
      }
      if (nodes.length === 0) continue;
      let i = byPrimary.get(nodes[0]!);
      if (i === undefined) {
        i = shards.push({ primary: nodes[0], replicas: nodes.slice(1), rr: 0 }) - 1;
        byPrimary.set(nodes[0]!, i);
      }
      ranges.push([Number(e[0]), Number(e[1]), i]);
    }
    return this.install(shards, ranges);
  }
}

const states = new WeakMap<UpstreamSrvConf, ClusterState>();

/** this worker's state of a `redis_cluster` upstream, made (and its first refresh started) on first use */
export function clusterStateOf(us: UpstreamSrvConf): ClusterState {
  let s = states.get(us);
  if (s === undefined) {
    s = new ClusterState(us);
    states.set(us, s);
    s.refresh();
  }
  return s;
}
