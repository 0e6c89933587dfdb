--[[
  Records a decision that launches nothing (WAIT, or a shadow-stage prediction, M4/M9), once
  per node and claim: a second scheduler deciding the same trigger is refused.
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  KEYS[2] decisions list  P:{run:T:R}:decisions
  ARGV[1] node id
  ARGV[2] claim name
  ARGV[3] decision record JSON
  ARGV[4] shadow JSON object {d, assumed, cls} to score later, or '' for none
  Returns: 1 recorded, 0 already claimed (or unknown node)
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local n = decN(raw)
if type(n.claims) ~= 'table' then n.claims = {} end
if n.claims[ARGV[2]] then return 0 end
n.claims[ARGV[2]] = 1
if ARGV[4] ~= '' then n.shadow = cjson.decode(ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1], encN(n))
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
