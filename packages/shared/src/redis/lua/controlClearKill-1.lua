--[[
  Clears one kill-switch entry (operator revive, or a class's cooldown end) and announces it.
  Idempotent: clearing what is not set changes nothing and publishes nothing.
  KEYS[1] kill hash (controlKeys().kill)
  ARGV[1] alarms channel
  ARGV[2] scope: global | tenant | class
  ARGV[3] id ('' for global)
  ARGV[4] reason
  ARGV[5] nowMs
  Returns: { changed (1|0), version }
]]
local key = KEYS[1]
local channel, scope, id, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(ARGV[5])
local version = tonumber(redis.call('HGET', key, 'version') or '0')

if scope == 'global' then
  if redis.call('HDEL', key, 'global') == 0 then return { 0, version } end
else
  local field = scope == 'tenant' and 'tenants' or 'classes'
  local raw = redis.call('HGET', key, field)
  if not raw then return { 0, version } end
  local map = cjson.decode(raw)
  if map[id] == nil then return { 0, version } end
  map[id] = nil
  -- cjson encodes an empty table as {} (an object), which is what readers expect.
  redis.call('HSET', key, field, cjson.encode(map))
end
version = version + 1
redis.call('HSET', key, 'version', version)
redis.call('PUBLISH', channel, cjson.encode({ version = version, action = 'revive', scope = scope, id = id, reason = reason, atMs = now }))
return { 1, version }
