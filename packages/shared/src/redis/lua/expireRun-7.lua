--[[
  Retention: gives every key of an ended run a time to live, so finished runs do not accumulate
  in Redis forever. Refused while the run is still running. Writes that arrive later (a cancelled
  attempt's usage, a late outcome) keep the TTL: HSET/RPUSH on a key with a TTL do not clear it.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] decisions list  P:{run:T:R}:decisions
  KEYS[5] outcomes list   P:{run:T:R}:outcomes
  KEYS[6] effects list    P:{run:T:R}:effects
  KEYS[7] intents hash    P:{run:T:R}:intents
  ARGV[1] time to live, ms (> 0)
  Returns: number of keys given a TTL; -1 when the run is missing or still running
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'running' then return -1 end
local ttl = tonumber(ARGV[1])
local n = 0
for i = 1, #KEYS do
  n = n + redis.call('PEXPIRE', KEYS[i], ttl)
end
redis.call('HSET', KEYS[1], 'expiresInMs', ttl)
return n
