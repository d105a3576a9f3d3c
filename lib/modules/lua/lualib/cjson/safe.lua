-- cjson.safe: cjson whose encode and decode return nil and the message
-- instead of raising an error, as OpenResty's lua-cjson ships it.
local cjson = require "cjson"

local function safe(instance)
  local M = {}
  for k, v in pairs(instance) do M[k] = v end
  local encode, decode = instance.encode, instance.decode
  function M.encode(...)
    local ok, res = pcall(encode, ...)
    if ok then return res end
    return nil, res
  end
  function M.decode(...)
    local ok, res = pcall(decode, ...)
    if ok then return res end
    return nil, res
  end
  M.new = function() return safe(instance.new()) end
  return M
end

return safe(cjson.new())
