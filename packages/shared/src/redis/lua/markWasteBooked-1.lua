--[[
  M10: remembers on a closed speculation how much of its attempt's cost is booked as the tenant's
  waste (`w`, nano-USD), so that a try billed after its outcome was settled (the attempt's cost
  grew past `w`) is booked on top (settleBudget-2 with a running total). Only grows.
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  ARGV[1] node id
  ARGV[2] attempt id (a key of the node's `closed`)
  ARGV[3] waste booked so far, nano-USD
  Returns: 1 changed, 0 unchanged (already at least that much, or no such closed speculation)
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local n = decN(raw)
if type(n.closed) ~= 'table' then return 0 end
local c = n.closed[ARGV[2]]
if type(c) ~= 'table' then return 0 end
local w = tonumber(ARGV[3])
local prev = tonumber(c.w)
if prev ~= nil and prev >= w then return 0 end
c.w = w
redis.call('HSET', KEYS[1], ARGV[1], encN(n))
return 1
