-- cjson for redis2d's Lua: the API and the output of OpenResty's lua-cjson
-- (the C module OpenResty bundles), written in plain Lua so it runs in the
-- embedded VM. What configs see is the same: the functions and settings,
-- the bytes `encode` produces (numbers with %.14g as LuaJIT's doubles give
-- them, `/` escaped, DEL as \u007f), the tables `decode` builds, cjson.null
-- being ngx.null, and the error messages ("Expected value but found
-- invalid token at character 1", "Cannot serialise function: type not
-- supported"). One difference is unavoidable: the order of an object's
-- keys follows this VM's table traversal, not LuaJIT's (JSON objects are
-- unordered; a config that needs an order sorts its keys).

local byte, char, find, format, sub, gsub, concat =
  string.byte, string.char, string.find, string.format, string.sub, string.gsub, table.concat
local type, pairs, tostring, tonumber, error, setmetatable, getmetatable, floor, huge =
  type, pairs, tostring, tonumber, error, setmetatable, getmetatable, math.floor, math.huge
local rawget = rawget

local cjson_new

-- ngx.null when it exists (cjson.null == ngx.null in OpenResty: both are
-- the NULL light userdata), else a value of our own
local null = (ngx ~= nil and ngx.null) or setmetatable({}, { __tostring = function() return "userdata: NULL" end })

-- markers of OpenResty's cjson: tables with array_mt encode as arrays,
-- empty_array encodes as [], tables with empty_array_mt as [] when empty
local array_mt = setmetatable({}, { __tostring = function() return "cjson.array_mt" end })
local empty_array_mt = setmetatable({}, { __tostring = function() return "cjson.empty_array_mt" end })
local empty_array = setmetatable({}, { __tostring = function() return "userdata: 0x0" end })

local ESCAPE = {
  ["\b"] = "\\b", ["\t"] = "\\t", ["\n"] = "\\n", ["\f"] = "\\f", ["\r"] = "\\r",
  ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\127"] = "\\u007f",
}
for b = 0, 31 do
  local c = char(b)
  if not ESCAPE[c] then ESCAPE[c] = format("\\u%04x", b) end
end
local ESCAPE_NO_SLASH = {}
for k, v in pairs(ESCAPE) do ESCAPE_NO_SLASH[k] = v end
ESCAPE_NO_SLASH["/"] = nil

local function typename(v)
  if v == null or v == empty_array then return "userdata" end
  return type(v)
end

function cjson_new()
  local cfg = {
    sparse_convert = false, sparse_ratio = 2, sparse_safe = 10,
    encode_max_depth = 1000, decode_max_depth = 1000,
    encode_invalid_numbers = false, decode_invalid_numbers = true,
    keep_buffer = true, precision = 14, empty_table_as_object = true,
    decode_array_with_array_mt = false, escape_slash = true,
    skip_unsupported = false,
  }
  -- nil: the default precision, 14, which is the VM's own number conversion
  local number_fmt = nil
  local escape = ESCAPE
  local escape_pattern = '[%c"\\/\127]'

  local M = {}

  local function throw(v, reason)
    error(format("Cannot serialise %s: %s", typename(v), reason), 0)
  end

  local function number(n, key)
    if n ~= n or n == huge or n == -huge then
      local inv = cfg.encode_invalid_numbers
      if inv == true then
        if n ~= n then return "NaN" end
        return n > 0 and "Infinity" or "-Infinity"
      elseif inv == "null" then
        return "null"
      end
      throw(n, "must not be NaN or Infinity")
    end
    -- the VM converts numbers as LuaJIT does (C's %.14g): the default precision
    if number_fmt == nil then return tostring(n) end
    return format(number_fmt, n)
  end

  local function str(s)
    return '"' .. gsub(s, escape_pattern, escape) .. '"'
  end

  -- the length of a table that is a pure array (positive integer keys), or -1
  local function array_length(t)
    local max, items = 0, 0
    for k in pairs(t) do
      if type(k) == "number" and k >= 1 and floor(k) == k then
        if k > max then max = k end
        items = items + 1
      else
        return -1
      end
    end
    if cfg.sparse_ratio > 0 and max > items * cfg.sparse_ratio and max > cfg.sparse_safe then
      if not cfg.sparse_convert then throw(t, "excessively sparse array") end
      return -1
    end
    return max
  end

  local encode_value

  local function encode_array(t, n, depth, buf)
    buf[#buf + 1] = "["
    local first = true
    for i = 1, n do
      local mark = #buf
      if not first then buf[#buf + 1] = "," end
      if encode_value(t[i], depth, buf) then
        for j = #buf, mark + 1, -1 do buf[j] = nil end
      else
        first = false
      end
    end
    buf[#buf + 1] = "]"
  end

  local function encode_object(t, depth, buf)
    buf[#buf + 1] = "{"
    local first = true
    for k, v in pairs(t) do
      local mark = #buf
      if not first then buf[#buf + 1] = "," end
      local kt = type(k)
      if kt == "number" then
        buf[#buf + 1] = '"' .. number(k) .. '":'
      elseif kt == "string" then
        buf[#buf + 1] = str(k) .. ":"
      else
        throw(k, "table key must be a number or string")
      end
      if encode_value(v, depth, buf) then
        for j = #buf, mark + 1, -1 do buf[j] = nil end
      else
        first = false
      end
    end
    buf[#buf + 1] = "}"
  end

  -- true when the value was skipped (encode_skip_unsupported_value_types)
  function encode_value(v, depth, buf)
    local t = type(v)
    if t == "string" then
      buf[#buf + 1] = str(v)
    elseif t == "number" then
      buf[#buf + 1] = number(v)
    elseif t == "boolean" then
      buf[#buf + 1] = v and "true" or "false"
    elseif t == "nil" or v == null then
      buf[#buf + 1] = "null"
    elseif v == empty_array then
      buf[#buf + 1] = "[]"
    elseif t == "table" then
      depth = depth + 1
      if depth > cfg.encode_max_depth then
        error(format("Cannot serialise, excessive nesting (%d)", depth), 0)
      end
      local mt = getmetatable(v)
      if mt == array_mt then
        encode_array(v, #v, depth, buf)
        return false
      end
      if mt ~= nil and rawget(mt, "__len") then
        encode_array(v, #v, depth, buf)
        return false
      end
      local n = array_length(v)
      if n > 0 or (n == 0 and not cfg.empty_table_as_object) then
        encode_array(v, n, depth, buf)
      elseif n == 0 and mt == empty_array_mt then
        buf[#buf + 1] = "[]"
      else
        encode_object(v, depth, buf)
      end
    else
      if cfg.skip_unsupported then return true end
      throw(v, "type not supported")
    end
    return false
  end

  function M.encode(...)
    if select("#", ...) ~= 1 then error("bad argument #1 to 'encode' (expected 1 argument)", 0) end
    local buf = {}
    encode_value((...), 0, buf)
    return concat(buf)
  end

  -- ---- decoding

  local WS = "^[ \t\n\r]*"

  local function parse_error(expected, found, at)
    error(format("Expected %s but found %s at character %d", expected, found, at), 0)
  end

  local function utf8_of(cp)
    if cp < 0x80 then return char(cp) end
    if cp < 0x800 then return char(0xc0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
    if cp < 0x10000 then
      return char(0xe0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end
    return char(0xf0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40, 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end

  local SIMPLE = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }

  -- a token at `pos` (after whitespace): kind, value, next position, start
  -- kinds: "{" "}" "[" "]" "," ":" "string" "number" "boolean" "null" "end" "error"
  local function token(s, pos)
    local _, e = find(s, WS, pos)
    pos = e + 1
    local c = sub(s, pos, pos)
    if c == "" or c == "\0" then return "end", nil, pos, pos end
    if c == "{" or c == "}" or c == "[" or c == "]" or c == "," or c == ":" then return c, nil, pos + 1, pos end
    if c == '"' then
      local parts, i = {}, pos + 1
      while true do
        local a, b2 = find(s, '["\\%z]', i)
        if not a then return "error", "unexpected end of string", pos, #s + 1 end
        local ch = sub(s, a, a)
        if a > i then parts[#parts + 1] = sub(s, i, a - 1) end
        if ch == '"' then return "string", concat(parts), a + 1, pos end
        if ch == "\0" then return "error", "unexpected end of string", pos, a end
        local esc = sub(s, a + 1, a + 1)
        if esc == "u" then
          local hex = sub(s, a + 2, a + 5)
          local cp = find(hex, "^%x%x%x%x$") and tonumber(hex, 16)
          if not cp then return "error", "invalid unicode escape code", pos, a end
          local len = 6
          if cp >= 0xd800 and cp <= 0xdfff then
            if cp >= 0xdc00 then return "error", "invalid unicode escape code", pos, a end
            local hex2 = sub(s, a + 6, a + 11)
            local lo = find(hex2, "^\\u%x%x%x%x$") and tonumber(sub(hex2, 3), 16)
            if not lo or lo < 0xdc00 or lo > 0xdfff then return "error", "invalid unicode escape code", pos, a end
            cp = (cp - 0xd800) * 0x400 + (lo - 0xdc00) + 0x10000
            len = 12
          end
          parts[#parts + 1] = utf8_of(cp)
          i = a + len
        else
          local r = SIMPLE[esc]
          if not r then return "error", "invalid escape code", pos, a end
          parts[#parts + 1] = r
          i = a + 2
        end
      end
    end
    if c == "-" or find(c, "^%d") then
      local num = sub(s, pos)
      local body = num
      if sub(body, 1, 1) == "-" then body = sub(body, 2) end
      if not cfg.decode_invalid_numbers and (find(body, "^0[xX]") or find(body, "^0%d") or find(body, "^[iI][nN][fF]") or find(body, "^[nN][aA][nN]")) then
        return "error", "invalid number", pos, pos
      end
      local text = num:match("^-?%d+%.?%d*[eE][-+]?%d+") or num:match("^-?%d+%.?%d*") or num:match("^-?%.%d+")
      local v = text and tonumber(text)
      if not v then return "error", "invalid number", pos, pos end
      return "number", v, pos + #text, pos
    end
    if sub(s, pos, pos + 3) == "true" then return "boolean", true, pos + 4, pos end
    if sub(s, pos, pos + 4) == "false" then return "boolean", false, pos + 5, pos end
    if sub(s, pos, pos + 3) == "null" then return "null", null, pos + 4, pos end
    return "error", "invalid token", pos, pos
  end

  local NAMES = {
    ["{"] = "T_OBJ_BEGIN", ["}"] = "T_OBJ_END", ["["] = "T_ARR_BEGIN", ["]"] = "T_ARR_END",
    [","] = "T_COMMA", [":"] = "T_COLON", string = "T_STRING", number = "T_NUMBER",
    boolean = "T_BOOLEAN", null = "T_NULL", ["end"] = "T_END",
  }

  local function found(kind, v)
    if kind == "error" then return v end
    return NAMES[kind]
  end

  local parse_value

  local function descend(depth, at)
    if depth > cfg.decode_max_depth then
      error(format("Found too many nested data structures (%d) at character %d", depth, at), 0)
    end
  end

  local function parse_object(s, pos, depth)
    descend(depth, pos - 1)
    local t = {}
    local kind, v, start
    kind, v, pos, start = token(s, pos)
    if kind == "}" then return t, pos end
    while true do
      if kind ~= "string" then parse_error("object key string", found(kind, v), start) end
      local key = v
      kind, v, pos, start = token(s, pos)
      if kind ~= ":" then parse_error("colon", found(kind, v), start) end
      kind, v, pos, start = token(s, pos)
      t[key], pos = parse_value(s, kind, v, pos, start, depth)
      kind, v, pos, start = token(s, pos)
      if kind == "}" then return t, pos end
      if kind ~= "," then parse_error("comma or object end", found(kind, v), start) end
      kind, v, pos, start = token(s, pos)
    end
  end

  local function parse_array(s, pos, depth)
    descend(depth, pos - 1)
    local t = {}
    if cfg.decode_array_with_array_mt then setmetatable(t, array_mt) end
    local kind, v, start
    kind, v, pos, start = token(s, pos)
    if kind == "]" then return t, pos end
    local i = 1
    while true do
      t[i], pos = parse_value(s, kind, v, pos, start, depth)
      i = i + 1
      kind, v, pos, start = token(s, pos)
      if kind == "]" then return t, pos end
      if kind ~= "," then parse_error("comma or array end", found(kind, v), start) end
      kind, v, pos, start = token(s, pos)
    end
  end

  function parse_value(s, kind, v, pos, start, depth)
    if kind == "string" or kind == "number" or kind == "boolean" or kind == "null" then return v, pos end
    if kind == "{" then return parse_object(s, pos, depth + 1) end
    if kind == "[" then return parse_array(s, pos, depth + 1) end
    parse_error("value", found(kind, v), start)
  end

  function M.decode(...)
    if select("#", ...) ~= 1 then error("bad argument #1 to 'decode' (expected 1 argument)", 0) end
    local s = ...
    if type(s) == "number" then s = tostring(s) end
    if type(s) ~= "string" then
      error(format("bad argument #1 to 'decode' (string expected, got %s)", typename(s)), 0)
    end
    if #s >= 2 and (byte(s, 1) == 0 or byte(s, 2) == 0) then
      error("JSON parser does not support UTF-16 or UTF-32", 0)
    end
    local kind, v, pos, start = token(s, 1)
    local value
    value, pos = parse_value(s, kind, v, pos, start, 0)
    kind, v, pos, start = token(s, pos)
    if kind ~= "end" then parse_error("the end", found(kind, v), start) end
    return value
  end

  -- ---- settings: each returns its current value(s), as the C module's

  local function flag(name, key)
    M[name] = function(v)
      if v ~= nil then
        if v == "on" then v = true elseif v == "off" then v = false end
        if type(v) ~= "boolean" then
          error(format("bad argument #1 to '%s' (invalid option '%s')", name, tostring(v)), 0)
        end
        cfg[key] = v
      end
      return cfg[key]
    end
  end
  flag("encode_keep_buffer", "keep_buffer")
  flag("encode_empty_table_as_object", "empty_table_as_object")
  flag("decode_array_with_array_mt", "decode_array_with_array_mt")
  flag("encode_skip_unsupported_value_types", "skip_unsupported")

  function M.encode_escape_forward_slash(v)
    if v ~= nil then
      cfg.escape_slash = v and true or false
      escape = cfg.escape_slash and ESCAPE or ESCAPE_NO_SLASH
      escape_pattern = cfg.escape_slash and '[%c"\\/\127]' or '[%c"\\\127]'
    end
    return cfg.escape_slash
  end

  function M.encode_sparse_array(convert, ratio, safe)
    if convert ~= nil then cfg.sparse_convert = convert and true or false end
    if ratio ~= nil then cfg.sparse_ratio = ratio end
    if safe ~= nil then cfg.sparse_safe = safe end
    return cfg.sparse_convert, cfg.sparse_ratio, cfg.sparse_safe
  end

  function M.encode_max_depth(n)
    if n ~= nil then cfg.encode_max_depth = n end
    return cfg.encode_max_depth
  end

  function M.decode_max_depth(n)
    if n ~= nil then cfg.decode_max_depth = n end
    return cfg.decode_max_depth
  end

  function M.encode_number_precision(n)
    if n ~= nil then
      if type(n) ~= "number" or n < 1 or n > 16 then
        error("bad argument #1 to 'encode_number_precision' (expected integer between 1 and 16)", 0)
      end
      cfg.precision = n
      if n == 14 then number_fmt = nil else number_fmt = "%." .. floor(n) .. "g" end
    end
    return cfg.precision
  end

  function M.encode_invalid_numbers(v)
    if v ~= nil then
      if v == "on" then v = true elseif v == "off" then v = false end
      cfg.encode_invalid_numbers = v
    end
    return cfg.encode_invalid_numbers
  end

  function M.decode_invalid_numbers(v)
    if v ~= nil then
      if v == "on" then v = true elseif v == "off" then v = false end
      cfg.decode_invalid_numbers = v and true or false
    end
    return cfg.decode_invalid_numbers
  end

  M.new = cjson_new
  M.null = null
  M.empty_array = empty_array
  M.array_mt = array_mt
  M.empty_array_mt = empty_array_mt
  M._NAME = "cjson"
  M._VERSION = "2.1.0.13"
  return M
end

return cjson_new()
