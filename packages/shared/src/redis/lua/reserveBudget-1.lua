--[[
  M10: reserves the price of a speculative launch in the tenant's budget before it is enqueued.
  The tenant's speculative waste plus open reservations never exceed its budget. With a
  reservation id, the reservation is recorded as open (`open:<id>`, in the same hash and step)
  until its launch is visible or it is settled, so the recovery sweep can release one whose
  scheduler died before launching (docs/runtime.md, cross-slot steps).
  KEYS[1] budget hash     P:{tenant:T}:budget  (reservedNanoUsd, spentNanoUsd, open:<id>; settlement markers: settleBudget-2)
  ARGV[1] amount, nano-USD (integer)
  ARGV[2] budget limit, nano-USD (integer), or -1 for none
  ARGV[3] reservation id (its settlement id when unused), or '' for none
  ARGV[4] open-reservation record JSON {run, a, amt, at} (with ARGV[3])
  Returns: 1 reserved, 0 the budget cannot cover it
  Idempotent with a reservation id (ids are unique per reservation, a random UUID in them): a call
  whose `open:<id>` record exists already is a re-send of one that ran (ioredis sends a command
  again after a reconnect when its reply was lost) and answers 1 without reserving twice.
]]
if ARGV[3] ~= nil and ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], 'open:' .. ARGV[3]) == 1 then return 1 end
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 then
  local reserved = tonumber(redis.call('HGET', KEYS[1], 'reservedNanoUsd') or '0')
  local spent = tonumber(redis.call('HGET', KEYS[1], 'spentNanoUsd') or '0')
  if reserved + spent + amount > limit then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', amount)
if ARGV[3] ~= nil and ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'open:' .. ARGV[3], ARGV[4]) end
return 1
