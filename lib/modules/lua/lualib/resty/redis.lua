-- resty.redis for redis2d's Lua: the client API OpenResty's lua-resty-redis
-- offers (new, connect, set_timeout(s), set_keepalive, get_reused_times,
-- close, every Redis command as a lowercase method, init/commit/
-- cancel_pipeline, hmset, array_to_hash, read_reply and pub/sub,
-- add_commands), over redis2d's cosockets (ngx.socket.tcp). Written for
-- redis2d from the API's documented behaviour:
--   status reply  → the string without "+"
--   integer reply → a number
--   error reply   → false, "ERR ..."     (inside an array: {false, "ERR ..."})
--   bulk reply    → a string, or ngx.null for $-1
--   array reply   → a table, or ngx.null for *-1
-- and the error strings configs test for ("not initialized", "closed",
-- "timeout", "no pipeline", "subscribed state", "not subscribed").

local sub, byte, find, concat, tostring, tonumber, type, select, setmetatable, rawget, error =
  string.sub, string.byte, string.find, table.concat, tostring, tonumber, type, select, setmetatable, rawget, error
local rawset, pairs = rawset, pairs
local unpack = unpack or table.unpack
local tcp = ngx.socket.tcp
local null = ngx.null

local _M = { _VERSION = "0.32" }

-- a method per Redis command, made on first use (red:get, red:zrangebyscore, ...)
local commands = setmetatable({}, { __index = _M })
local mt = { __index = commands }

function _M.new(self)
  local sock, err = tcp()
  if not sock then return nil, err end
  return setmetatable({ _sock = sock, _subscribed = false }, mt)
end

function _M.set_timeout(self, timeout)
  local sock = rawget(self, "_sock")
  if not sock then error("not initialized", 2) end
  sock:settimeout(timeout)
end

function _M.set_timeouts(self, connect_timeout, send_timeout, read_timeout)
  local sock = rawget(self, "_sock")
  if not sock then error("not initialized", 2) end
  sock:settimeouts(connect_timeout, send_timeout, read_timeout)
end

function _M.connect(self, host, port_or_opts, opts)
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  if type(host) ~= "string" then
    error("bad argument #1 host: string expected, got " .. type(host), 2)
  end
  local unix = sub(host, 1, 5) == "unix:"
  local port
  if unix then
    opts = port_or_opts
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #2 opts: nil or table expected, got " .. type(opts), 2)
    end
  else
    port = port_or_opts
    if port ~= nil and type(port) ~= "number" then
      port = tonumber(port)
      if port == nil then
        error("bad argument #2 port: number expected, got " .. type(port_or_opts), 2)
      end
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #3 opts: nil or table expected, got " .. type(opts), 2)
    end
  end
  self._subscribed = false

  -- the cosocket pool options go to connect as they are (pool, pool_size, backlog)
  local sock_opts
  if opts and (opts.pool or opts.pool_size or opts.backlog) then
    sock_opts = { pool = opts.pool, pool_size = opts.pool_size, backlog = opts.backlog }
  end
  local ok, err
  if unix then
    ok, err = sock:connect(host, sock_opts)
  else
    ok, err = sock:connect(host, port, sock_opts)
  end
  if not ok then return ok, err end

  if opts and opts.ssl then
    ok, err = sock:sslhandshake(false, opts.server_name, opts.ssl_verify)
    if not ok then return ok, "failed to do ssl handshake: " .. tostring(err) end
  end
  return ok, err
end

function _M.set_keepalive(self, ...)
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  if rawget(self, "_subscribed") then return nil, "subscribed state" end
  return sock:setkeepalive(...)
end

function _M.get_reused_times(self)
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  return sock:getreusedtimes()
end

function _M.close(self)
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  return sock:close()
end

-- one reply from the socket, as the table at the top says
local function read_one(self, sock)
  local line, err = sock:receive()
  if not line then
    -- a timed-out connection is in an unknown state: never reuse it
    if err == "timeout" and not rawget(self, "_subscribed") then sock:close() end
    return nil, err
  end
  local kind = byte(line, 1)
  if kind == 36 then -- $ bulk
    local size = tonumber(sub(line, 2))
    if size == nil then return nil, "bad bulk length: " .. line end
    if size < 0 then return null end
    local data, err2 = sock:receive(size)
    if not data then
      if err2 == "timeout" then sock:close() end
      return nil, err2
    end
    local crlf, err3 = sock:receive(2)
    if not crlf then return nil, err3 end
    return data
  elseif kind == 43 then -- + status
    return sub(line, 2)
  elseif kind == 42 then -- * array
    local n = tonumber(sub(line, 2))
    if n == nil then return nil, "bad array length: " .. line end
    if n < 0 then return null end
    local vals = {}
    for i = 1, n do
      local v, verr = read_one(self, sock)
      if v == nil then return nil, verr end
      -- an error inside an array keeps its message next to the false
      if v == false then vals[i] = { false, verr } else vals[i] = v end
    end
    return vals
  elseif kind == 58 then -- : integer
    return tonumber(sub(line, 2))
  elseif kind == 45 then -- - error
    return false, sub(line, 2)
  end
  return nil, 'unknown prefix: "' .. tostring(kind) .. '"'
end

-- the RESP array of a command and its arguments, as one string
local function request(cmd, ...)
  local n = select("#", ...)
  local parts = { "*", n + 1, "\r\n$", #cmd, "\r\n", cmd, "\r\n" }
  local k = #parts
  for i = 1, n do
    local arg = select(i, ...)
    if type(arg) ~= "string" then arg = tostring(arg) end
    parts[k + 1] = "$"
    parts[k + 2] = #arg
    parts[k + 3] = "\r\n"
    parts[k + 4] = arg
    parts[k + 5] = "\r\n"
    k = k + 5
  end
  return concat(parts)
end

local function is_message(self, res)
  return rawget(self, "_subscribed") and type(res) == "table"
    and (res[1] == "message" or res[1] == "pmessage" or res[1] == "smessage")
end

local function run(self, cmd, ...)
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  local req = request(cmd, ...)
  local reqs = rawget(self, "_reqs")
  if reqs then
    reqs[#reqs + 1] = req
    return
  end
  local bytes, err = sock:send(req)
  if not bytes then return nil, err end
  local res, rerr = read_one(self, sock)
  -- messages published while (un)subscribing wait for read_reply
  while is_message(self, res) do
    local q = rawget(self, "_queued")
    if not q then q = {}; self._queued = q end
    q[#q + 1] = res
    res, rerr = read_one(self, sock)
  end
  return res, rerr
end

local SUBSCRIBE = { subscribe = true, psubscribe = true, ssubscribe = true }
local UNSUBSCRIBE = { unsubscribe = true, punsubscribe = true, sunsubscribe = true }

local function command(self, cmd, ...)
  if SUBSCRIBE[cmd] then
    local res, err = run(self, cmd, ...)
    if not res then return res, err end
    self._subscribed = true
    -- one confirmation per channel: the first is the result, the rest are read now
    local n = select("#", ...)
    if n > 1 then
      local all = { res }
      for i = 2, n do
        local more, merr = read_one(self, rawget(self, "_sock"))
        if not more then return more, merr end
        all[i] = more
      end
      return all
    end
    return res
  end
  if UNSUBSCRIBE[cmd] then
    if not rawget(self, "_subscribed") then return nil, "not subscribed" end
    local res, err = run(self, cmd, ...)
    if not res then return res, err end
    local n = select("#", ...)
    if n > 1 then
      local all = { res }
      for i = 2, n do
        local more, merr = read_one(self, rawget(self, "_sock"))
        if not more then return more, merr end
        all[i] = more
      end
      res = all
    end
    local last = n > 1 and res[#res] or res
    if type(last) == "table" and last[3] == 0 then self._subscribed = false end
    return res
  end
  return run(self, cmd, ...)
end

setmetatable(commands, {
  __index = function(t, name)
    local m = _M[name]
    if m ~= nil then return m end
    if type(name) ~= "string" then return nil end
    local method = function(self, ...) return command(self, name, ...) end
    rawset(t, name, method)
    return method
  end,
})

function _M.read_reply(self)
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  if not rawget(self, "_subscribed") then return nil, "not subscribed" end
  local q = rawget(self, "_queued")
  if q and #q > 0 then return table.remove(q, 1) end
  local res, err = read_one(self, sock)
  if type(res) == "table" and UNSUBSCRIBE[res[1]] and res[3] == 0 then self._subscribed = false end
  return res, err
end

function _M.hmset(self, hashname, ...)
  if select("#", ...) == 1 then
    local t = ...
    if type(t) == "table" then
      local args = {}
      for k, v in pairs(t) do
        args[#args + 1] = k
        args[#args + 1] = v
      end
      return command(self, "hmset", hashname, unpack(args))
    end
  end
  return command(self, "hmset", hashname, ...)
end

function _M.init_pipeline(self, n)
  self._reqs = {}
end

function _M.cancel_pipeline(self)
  self._reqs = nil
end

function _M.commit_pipeline(self)
  local reqs = rawget(self, "_reqs")
  if not reqs then return nil, "no pipeline" end
  self._reqs = nil
  local sock = rawget(self, "_sock")
  if not sock then return nil, "not initialized" end
  local bytes, err = sock:send(reqs)
  if not bytes then return nil, err end
  local vals = {}
  for i = 1, #reqs do
    local v, verr = read_one(self, sock)
    if v == nil then
      if verr == "timeout" then sock:close() end
      return nil, verr
    end
    if v == false then vals[i] = { false, verr } else vals[i] = v end
  end
  return vals
end

function _M.array_to_hash(self, t)
  local h = {}
  for i = 1, #t, 2 do h[t[i]] = t[i + 1] end
  return h
end

-- kept for old configs: every name is a method already
function _M.add_commands(...)
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    rawset(commands, name, function(self, ...) return command(self, name, ...) end)
  end
end

return _M
