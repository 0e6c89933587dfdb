--[[
  Issue 10 item 3 (spend cap at launch): holds a launch's worst-case cost against the tenant's
  spend cap before the launch is written, or releases one hold of a launch that was not made.
  Every launch (authoritative, speculative, paid guess) is held, with or without a cap, so that a
  cap set later counts the work already running. The check and the hold are one step: for the
  cap's period, booked spend + held spend + this amount never passes the cap (overshoot 0, any
  number of schedulers). Holds are kept per run (`hold:<run>`, JSON {key: [amount, day, month]})
  and all released when the run's spend is settled (settleRunSpend-1.lua).
  KEYS[1] spend hash   P:{tenant:T}:spend  (day:D, month:M booked; held:day:D, held:month:M; hold:<run>)
  ARGV[1] 'hold' or 'release'
  ARGV[2] run id
  ARGV[3] hold key (unique per launch try)
  ARGV[4] amount, nano-USD (integer string, >= 0)              [hold]
  ARGV[5] cap, nano-USD (integer string), or -1 for none        [hold]
  ARGV[6] the cap's period field (day:D or month:M)             [hold]
  ARGV[7] day field, ARGV[8] month field of now                 [hold]
  Returns: hold: {1, booked, held} held; {0, booked, held} the cap cannot cover it (nothing
  written). release: 1 released, 0 no such hold.
]]
local holdField = 'hold:' .. ARGV[2]
local raw = redis.call('HGET', KEYS[1], holdField)
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

local amount = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local booked = tonumber(redis.call('HGET', KEYS[1], ARGV[6]) or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'held:' .. ARGV[6]) or '0')
if cap >= 0 and booked + held + amount > cap then return {0, booked, held} end
if amount > 0 then
  redis.call('HINCRBY', KEYS[1], 'held:' .. ARGV[7], ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'held:' .. ARGV[8], ARGV[4])
end
holds[ARGV[3]] = {ARGV[4], ARGV[7], ARGV[8]}
redis.call('HSET', KEYS[1], holdField, cjson.encode(holds))
return {1, booked, held}
