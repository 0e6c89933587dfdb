--[[
  Issue 10 item 4, fair dispatch: puts one operation job on its tenant's ready list of a lane
  (`ops` or `spec`). Idempotent by job id: a job already ready, claimed or dispatched (outstanding)
  is not added again. Every key is in the queue slot {P:q} (the lane's keys and the tenant's
  ready list share the hash tag of the BullMQ queues), so the script is Cluster-safe.

  KEYS[1] the lane's ready items    {P:q}:fair:<lane>:items    hash  job id -> item JSON
  KEYS[2] the tenant's ready list   {P:q}:fair:<lane>:ready:T  zset  job id by order score
  KEYS[3] the lane's tenant ring    {P:q}:fair:<lane>:ring     list  tenants with ready jobs
  KEYS[4] the lane's claimed items  {P:q}:fair:<lane>:claimed  hash
  KEYS[5] the lane's outstanding    {P:q}:fair:<lane>:out      zset
  ARGV[1] job id
  ARGV[2] item JSON (BullMQ name, data and options, tenant)
  ARGV[3] order score within the tenant (lower first: creation ms on `ops`, the BullMQ priority on `spec`)
  ARGV[4] tenant

  Returns 1 when added, 0 when the job was already known.
  Invariant (with fairClaim): a tenant is in the ring exactly when its ready list is not empty.
]]
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return 0 end
if redis.call('ZSCORE', KEYS[5], ARGV[1]) then return 0 end
-- Already ready: HSETNX writes nothing (the check and the write in one call).
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 1 then redis.call('RPUSH', KEYS[3], ARGV[4]) end
return 1
