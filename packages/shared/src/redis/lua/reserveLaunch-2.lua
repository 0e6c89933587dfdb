--[[
  Issue 13 item 1: a speculative launch's (or a paid guess's) two tenant-side checks in one call:
  the reservation of its price in the tenant's speculation budget (reserveBudget-1.lua, M10) and
  the hold of its worst case against the tenant's spend cap (holdSpend-1.lua `hold`, issue 10
  item 3). Both are checked before anything is written, so the launch is either reserved and
  held, or neither (the two calls of before released the reservation again when the hold was
  refused). The writes are those of the two scripts: `reservedNanoUsd` and `open:<id>` in the
  budget hash; `held:<day>`, `held:<month>` and the run's `hold:<run>` JSON in the spend hash (the
  hold format is holdSpend-1.lua's: {key: [amount, day field, month field]}). Both hashes are in
  the tenant's slot.

  KEYS[1] budget hash   P:{tenant:T}:budget  (reservedNanoUsd, spentNanoUsd, open:<id>)
  KEYS[2] spend hash    P:{tenant:T}:spend   (day:D, month:M booked; held:day:D, held:month:M; hold:<run>)
  ARGV[1] amount to reserve, nano-USD (integer)
  ARGV[2] budget limit, nano-USD (integer), or -1 for none
  ARGV[3] reservation id (unique per reservation: a random UUID in it)
  ARGV[4] open-reservation record JSON {run, a, amt, at}
  ARGV[5] run id
  ARGV[6] hold key (unique per launch try: `<attempt id>:<random>`)
  ARGV[7] amount to hold, nano-USD (integer string, >= 0)
  ARGV[8] spend cap, nano-USD (integer string), or -1 for none
  ARGV[9] the cap's period field (day:D or month:M)
  ARGV[10] day field, ARGV[11] month field of now
  Returns: {1, 0, 0} reserved and held; {0, 0, 0} the budget cannot cover it; {2, booked, held}
  the spend cap cannot cover it (booked and held spend of the cap's period). Nothing is written
  unless both can.
  Idempotent: a call whose `open:<id>` record exists already is a re-send of one that ran
  (ioredis sends a command again after a reconnect when its reply was lost) and answers {1, 0, 0}
  without reserving or holding twice (a refused call wrote nothing, so its re-send decides anew).
]]
if redis.call('HEXISTS', KEYS[1], 'open:' .. ARGV[3]) == 1 then return {1, 0, 0} end
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 then
  local got = redis.call('HMGET', KEYS[1], 'reservedNanoUsd', 'spentNanoUsd')
  if tonumber(got[1] or '0') + tonumber(got[2] or '0') + amount > limit then return {0, 0, 0} end
end

local holdField = 'hold:' .. ARGV[5]
local got = redis.call('HMGET', KEYS[2], holdField, ARGV[9], 'held:' .. ARGV[9])
local holdAmount = tonumber(ARGV[7])
local cap = tonumber(ARGV[8])
local booked = tonumber(got[2] or '0')
local held = tonumber(got[3] or '0')
if cap >= 0 and booked + held + holdAmount > cap then return {2, booked, held} end

redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', amount)
redis.call('HSET', KEYS[1], 'open:' .. ARGV[3], ARGV[4])
local holds = {}
if got[1] then holds = cjson.decode(got[1]) end
if holdAmount > 0 then
  redis.call('HINCRBY', KEYS[2], 'held:' .. ARGV[10], ARGV[7])
  redis.call('HINCRBY', KEYS[2], 'held:' .. ARGV[11], ARGV[7])
end
holds[ARGV[6]] = {ARGV[7], ARGV[10], ARGV[11]}
redis.call('HSET', KEYS[2], holdField, cjson.encode(holds))
return {1, 0, 0}
