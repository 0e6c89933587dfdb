--[[
  M4: adds one finished operation to its class's distributions (core/operation-class.ts) in one
  step: every field's increment is read (HMGET) and written (HSET) together, two calls instead of
  one HINCRBYFLOAT per field. Values are written as 17 significant digits (a double exactly).
  KEYS[1] class hash   P:{op:T:K}:dist   (per metric m: `m:n`, `m:sum`, `m:<bin>`)
  ARGV    field1, increment1, field2, increment2, ... (finite numbers; a field may repeat)
  Returns: the number of distinct fields written. Error (nothing written) when a stored value is
  not a number.
]]
local fields = {}
local inc = {}
for i = 1, #ARGV, 2 do
  local f = ARGV[i]
  if inc[f] == nil then
    fields[#fields + 1] = f
    inc[f] = 0
  end
  inc[f] = inc[f] + tonumber(ARGV[i + 1])
end
if #fields == 0 then return 0 end
local cur = redis.call('HMGET', KEYS[1], unpack(fields))
local out = {}
for i, f in ipairs(fields) do
  local v = 0
  if cur[i] then
    v = tonumber(cur[i])
    if v == nil then return redis.error_reply('ERR recordOpSample: field ' .. f .. ' of ' .. KEYS[1] .. ' is not a number') end
  end
  out[#out + 1] = f
  out[#out + 1] = string.format('%.17g', v + inc[f])
end
redis.call('HSET', KEYS[1], unpack(out))
return #fields
