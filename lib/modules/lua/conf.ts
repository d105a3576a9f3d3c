import type { ComplexValue } from '../../http/script.js';

/** one *_by_lua* handler's code: inline text, or a file path (a complex value) */
export interface LuaChunk {
  /** the directive that gave it (content_by_lua, ...): errors name it */
  directive: string;
  /** inline code, compiled under `name` */
  code: Buffer | undefined;
  /** `=content_by_lua(nginx.conf:12)` for inline code */
  name: string;
  /** *_by_lua_file: the path, maybe with variables */
  file: ComplexValue | undefined;
  /** the compiled function's registry ref per path (files) or under '' (inline) */
  refs: Map<string, number>;
}

export interface LuaMainConf {
  sharedDicts: Map<string, number>;
  codeCache: boolean;
}

export interface LuaLocConf {
  rewrite: LuaChunk | undefined;
  access: LuaChunk | undefined;
  content: LuaChunk | undefined;
  headerFilter: LuaChunk | undefined;
  bodyFilter: LuaChunk | undefined;
  log: LuaChunk | undefined;
  /** lua_code_cache (-1 unset) */
  codeCache: number;
  needRequestBody: number;
  /** lua_http10_buffering (default on) */
  http10Buffering: number;
  /** lua_socket_connect_timeout / send / read, ms (-1 unset) */
  socketConnectTimeout: number;
  socketSendTimeout: number;
  socketReadTimeout: number;
}
