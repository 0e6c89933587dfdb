--[[
  Issue 10 item 3 (spend cap at launch): books an ended run's settled cost (the sum of its
  attempts' billed cost, once nothing of it can bill any more) and releases all its holds
  (holdSpend-1.lua), in one step, once per run (the hold record is the marker). The cost is
  booked into the periods its holds were taken in, each period at most what was held in it, so
  booking never takes a period past what its holds were allowed (the cap check at launch); any
  cost above the holds (not expected: a hold is the launch's worst case) goes to the last hold's
  periods.
  Mode `late` books a cost billed after the run was settled (a try whose bill came after the
  settlement) into the periods of now: the money was spent; its holds are gone, so it is booked
  where it lands. It is given the run's cost now (a running total) and books what is above the
  most booked so far: the run's `spend` marker among its settlement markers (KEYS[2]), or, before
  the first late booking, what the run says was booked (`spendBooked`, setSpendBooked-1.lua); the
  marker then holds the total. So a call executed twice (its reply lost when the connection
  dropped and the call re-sent by ioredis's autoResendUnfulfilledCommands), or two schedulers
  booking the same late bill, book it once. The marker lives as long as the run's record
  (retention deletes the markers hash with it, indexEndedRun-3.lua).
  KEYS[1] spend hash   P:{tenant:T}:spend
  KEYS[2] the run's settlement markers   P:{tenant:T}:settled:R (late; field `spend`)
  ARGV[1] run id
  ARGV[2] the run's settled cost (settle), or its cost now (late), nano-USD (integer string, >= 0)
  ARGV[3] mode: 'settle' (or absent) | 'late'
  ARGV[4] late: the day field of now, ARGV[5] late: the month field of now
  ARGV[6] late: the nano-USD the run says was booked (`spendBooked`) when the caller read it
  Returns: the nano-USD booked (late: 0 when nothing is above what was booked), or -1 when
  settling a run that holds nothing (settled before, or never launched)
]]
if ARGV[3] == 'late' then
  local total = tonumber(ARGV[2])
  local booked = math.max(tonumber(redis.call('HGET', KEYS[2], 'spend') or '0'), tonumber(ARGV[6]))
  if total <= booked then return 0 end
  local amt = string.format('%d', total - booked)
  redis.call('HINCRBY', KEYS[1], ARGV[4], amt)
  redis.call('HINCRBY', KEYS[1], ARGV[5], amt)
  redis.call('HSET', KEYS[2], 'spend', ARGV[2])
  return total - booked
end
local holdField = 'hold:' .. ARGV[1]
local raw = redis.call('HGET', KEYS[1], holdField)
if not raw then return -1 end
local holds = cjson.decode(raw)
local keys = {}
for k in pairs(holds) do keys[#keys + 1] = k end
table.sort(keys)
-- The increments are summed per field and applied once each (a run's holds mostly share their
-- day and month).
--#include field-sums
local remaining = tonumber(ARGV[2])
local last = nil
for _, k in ipairs(keys) do
  local h = holds[k]
  local amt = tonumber(h[1])
  local take = math.min(remaining, amt)
  if amt > 0 then
    add('held:' .. h[2], 0 - amt)
    add('held:' .. h[3], 0 - amt)
  end
  if take > 0 then
    add(h[2], take)
    add(h[3], take)
  end
  remaining = remaining - take
  last = h
end
if remaining > 0 and last ~= nil then
  add(last[2], remaining)
  add(last[3], remaining)
end
applySums(KEYS[1])
redis.call('HDEL', KEYS[1], holdField)
return tonumber(ARGV[2])
