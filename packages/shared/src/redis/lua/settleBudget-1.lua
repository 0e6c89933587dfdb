--[[
  M10: settles a reservation once its speculation has an outcome: the reservation is released
  and the realized waste (0 on a hit) is added to the tenant's spent waste. Idempotent per
  settlement id, so an outcome processed twice settles once. An open-reservation record under
  the same id (`open:<id>`, reserveBudget-1) is closed with it.

  With ARGV[5] = '1' the waste is the attempt's billed cost so far, a running total: the tenant
  is booked up to it (`waste:<id>` remembers what is booked), so a try billed after the outcome
  was settled (a worker that was stopped or cut off reports late) is still booked, exactly once
  (issue 11, the campaign's ledger_tenant shortfall). The total only grows; a smaller one is a
  stale read and books nothing. A settlement made without it (no `waste:<id>`) is never topped up.

  KEYS[1] budget hash     P:{tenant:T}:budget
  ARGV[1] settlement id (run id and attempt id)
  ARGV[2] reserved amount to release, nano-USD
  ARGV[3] realized waste, nano-USD (with ARGV[5] = '1': the total so far)
  ARGV[4] '1': settle only while `open:<id>` is still recorded (the recovery sweep: a launch that
          closed the record in the meantime is settled by its outcome, never here), else ''
  ARGV[5] '1': ARGV[3] is a running total (above), else '' (booked once, with the release)
  Returns: 1 settled (or topped up), 0 nothing to do (already settled at this total, or, with
           ARGV[4] = '1', no longer open)
]]
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], 'open:' .. ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'open:' .. ARGV[1])
local waste = tonumber(ARGV[3])
if ARGV[5] == '1' then
  local wkey = 'waste:' .. ARGV[1]
  local first = redis.call('HSETNX', KEYS[1], 'settled:' .. ARGV[1], '1') == 1
  if first then
    redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', 0 - tonumber(ARGV[2]))
    redis.call('HSET', KEYS[1], wkey, waste)
    redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', waste)
    return 1
  end
  local booked = tonumber(redis.call('HGET', KEYS[1], wkey))
  -- Settled before running totals existed: what it booked is unknown, so it is left as it is.
  if booked == nil or waste <= booked then return 0 end
  redis.call('HSET', KEYS[1], wkey, waste)
  redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', waste - booked)
  return 1
end
if redis.call('HSETNX', KEYS[1], 'settled:' .. ARGV[1], '1') == 0 then return 0 end
-- `0 - x`, not `-x`: -0 would reach Redis as "-0", which HINCRBY rejects.
redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', 0 - tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', waste)
return 1
