--[[
  M10: settles a reservation once its speculation has an outcome: the reservation is released
  and the realized waste (0 on a hit) is added to the tenant's spent waste. Idempotent per
  settlement id, so an outcome processed twice settles once. An open-reservation record under
  the same id (`open:<id>`, reserveBudget-1) is closed with it.

  With ARGV[5] = '1' the waste is the attempt's billed cost so far, a running total: the tenant
  is booked up to it (the settlement's marker remembers what is booked), so a try billed after
  the outcome was settled (a worker that was stopped or cut off reports late) is still booked,
  exactly once (issue 11, the campaign's ledger_tenant shortfall). The total only grows; a
  smaller one is a stale read and books nothing. A settlement made without it is never topped up.

  The markers of a run's settlements live in a hash of their own per run (KEYS[2], field = the
  settlement id, value = the nano-USD booked, or '-' for a settlement that is never topped up),
  in the tenant's slot, so that they can be deleted with the run: the retention path deletes the
  hash when the run's compact record leaves the tenant's `ended` index (issue 13 item 3: in the
  budget hash they were kept for ever, ≈ 110 B per speculative run). Markers written before
  (`settled:<id>` and `waste:<id>` in the budget hash) are still honoured, read-only.

  KEYS[1] budget hash       P:{tenant:T}:budget
  KEYS[2] settlement hash   P:{tenant:T}:settled:R (R = the run the settlement belongs to)
  ARGV[1] settlement id (run id and attempt id)
  ARGV[2] reserved amount to release, nano-USD
  ARGV[3] realized waste, nano-USD (with ARGV[5] = '1': the total so far)
  ARGV[4] '1': settle only while `open:<id>` is still recorded (the recovery sweep: a launch that
          closed the record in the meantime is settled by its outcome, never here), else ''
  ARGV[5] '1': ARGV[3] is a running total (above), else '' (booked once, with the release)
  Returns: 1 settled (or topped up), 0 nothing to do (already settled at this total, or, with
           ARGV[4] = '1', no longer open)
]]
local id = ARGV[1]
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], 'open:' .. id) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'open:' .. id)
local waste = tonumber(ARGV[3])
local running = ARGV[5] == '1'
local marker = redis.call('HGET', KEYS[2], id)
if not marker and redis.call('HEXISTS', KEYS[1], 'settled:' .. id) == 1 then
  -- Settled before the markers moved: top up its legacy `waste:<id>` (absent: never topped up).
  if not running then return 0 end
  local booked = tonumber(redis.call('HGET', KEYS[1], 'waste:' .. id))
  if booked == nil or waste <= booked then return 0 end
  redis.call('HSET', KEYS[1], 'waste:' .. id, waste)
  redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', waste - booked)
  return 1
end
if not marker then
  -- `0 - x`, not `-x`: -0 would reach Redis as "-0", which HINCRBY rejects.
  redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', 0 - tonumber(ARGV[2]))
  redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', waste)
  if running then redis.call('HSET', KEYS[2], id, waste) else redis.call('HSET', KEYS[2], id, '-') end
  return 1
end
if not running then return 0 end
local booked = tonumber(marker)
-- Settled once ('-', never topped up), or already booked up to this total.
if booked == nil or waste <= booked then return 0 end
redis.call('HSET', KEYS[2], id, waste)
redis.call('HINCRBY', KEYS[1], 'spentNanoUsd', waste - booked)
return 1
