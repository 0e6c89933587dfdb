--[[
  Issue 10 item 4, fair dispatch: removes a job that is still on its tenant's ready list (a
  queued speculation that was cancelled), keeping the ring invariant (a tenant is in the ring
  exactly when its ready list is not empty). A job already claimed or dispatched is not touched
  (the worker's startAttempt fences it).

  KEYS[1] the lane's ready items   {P:q}:fair:<lane>:items
  KEYS[2] the tenant's ready list  {P:q}:fair:<lane>:ready:T
  KEYS[3] the lane's tenant ring   {P:q}:fair:<lane>:ring
  KEYS[4] the lane's deficits      {P:q}:fair:<lane>:deficit
  ARGV[1] job id
  ARGV[2] tenant

  Returns 1 when removed, 0 when it was not ready.
]]
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('LREM', KEYS[3], 0, ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
end
return 1
