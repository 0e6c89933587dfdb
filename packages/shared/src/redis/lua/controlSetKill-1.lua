--[[
  Sets one kill-switch entry (M9.5) and announces it: the hash is the truth, the PUBLISH is for
  speed. Idempotent: killing what is already killed changes nothing and publishes nothing.
  A class kill also records the alarm; when `autoCount` distinct classes alarmed within
  `autoWindowMs`, the global switch is set too (one more version).
  KEYS[1] kill hash (controlKeys().kill): version, global JSON, tenants JSON, classes JSON, recent JSON
  ARGV[1] alarms channel
  ARGV[2] scope: global | tenant | class
  ARGV[3] id (tenant or class id; '' for global)
  ARGV[4] reason
  ARGV[5] nowMs
  ARGV[6] untilMs (when the kill expires: a drift kill's cooldown end, or an operator kill's
          asked-for expiry; 0 = never)
  ARGV[7] autoCount (0 = no automatic global)
  ARGV[8] autoWindowMs
  ARGV[9] source: estimator | operator
  ARGV[10] owner (who set it: an operator key's name, `estimator`; '' = none)
  Returns: { changed (1|0), version, autoGlobal (1|0) }
]]
local key = KEYS[1]
local channel, scope, id, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(ARGV[5])
local untilMs = tonumber(ARGV[6])
local autoCount, autoWindow = tonumber(ARGV[7]), tonumber(ARGV[8])
local source = ARGV[9]
local owner = ARGV[10] or ''
local version = tonumber(redis.call('HGET', key, 'version') or '0')

local function decode(field)
  local raw = redis.call('HGET', key, field)
  if not raw then return {} end
  return cjson.decode(raw)
end

local function announce(sc, sid, why)
  version = version + 1
  redis.call('HSET', key, 'version', version)
  redis.call('PUBLISH', channel, cjson.encode({ version = version, action = 'kill', scope = sc, id = sid, reason = why, atMs = now }))
end

local function killGlobal(why, src, who, till)
  if redis.call('HEXISTS', key, 'global') == 1 then return false end
  local g = { reason = why, atMs = now, source = src }
  if who ~= '' then g.owner = who end
  if till > 0 then g.untilMs = till end
  redis.call('HSET', key, 'global', cjson.encode(g))
  announce('global', '', why)
  return true
end

if scope == 'global' then
  local changed = killGlobal(reason, source, owner, untilMs)
  return { changed and 1 or 0, version, 0 }
end

local field = scope == 'tenant' and 'tenants' or 'classes'
local map = decode(field)
if map[id] ~= nil then return { 0, version, 0 } end
local entry = { reason = reason, atMs = now, source = source }
if untilMs > 0 then entry.untilMs = untilMs end
if owner ~= '' then entry.owner = owner end
map[id] = entry
redis.call('HSET', key, field, cjson.encode(map))
announce(scope, id, reason)

local auto = 0
if scope == 'class' and autoCount > 0 then
  local recent = decode('recent')
  local kept, distinct, seen = {}, 0, {}
  recent[#recent + 1] = { c = id, t = now }
  for _, r in ipairs(recent) do
    if r.t >= now - autoWindow then
      kept[#kept + 1] = r
      if not seen[r.c] then seen[r.c] = true; distinct = distinct + 1 end
    end
  end
  redis.call('HSET', key, 'recent', cjson.encode(kept))
  if distinct >= autoCount then
    local why = 'auto: ' .. distinct .. ' classes alarmed within ' .. autoWindow .. ' ms'
    if killGlobal(why, 'auto', 'estimator', 0) then auto = 1 end
  end
end
return { 1, version, auto }
