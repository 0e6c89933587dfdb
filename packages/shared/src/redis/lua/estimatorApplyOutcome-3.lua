--[[
  Applies one outcome to its edge class (M5, M9), atomically and idempotently: an outcome id
  seen before changes nothing. hit/shadow_hit and miss/shadow_miss update the posterior and the
  window (shadow outcomes learn at zero cost); hit, miss and cancelled are real speculations and
  add to the stage's value counters. Returns the class snapshot the detectors and the stage
  machine need, read in the same atomic step.
  KEYS[1] posterior hash (classKeys().posterior)
  KEYS[2] seen: sorted set of outcome ids scored by ms (classKeys().seen), trimmed to ARGV[13]
  KEYS[3] window list of '1'/'0', oldest first (classKeys().window)
  ARGV[1] outcomeId
  ARGV[2] kind: hit | miss | cancelled | shadow_hit | shadow_miss
  ARGV[3] wasteNanoUsd (integer)
  ARGV[4] savedMs (integer)
  ARGV[5] fencing violation (1|0)
  ARGV[6] windowCap
  ARGV[7] nowMs
  ARGV[8] fallback a0, ARGV[9] fallback b0, ARGV[10] fallback stage (hash created before ensureClass)
  ARGV[11] tenant
  ARGV[12] Page-Hinkley delta
  ARGV[13] dedupe window ms: ids older than this are forgotten (redeliveries come within minutes)
  Returns: { 0 } duplicate, or
           { 1, stage, stageVersion, a, b, stageN, stageRealN, stageSavedMs, stageWasteNanoUsd,
             stageFencing, window, killedUntilMs, tenant, phN, phMean, phCum, phMax }
           (floats as strings)
  The Page-Hinkley step mirrors calibration/detectors.ts `pageHinkleyStep` (a test checks it):
    n = n + 1; mean = mean + (x - mean) / n; cum = cum + (x - mean + delta); max = max(max, cum)
]]
local post, seen, win = KEYS[1], KEYS[2], KEYS[3]
local kind = ARGV[2]
if redis.call('ZADD', seen, 'NX', ARGV[7], ARGV[1]) == 0 then return { 0 } end
redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. (tonumber(ARGV[7]) - tonumber(ARGV[13])))

if redis.call('EXISTS', post) == 0 then
  redis.call('HSET', post, 'a0', ARGV[8], 'b0', ARGV[9], 'a', ARGV[8], 'b', ARGV[9], 'hits', 0, 'misses', 0,
    'n', 0, 'stage', ARGV[10], 'stageVersion', 0, 'stageReason', 'created by estimator: outcome before ensureClass',
    'stageAtMs', ARGV[7], 'killedUntilMs', 0, 'stageN', 0, 'stageRealN', 0, 'stageSavedMs', 0,
    'stageWasteNanoUsd', 0, 'stageFencing', 0, 'provisional', 1, 'createdAtMs', ARGV[7])
end
redis.call('HSETNX', post, 'tenant', ARGV[11])

local x = nil
if kind == 'hit' or kind == 'shadow_hit' then x = 1 elseif kind == 'miss' or kind == 'shadow_miss' then x = 0 end
if x ~= nil then
  local field = x == 1 and 'hits' or 'misses'
  redis.call('HINCRBY', post, field, 1)
  redis.call('HINCRBY', post, 'n', 1)
  redis.call('HINCRBY', post, 'stageN', 1)
  local a0 = tonumber(redis.call('HGET', post, 'a0'))
  local b0 = tonumber(redis.call('HGET', post, 'b0'))
  local hits = tonumber(redis.call('HGET', post, 'hits'))
  local misses = tonumber(redis.call('HGET', post, 'misses'))
  redis.call('HSET', post, 'a', tostring(a0 + hits), 'b', tostring(b0 + misses))
  local ph = redis.call('HMGET', post, 'phN', 'phMean', 'phCum', 'phMax')
  local n = tonumber(ph[1] or '0') + 1
  local mean = tonumber(ph[2] or '0')
  mean = mean + (x - mean) / n
  local cum = tonumber(ph[3] or '0') + (x - mean + tonumber(ARGV[12]))
  local mx = math.max(tonumber(ph[4] or '0'), cum)
  redis.call('HSET', post, 'phN', n, 'phMean', string.format('%.17g', mean), 'phCum', string.format('%.17g', cum),
    'phMax', string.format('%.17g', mx))
  redis.call('RPUSH', win, x)
  redis.call('LTRIM', win, -tonumber(ARGV[6]), -1)
end
if kind == 'hit' or kind == 'miss' or kind == 'cancelled' then
  redis.call('HINCRBY', post, 'stageRealN', 1)
  redis.call('HINCRBY', post, 'stageSavedMs', ARGV[4])
  redis.call('HINCRBY', post, 'stageWasteNanoUsd', ARGV[3])
  redis.call('HINCRBY', post, 'stageFencing', ARGV[5])
  redis.call('HINCRBY', post, 'totalSavedMs', ARGV[4])
  redis.call('HINCRBY', post, 'totalWasteNanoUsd', ARGV[3])
end
redis.call('HSET', post, 'lastOutcomeMs', ARGV[7])

local h = redis.call('HMGET', post, 'stage', 'stageVersion', 'a', 'b', 'stageN', 'stageRealN', 'stageSavedMs',
  'stageWasteNanoUsd', 'stageFencing', 'killedUntilMs', 'tenant', 'phN', 'phMean', 'phCum', 'phMax')
local window = table.concat(redis.call('LRANGE', win, 0, -1))
return { 1, h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], window, h[10], h[11], h[12], h[13], h[14], h[15] }
