--[[
  Marks a run succeeded once every node has succeeded.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  ARGV[1] now ms
  Returns: 1 the run is now succeeded, 0 not every node has succeeded (or not running)
]]
--#include state-codec
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local nodes = redis.call('HVALS', KEYS[2])
for _, raw in ipairs(nodes) do
  if decN(raw).state ~= 'succeeded' then return 0 end
end
redis.call('HSET', KEYS[1], 'status', 'succeeded', 'finishedAtMs', ARGV[1])
return 1
