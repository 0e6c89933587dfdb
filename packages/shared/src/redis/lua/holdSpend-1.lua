--[[
  Issue 10 item 3 (spend cap at launch): holds a launch's worst-case cost against the tenant's
  spend cap before the launch is written, or releases one hold of a launch that was not made.
  Every launch (authoritative, speculative, paid guess) is held, with or without a cap, so that a
  cap set later counts the work already running. The check and the hold are one step: for the
  cap's period, booked spend + held spend + this amount never passes the cap (overshoot 0, any
  number of schedulers). Holds are kept per run (`hold:<run>`, JSON {key: [amount, day, month]})
  and all released when the run's spend is settled (settleRunSpend-1.lua).
  Once an attempt's cost is final (it succeeded or failed: billed, fenced), `trim` lowers the holds
  of its launch to that cost, so a finished node of a running run holds what it spent, not its
  worst case.
  KEYS[1] spend hash   P:{tenant:T}:spend  (day:D, month:M booked; held:day:D, held:month:M; hold:<run>)
  ARGV[1] 'hold', 'release' or 'trim'
  ARGV[2] run id
  ARGV[3] hold key (unique per launch try: `<attempt id>:<uuid>`); for trim, the attempt id
  ARGV[4] trim: the attempt's final cost, nano-USD (integer string)
  ARGV[4] amount, nano-USD (integer string, >= 0)              [hold]
  ARGV[5] cap, nano-USD (integer string), or -1 for none        [hold]
  ARGV[6] the cap's period field (day:D or month:M)             [hold]
  ARGV[7] day field, ARGV[8] month field of now                 [hold]
  Returns: hold: {1, booked, held} held; {0, booked, held} the cap cannot cover it (nothing
  written). release: 1 released, 0 no such hold. trim: nano-USD no longer held.
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

if ARGV[1] == 'trim' then
  -- Only one launch of an attempt id can succeed (the epoch fence); other holds under the same id
  -- are losers about to release theirs: the attempt's holds together come down to its cost.
  local prefix = ARGV[3] .. ':'
  local keep = tonumber(ARGV[4])
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
      redis.call('HINCRBY', KEYS[1], 'held:' .. h[2], string.format('%d', new - amt))
      redis.call('HINCRBY', KEYS[1], 'held:' .. h[3], string.format('%d', new - amt))
      h[1] = string.format('%d', new)
      freed = freed + (amt - new)
    end
  end
  if freed > 0 then redis.call('HSET', KEYS[1], holdField, cjson.encode(holds)) end
  return freed
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
