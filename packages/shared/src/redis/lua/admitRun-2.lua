--[[
  Issue 10 item 4: per-tenant admission of a run submit. A token bucket (ratePerSec, burst)
  and a cap on the tenant's in-flight runs. The caller removes ended runs from the in-flight
  set (lazily, when the cap is reached) and tries again.
  KEYS[1] rate bucket      P:{tenant:T}:ratelimit (tokens, at)
  KEYS[2] in-flight runs   P:{tenant:T}:inflight  (zset: run id -> admission ms)
  ARGV[1] now, ms
  ARGV[2] rate, tokens per second (> 0)
  ARGV[3] burst (bucket size, >= 1)
  ARGV[4] in-flight cap (>= 1)
  ARGV[5] run id
  Returns: {1, 0} admitted; {0, retryAfterMs} rate limited; {2, n} in-flight cap reached (n runs);
  an already admitted run id is admitted again without a token.
]]
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
if redis.call('ZSCORE', KEYS[2], ARGV[5]) then return {1, 0} end
local n = redis.call('ZCARD', KEYS[2])
if n >= cap then return {2, n} end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1] or burst)
local at = tonumber(b[2] or now)
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000) end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
redis.call('ZADD', KEYS[2], now, ARGV[5])
return {1, 0}
