--[[
  Creates an edge class's posterior hash with its prior and initial stage (M5, M9), if absent.
  If the estimator created it first (an outcome arrived before ensureClass; `provisional` = 1),
  the real prior replaces the fallback one and the counts already applied are kept.
  KEYS[1] posterior hash (classKeys().posterior)
  ARGV[1] a0, ARGV[2] b0, ARGV[3] depType, ARGV[4] k ('' = none), ARGV[5] initial stage,
  ARGV[6] nowMs, ARGV[7] tenant
  Returns: 1 created, 2 provisional hash completed, 0 already existed
]]
local key = KEYS[1]
local a0, b0 = tonumber(ARGV[1]), tonumber(ARGV[2])
local function setPrior()
  local hits = tonumber(redis.call('HGET', key, 'hits') or '0')
  local misses = tonumber(redis.call('HGET', key, 'misses') or '0')
  redis.call('HSET', key, 'a0', ARGV[1], 'b0', ARGV[2], 'a', tostring(a0 + hits), 'b', tostring(b0 + misses),
    'depType', ARGV[3], 'k', ARGV[4], 'tenant', ARGV[7])
end
if redis.call('EXISTS', key) == 1 then
  if redis.call('HGET', key, 'provisional') ~= '1' then return 0 end
  setPrior()
  redis.call('HDEL', key, 'provisional')
  return 2
end
setPrior()
redis.call('HSET', key, 'hits', 0, 'misses', 0, 'n', 0, 'stage', ARGV[5], 'stageVersion', 0,
  'stageReason', 'created: initial stage ' .. ARGV[5], 'stageAtMs', ARGV[6], 'killedUntilMs', 0,
  'stageN', 0, 'stageRealN', 0, 'stageSavedMs', 0, 'stageWasteNanoUsd', 0, 'stageFencing', 0,
  'createdAtMs', ARGV[6])
return 1
