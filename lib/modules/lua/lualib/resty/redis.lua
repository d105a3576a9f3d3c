-- resty.redis for redis2d: the API of OpenResty's lua-resty-redis (new,
-- connect, set_timeout(s), set_keepalive, get_reused_times, close, any
-- Redis command as a method, init/commit/cancel_pipeline, read_reply,
-- hmset with a table, array_to_hash), written for redis2d over
-- ngx.socket.tcp. Replies: status -> string, error -> false + message,
-- integer -> number, bulk -> string or ngx.null, array -> table.

local tcp = ngx.socket.tcp
local null = ngx.null
local concat, insert, remove = table.concat, table.insert, table.remove
local sub, byte, tostring, tonumber = string.sub, string.byte, tostring, tonumber
local setmetatable, type, select, rawget = setmetatable, type, select, rawget
-- fields of an instance are read with rawget: any other name is a Redis command (see the end)

local _M = { _VERSION = "0.29" }
local mt = { __index = _M }

function _M.new(self)
  local sock, err = tcp()
  if not sock then
    return nil, err
  end
  return setmetatable({ _sock = sock }, mt)
end

function _M.set_timeout(self, timeout)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  sock:settimeout(timeout)
  return 1
end

function _M.set_timeouts(self, connect, send, read)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  sock:settimeouts(connect, send, read)
  return 1
end

function _M.connect(self, host, port, opts)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  self._subscribed = false
  return sock:connect(host, port, opts)
end

function _M.set_keepalive(self, ...)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  if rawget(self, "_subscribed") then return nil, "subscribed state" end
  return sock:setkeepalive(...)
end

function _M.get_reused_times(self)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  return sock:getreusedtimes()
end

function _M.close(self)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  return sock:close()
end

local function read_reply(self, sock)
  local line, err = sock:receive()
  if not line then
    if err == "timeout" and not rawget(self, "_subscribed") then
      sock:close()
    end
    return nil, err
  end
  local prefix = byte(line)
  if prefix == 36 then -- $ bulk
    local size = tonumber(sub(line, 2))
    if size < 0 then
      return null
    end
    local data, err2 = sock:receive(size)
    if not data then
      if err2 == "timeout" then sock:close() end
      return nil, err2
    end
    local dummy, err3 = sock:receive(2) -- CRLF
    if not dummy then
      return nil, err3
    end
    return data
  elseif prefix == 43 then -- + status
    return sub(line, 2)
  elseif prefix == 42 then -- * array
    local n = tonumber(sub(line, 2))
    if n < 0 then
      return null
    end
    local vals = {}
    for i = 1, n do
      local res, err2 = read_reply(self, sock)
      if res then
        vals[i] = res
      elseif res == nil then
        return nil, err2
      else
        -- an error reply inside an array: kept as { false, msg }
        vals[i] = { false, err2 }
      end
    end
    return vals
  elseif prefix == 58 then -- : integer
    return tonumber(sub(line, 2))
  elseif prefix == 45 then -- - error
    return false, sub(line, 2)
  end
  return nil, "bad reply"
end

local function build(args)
  local n = #args
  local req = { "*", n, "\r\n" }
  for i = 1, n do
    local a = args[i]
    if type(a) ~= "string" then
      a = tostring(a)
    end
    req[#req + 1] = "$"
    req[#req + 1] = #a
    req[#req + 1] = "\r\n"
    req[#req + 1] = a
    req[#req + 1] = "\r\n"
  end
  return concat(req)
end

local function do_cmd(self, ...)
  local args = { ... }
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  local req = build(args)
  local reqs = rawget(self, "_reqs")
  if reqs then
    reqs[#reqs + 1] = req
    return true
  end
  local bytes, err = sock:send(req)
  if not bytes then
    return nil, err
  end
  return read_reply(self, sock)
end

function _M.read_reply(self)
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  return read_reply(self, sock)
end

function _M.init_pipeline(self, n)
  self._reqs = {}
end

function _M.cancel_pipeline(self)
  self._reqs = nil
end

function _M.commit_pipeline(self)
  local reqs = rawget(self, "_reqs")
  if not reqs then
    return nil, "no pipeline"
  end
  self._reqs = nil
  local sock = self._sock
  if not sock then return nil, "not initialized" end
  local bytes, err = sock:send(concat(reqs))
  if not bytes then
    return nil, err
  end
  local vals = {}
  for i = 1, #reqs do
    local res, err2 = read_reply(self, sock)
    if res then
      vals[i] = res
    elseif res == nil then
      if err2 == "timeout" then self:close() end
      return nil, err2
    else
      vals[i] = { false, err2 }
    end
  end
  return vals
end

function _M.hmset(self, hashname, ...)
  if select("#", ...) == 1 then
    local t = select(1, ...)
    local args = {}
    for k, v in pairs(t) do
      args[#args + 1] = k
      args[#args + 1] = v
    end
    return do_cmd(self, "hmset", hashname, unpack(args))
  end
  return do_cmd(self, "hmset", hashname, ...)
end

function _M.array_to_hash(self, t)
  local h = {}
  for i = 1, #t, 2 do
    h[t[i]] = t[i + 1]
  end
  return h
end

-- every other method name is a Redis command
setmetatable(_M, { __index = function(t, cmd)
  local f = function(self, ...)
    return do_cmd(self, cmd, ...)
  end
  rawset(t, cmd, f)
  return f
end })

return _M
