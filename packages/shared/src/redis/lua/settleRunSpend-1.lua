--[[
  Issue 10 item 3 (spend cap at launch): books an ended run's settled cost (the sum of its
  attempts' billed cost, once nothing of it can bill any more) and releases all its holds
  (holdSpend-1.lua), in one step, once per run (the hold record is the marker). The cost is
  booked into the periods its holds were taken in, each period at most what was held in it, so
  booking never takes a period past what its holds were allowed (the cap check at launch); any
  cost above the holds (not expected: a hold is the launch's worst case) goes to the last hold's
  periods.
  KEYS[1] spend hash   P:{tenant:T}:spend
  ARGV[1] run id
  ARGV[2] the run's settled cost, nano-USD (integer string, >= 0)
  Returns: the nano-USD booked, or -1 when the run holds nothing (settled before, or never launched)
]]
local holdField = 'hold:' .. ARGV[1]
local raw = redis.call('HGET', KEYS[1], holdField)
if not raw then return -1 end
local holds = cjson.decode(raw)
local keys = {}
for k in pairs(holds) do keys[#keys + 1] = k end
table.sort(keys)
local remaining = tonumber(ARGV[2])
local last = nil
for _, k in ipairs(keys) do
  local h = holds[k]
  local amt = tonumber(h[1])
  local take = math.min(remaining, amt)
  if amt > 0 then
    redis.call('HINCRBY', KEYS[1], 'held:' .. h[2], string.format('%d', 0 - amt))
    redis.call('HINCRBY', KEYS[1], 'held:' .. h[3], string.format('%d', 0 - amt))
  end
  if take > 0 then
    redis.call('HINCRBY', KEYS[1], h[2], string.format('%d', take))
    redis.call('HINCRBY', KEYS[1], h[3], string.format('%d', take))
  end
  remaining = remaining - take
  last = h
end
if remaining > 0 and last ~= nil then
  redis.call('HINCRBY', KEYS[1], last[2], string.format('%d', remaining))
  redis.call('HINCRBY', KEYS[1], last[3], string.format('%d', remaining))
end
redis.call('HDEL', KEYS[1], holdField)
return tonumber(ARGV[2])
