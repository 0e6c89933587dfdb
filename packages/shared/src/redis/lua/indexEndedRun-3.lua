--[[
  Retention (issue 13 item 3): indexes a run just folded into its compact record as ended, and
  forgets the runs whose retention has passed, in the tenant's slot, in one step:
  - the run enters the tenant's `ended` index (scored by its end, ms) and leaves admission's
    in-flight set (now, not lazily);
  - with a cutoff (the tenant's TTL), runs that ended at or before it leave the index (their
    records have expired: they took the TTL when they ended) and their budget settlement
    markers (`P:{tenant:T}:settled:R`, settleBudget-2.lua) are deleted with them, at most
    ARGV[4] per call (the rest go with the next fold). A marker lives as long as its run's
    record: a settlement attempted later (a scheduler acting on a snapshot read before the record
    expired) would find it gone, as it finds the run gone.
  KEYS[1] ended index        P:{tenant:T}:ended
  KEYS[2] admission set      P:{tenant:T}:inflight
  KEYS[3] this run's settlement markers  P:{tenant:T}:settled:R (names the others: same prefix,
          same slot)
  ARGV[1] run id R
  ARGV[2] the run's end, ms
  ARGV[3] cutoff, ms: runs ended at or before it are forgotten ('' = kept until the count cap)
  ARGV[4] most runs forgotten in this call
  Returns: { ended runs still indexed, runs forgotten now }
]]
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local forgotten = 0
if ARGV[3] ~= '' then
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
  if #ids > 0 then
    local prefix = string.sub(KEYS[3], 1, #KEYS[3] - #ARGV[1])
    for _, id in ipairs(ids) do redis.call('DEL', prefix .. id) end
    for s = 1, #ids, 1000 do redis.call('ZREM', KEYS[1], unpack(ids, s, math.min(s + 999, #ids))) end
    forgotten = #ids
  end
end
return { redis.call('ZCARD', KEYS[1]), forgotten }
