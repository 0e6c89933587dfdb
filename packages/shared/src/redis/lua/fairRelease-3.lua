--[[
  Issue 10 item 4, fair dispatch: a job handed to BullMQ ended (a worker finished it, or the
  sweep found it gone): its slot is free again, for the lane and for its tenant's count.
  Idempotent: a second release of the same job changes nothing.

  KEYS[1] the lane's outstanding   {P:q}:fair:<lane>:out    zset  job id by claim ms
  KEYS[2] the outstanding owners   {P:q}:fair:<lane>:owner  hash  job id -> tenant
  KEYS[3] slots in use per tenant  {P:q}:fair:<lane>:inuse  hash  tenant -> outstanding jobs
  ARGV[1] job id

  Returns 1 when released, 0 when it was not outstanding.
]]
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local tenant = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if tenant then
  if redis.call('HINCRBY', KEYS[3], tenant, -1) <= 0 then redis.call('HDEL', KEYS[3], tenant) end
end
return 1
