--[[
  M10: reserves the price of a speculative launch in the tenant's budget before it is enqueued.
  The tenant's speculative waste plus open reservations never exceed its budget.
  KEYS[1] budget hash     P:{tenant:T}:budget  (reservedNanoUsd, spentNanoUsd)
  ARGV[1] amount, nano-USD (integer)
  ARGV[2] budget limit, nano-USD (integer), or -1 for none
  Returns: 1 reserved, 0 the budget cannot cover it
]]
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit >= 0 then
  local reserved = tonumber(redis.call('HGET', KEYS[1], 'reservedNanoUsd') or '0')
  local spent = tonumber(redis.call('HGET', KEYS[1], 'spentNanoUsd') or '0')
  if reserved + spent + amount > limit then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', amount)
return 1
