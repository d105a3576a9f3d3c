import { connect as netConnect, type Socket } from 'node:net';
import { joinBytes, lauxlib, lua, luaError, pushStr, toStr, u8buf, type LuaState } from './fengari.js';
import { currentThread, yieldFor } from './thread.js';
import type { LuaLocConf } from './conf.js';
import { setFn } from './vm.js';

/* the VM's strings are copied out (fengari.ts: no Buffer views of them); received bytes are copied in by lua_pushstring */
const EMPTY = new Uint8Array(0);

/*
 * ngx.socket.tcp cosockets (ngx_http_lua_socket_tcp.c, the part resty.redis
 * uses): connect (with a keep-alive pool keyed "host:port", or opts.pool),
 * send, receive ('*l', '*a', a byte count), receiveuntil, settimeout(s),
 * setkeepalive, getreusedtimes, close. Every wait yields the calling thread
 * to the event loop. Received bytes wait in a per-socket queue; a socket in
 * the pool has no reader (its data would be unexpected: it is closed).
 */

interface Cosocket {
  sock: Socket | undefined;
  buf: Buffer;
  closed: boolean;
  err: string | undefined;
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  reused: number;
  key: string;
  /** a receive waiting for more bytes */
  waiter: (() => void) | undefined;
}

interface Pooled {
  sock: Socket;
  reused: number;
  timer: NodeJS.Timeout;
}
const pools = new Map<string, Pooled[]>();

const SOCK = Symbol('cosocket');
type Holder = { [SOCK]: Cosocket };

function self(L: LuaState): Cosocket {
  if (lua.lua_type(L, 1) !== lua.LUA_TTABLE) luaError(L, 'bad argument #1: cosocket object expected');
  lua.lua_rawgeti(L, 1, 1);
  const h = lua.lua_touserdata(L, -1) as Holder | undefined;
  lua.lua_pop(L, 1);
  if (!h || !h[SOCK]) luaError(L, 'bad argument #1: cosocket object expected');
  return h![SOCK];
}

function fail(L: LuaState, msg: string, partial?: string): number {
  lua.lua_pushnil(L);
  pushStr(L, msg);
  if (partial === undefined) return 2;
  pushStr(L, partial);
  return 3;
}

function attach(c: Cosocket, s: Socket): void {
  c.sock = s;
  c.closed = false;
  s.removeAllListeners('data');
  s.removeAllListeners('close');
  s.removeAllListeners('error');
  s.on('data', (d: Buffer) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
    const w = c.waiter;
    c.waiter = undefined;
    w?.();
  });
  s.on('error', (e: NodeJS.ErrnoException) => {
    c.err = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ECONNRESET' ? 'connection reset by peer' : e.message;
  });
  s.on('close', () => {
    c.closed = true;
    const w = c.waiter;
    c.waiter = undefined;
    w?.();
  });
}

/** wait (yielding) until `ready` says the buffer can answer, the socket closes or the timeout fires */
function waitRead(L: LuaState, c: Cosocket, ready: () => boolean, answer: (co: LuaState, timedOut: boolean) => number): number {
  if (ready() || c.closed) return answer(L, false);
  return yieldFor(L, (wake) => {
    const timer = setTimeout(() => {
      c.waiter = undefined;
      wake((co) => answer(co, true));
    }, c.readTimeout);
    const check = (): void => {
      if (ready() || c.closed) {
        clearTimeout(timer);
        wake((co) => answer(co, false));
      } else c.waiter = check;
    };
    c.waiter = check;
  });
}

function receive(L: LuaState): number {
  const c = self(L);
  if (!c.sock) return fail(L, 'closed');
  const ty = lua.lua_type(L, 2);
  if (ty === lua.LUA_TNUMBER) {
    const n = lua.lua_tointeger(L, 2);
    return waitRead(L, c, () => c.buf.length >= n, (co, timedOut) => {
      if (c.buf.length >= n) {
        const out = c.buf.subarray(0, n);
        c.buf = c.buf.subarray(n);
        lua.lua_pushstring(co, out);
        return 1;
      }
      const partial = c.buf.toString('latin1');
      if (!timedOut) c.buf = Buffer.alloc(0);
      return fail(co, timedOut ? 'timeout' : 'closed', timedOut ? '' : partial);
    });
  }
  const pat = ty === lua.LUA_TNIL || ty === lua.LUA_TNONE ? '*l' : (toStr(L, 2) ?? '*l');
  if (pat === '*a') {
    return waitRead(L, c, () => false, (co, timedOut) => {
      if (timedOut) return fail(co, 'timeout', c.buf.toString('latin1'));
      lua.lua_pushstring(co, c.buf);
      c.buf = Buffer.alloc(0);
      return 1;
    });
  }
  if (pat !== '*l') luaError(L, `bad pattern argument: ${pat}`);
  return waitRead(L, c, () => c.buf.indexOf(10) !== -1, (co, timedOut) => {
    const nl = c.buf.indexOf(10);
    if (nl !== -1) {
      const end = nl > 0 && c.buf[nl - 1] === 13 ? nl - 1 : nl;
      lua.lua_pushstring(co, c.buf.subarray(0, end));
      c.buf = c.buf.subarray(nl + 1);
      return 1;
    }
    const partial = c.buf.toString('latin1');
    if (!timedOut) c.buf = Buffer.alloc(0);
    return fail(co, timedOut ? 'timeout' : 'closed', timedOut ? '' : partial);
  });
}

let confIndex = -1;
export function setSocketConfIndex(i: number): void {
  confIndex = i;
}

function newSocket(L: LuaState, mtRef: number): void {
  // the location's lua_socket_*_timeout, else nginx's 60 s
  const r = currentThread()?.r;
  const llcf = r ? (r.locConf[confIndex] as LuaLocConf | undefined) : undefined;
  const c: Cosocket = {
    sock: undefined, buf: Buffer.alloc(0), closed: true, err: undefined,
    connectTimeout: llcf?.socketConnectTimeout ?? 60000,
    sendTimeout: llcf?.socketSendTimeout ?? 60000,
    readTimeout: llcf?.socketReadTimeout ?? 60000,
    reused: 0, key: '', waiter: undefined,
  };
  lua.lua_createtable(L, 1, 0);
  lua.lua_pushlightuserdata(L, { [SOCK]: c } as Holder);
  lua.lua_rawseti(L, -2, 1);
  lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, mtRef);
  lua.lua_setmetatable(L, -2);
}

/** fill ngx.socket (the ngx table on top of the stack) */
export function installNgxSocket(L: LuaState): void {
  // the methods table, shared by every cosocket object
  lua.lua_newtable(L);
  const methods = (name: string, f: (L: LuaState) => number): void => setFn(L, name, f);
  methods('connect', (L1) => {
    const c = self(L1);
    const t = currentThread();
    if (!t || t.phase === 'set' || t.phase === 'header_filter' || t.phase === 'body_filter' || t.phase === 'log') {
      luaError(L1, `API disabled in the context of ${t ? t.phase + '_by_lua*' : 'this context'}`);
    }
    const host = toStr(L1, 2) ?? '';
    const port = lua.lua_type(L1, 3) === lua.LUA_TNUMBER ? lua.lua_tointeger(L1, 3) : 0;
    let key = `${host}:${port}`;
    if (lua.lua_type(L1, 4) === lua.LUA_TTABLE) {
      lua.lua_getfield(L1, 4, 'pool');
      if (lua.lua_type(L1, -1) === lua.LUA_TSTRING) key = toStr(L1, -1)!;
      lua.lua_pop(L1, 1);
    }
    if (c.sock && !c.closed) {
      c.sock.destroy();
      c.sock = undefined;
    }
    c.key = key;
    c.buf = Buffer.alloc(0);
    c.err = undefined;
    const pool = pools.get(key);
    const idle = pool?.pop();
    if (idle) {
      clearTimeout(idle.timer);
      c.reused = idle.reused + 1;
      attach(c, idle.sock);
      lua.lua_pushinteger(L1, 1);
      return 1;
    }
    if (host.startsWith('unix:')) luaError(L1, 'unix domain sockets are not supported');
    if (!port) luaError(L1, "bad argument #3 to 'connect' (number expected, got nil)");
    c.reused = 0;
    return yieldFor(L1, (wake) => {
      const s = netConnect({ host, port });
      attach(c, s);
      const timer = setTimeout(() => {
        s.destroy();
        wake((co) => fail(co, 'timeout'));
      }, c.connectTimeout);
      s.once('connect', () => {
        clearTimeout(timer);
        wake((co) => {
          lua.lua_pushinteger(co, 1);
          return 1;
        });
      });
      s.once('error', () => {
        clearTimeout(timer);
        wake((co) => fail(co, c.err ?? 'connect failed'));
      });
    });
  });
  methods('send', (L1) => {
    const c = self(L1);
    if (!c.sock || c.closed) return fail(L1, 'closed');
    let data: Buffer;
    if (lua.lua_type(L1, 2) === lua.LUA_TTABLE) {
      const parts: Uint8Array[] = [];
      const n = lua.lua_rawlen(L1, 2);
      for (let i = 1; i <= n; i++) {
        lua.lua_rawgeti(L1, 2, i);
        parts.push(lua.lua_tolstring(L1, -1) ?? EMPTY);
        lua.lua_pop(L1, 1);
      }
      data = joinBytes(parts);
    } else {
      const u = lua.lua_tolstring(L1, 2);
      if (u === null) luaError(L1, "bad argument #2 to 'send' (string, number, boolean, nil, or array table expected)");
      data = u8buf(u!);
    }
    c.sock.write(data);
    lua.lua_pushinteger(L1, data.length);
    return 1;
  });
  methods('receive', receive);
  methods('receiveuntil', (L1) => {
    const c = self(L1);
    const pat = Buffer.from(lua.lua_tolstring(L1, 2) ?? new Uint8Array(0));
    if (pat.length === 0) luaError(L1, 'pattern is empty');
    lua.lua_pushjsfunction(L1, (L2) => waitRead(L2, c, () => c.buf.indexOf(pat) !== -1, (co, timedOut) => {
      const at = c.buf.indexOf(pat);
      if (at !== -1) {
        lua.lua_pushstring(co, c.buf.subarray(0, at));
        c.buf = c.buf.subarray(at + pat.length);
        return 1;
      }
      const partial = c.buf.toString('latin1');
      if (!timedOut) c.buf = Buffer.alloc(0);
      return fail(co, timedOut ? 'timeout' : 'closed', timedOut ? '' : partial);
    }));
    return 1;
  });
  methods('settimeout', (L1) => {
    const c = self(L1);
    const ms = lauxlib.luaL_checknumber(L1, 2);
    c.connectTimeout = c.sendTimeout = c.readTimeout = ms > 0 ? ms : 60000;
    return 0;
  });
  methods('settimeouts', (L1) => {
    const c = self(L1);
    c.connectTimeout = lauxlib.luaL_checknumber(L1, 2) || 60000;
    c.sendTimeout = lauxlib.luaL_checknumber(L1, 3) || 60000;
    c.readTimeout = lauxlib.luaL_checknumber(L1, 4) || 60000;
    return 0;
  });
  methods('getreusedtimes', (L1) => {
    const c = self(L1);
    if (!c.sock) return fail(L1, 'closed');
    lua.lua_pushinteger(L1, c.reused);
    return 1;
  });
  methods('setkeepalive', (L1) => {
    const c = self(L1);
    const s = c.sock;
    if (!s || c.closed) return fail(L1, 'closed');
    if (c.buf.length) {
      s.destroy();
      c.sock = undefined;
      return fail(L1, 'unread data in buffer');
    }
    const idleMs = lua.lua_type(L1, 2) === lua.LUA_TNUMBER && lua.lua_tonumber(L1, 2) > 0 ? lua.lua_tonumber(L1, 2) : 60000;
    const size = lua.lua_type(L1, 3) === lua.LUA_TNUMBER ? lua.lua_tointeger(L1, 3) : 30;
    let pool = pools.get(c.key);
    if (!pool) pools.set(c.key, (pool = []));
    c.sock = undefined;
    s.removeAllListeners('data');
    s.removeAllListeners('close');
    if (pool.length >= size) pool.shift()?.sock.destroy();
    const entry: Pooled = { sock: s, reused: c.reused, timer: setTimeout(() => {
      s.destroy();
      const i = pool!.indexOf(entry);
      if (i !== -1) pool!.splice(i, 1);
    }, idleMs) };
    entry.timer.unref();
    // an idle pooled connection that speaks or closes is dropped
    const drop = (): void => {
      s.destroy();
      clearTimeout(entry.timer);
      const i = pool!.indexOf(entry);
      if (i !== -1) pool!.splice(i, 1);
    };
    s.on('data', drop);
    s.on('close', drop);
    pool.push(entry);
    lua.lua_pushinteger(L1, 1);
    return 1;
  });
  methods('close', (L1) => {
    const c = self(L1);
    if (!c.sock || c.closed) return fail(L1, 'closed');
    c.sock.destroy();
    c.sock = undefined;
    c.closed = true;
    lua.lua_pushinteger(L1, 1);
    return 1;
  });
  lua.lua_pushvalue(L, -1);
  lua.lua_setfield(L, -2, '__index');
  const mtRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
  lua.lua_newtable(L);
  setFn(L, 'tcp', (L1) => {
    newSocket(L1, mtRef);
    return 1;
  });
  lua.lua_setfield(L, -2, 'socket');
}
