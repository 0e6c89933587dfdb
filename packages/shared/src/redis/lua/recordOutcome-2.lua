--[[
  Appends an outcome (M4) to the run's `outcomes` list once per outcome id: an advance event
  processed twice records it once.
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  KEYS[2] outcomes list   P:{run:T:R}:outcomes
  ARGV[1] node id
  ARGV[2] outcome id
  ARGV[3] outcome JSON
  Returns: 1 recorded, 0 already recorded
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local n = decN(raw)
if type(n.outs) ~= 'table' then n.outs = {} end
if n.outs[ARGV[2]] then return 0 end
n.outs[ARGV[2]] = 1
redis.call('HSET', KEYS[1], ARGV[1], encN(n))
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
