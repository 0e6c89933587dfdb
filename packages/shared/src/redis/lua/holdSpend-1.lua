--[[
  Issue 10 item 3 (spend cap at launch): holds a launch's worst-case cost against the tenant's
  spend cap before the launch is written, or releases one hold of a launch that was not made.
  Every launch (authoritative, speculative, paid guess) is held, with or without a cap, so that a
  cap set later counts the work already running. The check and the hold are one step: for the
  cap's period, booked spend + held spend + this amount never passes the cap (overshoot 0, any
  number of schedulers). Holds are kept per run (`hold:<run>`, JSON {key: [amount, day, month]})
  and all released when the run's spend is settled (settleRunSpend-2.lua).
  Once an attempt's cost is final (it succeeded or failed: billed, fenced), `trim` lowers the holds
  of its launch to that cost, so a finished node of a running run holds what it spent, not its
  worst case.
  KEYS[1] spend hash   P:{tenant:T}:spend  (day:D, month:M booked; held:day:D, held:month:M; hold:<run>)
  ARGV[1] 'hold', 'release' or 'trim'
  ARGV[2] run id
  ARGV[3] hold key (unique per launch try: `<attempt id>:<random>`; a hold whose key is held
          already is a re-send of this call: answered {1, ...}, nothing held twice); for trim,
          the attempt id
  ARGV[4] trim: the attempt's final cost, nano-USD (integer string)
  ARGV[4] amount, nano-USD (integer string, >= 0)              [hold]
  ARGV[5] cap, nano-USD (integer string), or -1 for none        [hold]
  ARGV[6] the cap's period field (day:D or month:M)             [hold]
  ARGV[7] day field, ARGV[8] month field of now                 [hold]
  ARGV[9] optional, JSON [[attempt id, final cost nano-USD], ...]: trims of this run applied
          first, as `trim` calls made just before the hold would (issue 13 item 1: a node's
          completion and the launch it enables cost one call)                   [hold]
  Returns: hold: {1, booked, held} held; {0, booked, held} the cap cannot cover it (nothing
  written but the carried trims; `held` is after them). release: 1 released, 0 no such hold. trim: nano-USD no longer held.
]]
local holdField = 'hold:' .. ARGV[2]
-- A hold reads the run's holds and the cap period's booked and held spend in one call.
local got
if ARGV[1] == 'hold' then
  got = redis.call('HMGET', KEYS[1], holdField, ARGV[6], 'held:' .. ARGV[6])
else
  got = { redis.call('HGET', KEYS[1], holdField) }
end
local raw = got[1]
local holds = {}
if raw then holds = cjson.decode(raw) end

if ARGV[1] == 'release' then
  local h = holds[ARGV[3]]
  if h == nil then return 0 end
  local amt = tonumber(h[1])
  if amt > 0 then
    redis.call('HINCRBY', KEYS[1], 'held:' .. h[2], string.format('%d', 0 - amt))
    redis.call('HINCRBY', KEYS[1], 'held:' .. h[3], string.format('%d', 0 - amt))
  end
  holds[ARGV[3]] = nil
  if next(holds) == nil then redis.call('HDEL', KEYS[1], holdField) else redis.call('HSET', KEYS[1], holdField, cjson.encode(holds)) end
  return 1
end

-- Increments summed per field and applied once each at the end (a trim and a hold of the same
-- run mostly share their day and month).
--#include field-sums

-- Only one launch of an attempt id can succeed (the epoch fence); other holds under the same id
-- are losers about to release theirs: the attempt's holds together come down to its cost.
local function trim(attemptId, cost)
  local prefix = attemptId .. ':'
  local keep = tonumber(cost)
  local freed = 0
  local keys = {}
  for k in pairs(holds) do
    if string.sub(k, 1, #prefix) == prefix then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local h = holds[k]
    local amt = tonumber(h[1])
    local new = math.min(amt, keep)
    keep = keep - new
    if new < amt then
      add('held:' .. h[2], new - amt)
      add('held:' .. h[3], new - amt)
      h[1] = string.format('%d', new)
      freed = freed + (amt - new)
    end
  end
  return freed
end

if ARGV[1] == 'trim' then
  local freed = trim(ARGV[3], ARGV[4])
  applySums(KEYS[1])
  if freed > 0 then redis.call('HSET', KEYS[1], holdField, cjson.encode(holds)) end
  return freed
end

-- Trims carried by the hold (ARGV[9]): applied first, as separate trim calls made just before.
local trimmed = 0
if ARGV[9] ~= nil and ARGV[9] ~= '' then
  for _, t in ipairs(cjson.decode(ARGV[9])) do trimmed = trimmed + trim(t[1], t[2]) end
end

local amount = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local booked = tonumber(got[2] or '0')
local held = tonumber(got[3] or '0') + (sums['held:' .. ARGV[6]] or 0)
-- This very call, executed before (its reply lost in a reconnect and the call re-sent by ioredis):
-- hold keys are unique per launch try, so the hold exists already; it is not held twice (the
-- held counters would keep the second amount for ever: a release or settlement frees one).
if holds[ARGV[3]] ~= nil then
  applySums(KEYS[1])
  if trimmed > 0 then redis.call('HSET', KEYS[1], holdField, cjson.encode(holds)) end
  return {1, booked, held}
end
if cap >= 0 and booked + held + amount > cap then
  applySums(KEYS[1])
  if trimmed > 0 then redis.call('HSET', KEYS[1], holdField, cjson.encode(holds)) end
  return {0, booked, held}
end
if amount > 0 then
  add('held:' .. ARGV[7], amount)
  add('held:' .. ARGV[8], amount)
end
holds[ARGV[3]] = {ARGV[4], ARGV[7], ARGV[8]}
applySums(KEYS[1])
redis.call('HSET', KEYS[1], holdField, cjson.encode(holds))
return {1, booked, held}
