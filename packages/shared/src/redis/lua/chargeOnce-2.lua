--[[
  The built-in irreversible `charge_card` tool's effect, applied at most once per idempotency key
  (issue 11 D2): a retry under the same key returns the charge already made instead of charging
  again, however many tries or workers run it.

  KEYS[1] the tenant's charges list          P:{tenant:T}:charges       (one JSON entry per charge)
  KEYS[2] the tenant's charges by key hash   P:{tenant:T}:charges:keys  (idempotency key -> charge JSON)
  ARGV[1] idempotency key
  ARGV[2] charge JSON

  Returns { code, charge JSON }:
    'CHARGED' the charge was applied now
    'REPLAYED' a charge under this key exists: nothing applied, the stored charge is returned
]]
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then return { 'REPLAYED', prior } end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[2])
return { 'CHARGED', ARGV[2] }
