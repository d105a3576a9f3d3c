-- A pure-Lua stand-in for openresty's redis.parser (lua-redis-parser, a C
-- module), for the nginx side of bench/lua.ts only: Debian's lua module
-- does not ship it. Same API for what the bench and such configs use:
-- parse_reply(reply) -> res, typ; parse_replies(reply, n) -> { {res, typ}, ... };
-- typename(typ); the *_REPLY constants; null. Under LuaJIT, not C: nginx
-- pays a little more for parsing than it would with the real module.
-- redis2d never loads this file (it has redis.parser as a host module).

local byte, sub, find = string.byte, string.sub, string.find
local tonumber = tonumber

local BAD_REPLY, STATUS_REPLY, ERROR_REPLY = 0, 1, 2
local INTEGER_REPLY, BULK_REPLY, MULTI_BULK_REPLY = 3, 4, 5

local _M = {
    _VERSION = "0.13-bench-lua",
    BAD_REPLY = BAD_REPLY, STATUS_REPLY = STATUS_REPLY, ERROR_REPLY = ERROR_REPLY,
    INTEGER_REPLY = INTEGER_REPLY, BULK_REPLY = BULK_REPLY, MULTI_BULK_REPLY = MULTI_BULK_REPLY,
    null = ngx and ngx.null or nil,
}

local TYPENAMES = { [0] = "bad reply", "status reply", "error reply", "integer reply", "bulk reply", "multi-bulk reply" }

-- a bulk after its '$' at p: value (nil for -1) and the next offset; nil, nil when invalid
local function bulk(s, p)
    local e = find(s, "\r\n", p, true)
    if not e then return nil, nil end
    local len = sub(s, p, e - 1)
    if len == "" then return nil, nil end
    if byte(len, 1) == 45 then -- '-': a nil bulk
        if not find(len, "^%-%d+$") then return nil, nil end
        return nil, e + 2
    end
    if not find(len, "^%d+$") then return nil, nil end
    local n = tonumber(len)
    local start = e + 2
    if byte(s, start + n) ~= 13 or byte(s, start + n + 1) ~= 10 then return nil, nil end
    return sub(s, start, start + n - 1), start + n + 2
end

-- one reply at p: res, typ, next offset
local function parse_one(s, p)
    local c = byte(s, p)
    if not c then return "empty reply", BAD_REPLY, #s + 1 end
    if c == 36 then -- '$'
        local v, nxt = bulk(s, p + 1)
        if not nxt then return "bad bulk reply", BAD_REPLY, #s + 1 end
        return v, BULK_REPLY, nxt
    end
    if c == 43 or c == 45 or c == 58 then -- '+', '-', ':'
        local e = find(s, "\r\n", p + 1, true)
        if not e then
            local kind = c == 43 and "status" or c == 45 and "error" or "integer"
            return "bad " .. kind .. " reply", BAD_REPLY, #s + 1
        end
        local text = sub(s, p + 1, e - 1)
        if c == 58 then return tonumber(text) or 0, INTEGER_REPLY, e + 2 end
        return text, c == 43 and STATUS_REPLY or ERROR_REPLY, e + 2
    end
    if c == 42 then -- '*'
        local e = find(s, "\r\n", p + 1, true)
        if not e then return "bad multi bulk reply", BAD_REPLY, #s + 1 end
        local cnt = sub(s, p + 1, e - 1)
        if find(cnt, "^%-%d+$") then return nil, MULTI_BULK_REPLY, e + 2 end
        if not find(cnt, "^%d+$") then return "bad multi bulk reply", BAD_REPLY, #s + 1 end
        local t = {}
        p = e + 2
        for i = 1, tonumber(cnt) do
            local b = byte(s, p)
            if b == 36 then
                local v, nxt = bulk(s, p + 1)
                if not nxt then return "bad multi bulk reply", BAD_REPLY, #s + 1 end
                t[i] = v
                p = nxt
            elseif b == 43 or b == 45 or b == 58 then
                local le = find(s, "\r\n", p + 1, true)
                if not le then return "bad multi bulk reply", BAD_REPLY, #s + 1 end
                t[i] = sub(s, p + 1, le - 1)
                p = le + 2
            else
                return "bad multi bulk reply", BAD_REPLY, #s + 1
            end
        end
        return t, MULTI_BULK_REPLY, p
    end
    return "invalid reply", BAD_REPLY, #s + 1
end

function _M.parse_reply(s)
    local res, typ = parse_one(s, 1)
    return res, typ
end

function _M.parse_replies(s, n)
    local out, p = {}, 1
    for i = 1, n do
        local res, typ, nxt = parse_one(s, p)
        out[i] = { res, typ }
        p = nxt
    end
    return out
end

function _M.typename(typ)
    return TYPENAMES[typ]
end

return _M
