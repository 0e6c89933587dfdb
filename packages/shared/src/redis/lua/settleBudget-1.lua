--[[
  M10: settles a reservation once its speculation has an outcome: the reservation is released
  and the realized waste (0 on a hit) is added to the tenant's spent waste. Idempotent per
  settlement id, so an outcome processed twice settles once. An open-reservation record under
  the same id (`open:<id>`, reserveBudget-1) is closed with it.
  KEYS[1] budget hash     P:{tenant:T}:budget
  ARGV[1] settlement id (run id and attempt id)
  ARGV[2] reserved amount to release, nano-USD
  ARGV[3] realized waste, nano-USD
  ARGV[4] '1': settle only while `open:<id>` is still recorded (the recovery sweep: a launch that
          closed the record in the meantime is settled by its outcome, never here), else ''
  Returns: 1 settled, 0 already settled (or, with ARGV[4] = '1', no longer open)
]]
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], 'open:' .. ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'open:' .. ARGV[1])
if redis.call('HSETNX', KEYS[1], 'settled:' .. ARGV[1], '1') == 0 then return 0 end
-- `0 - x`, not `-x`: -0 would reach Redis as "-0", which HINCRBY rejects.
redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', 0 - tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', tonumber(ARGV[3]))
return 1
