--[[
  Marks a run succeeded once every node has succeeded.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  ARGV[1] now ms
  Returns: 1 the run is now succeeded, 0 not every node has succeeded (or not running)
  A call executed twice (its reply lost when the connection dropped and the call re-sent by
  ioredis's autoResendUnfulfilledCommands) answers 1 again: the run succeeded at this call's
  time. (Answered 0, its caller skipped the run's end: its keys never got their TTL.)
]]
--#include state-codec
local head = redis.call('HMGET', KEYS[1], 'status', 'finishedAtMs')
if head[1] ~= 'running' then
  if head[1] == 'succeeded' and head[2] == ARGV[1] then return 1 end
  return 0
end
local nodes = redis.call('HVALS', KEYS[2])
for _, raw in ipairs(nodes) do
  if decN(raw).state ~= 'succeeded' then return 0 end
end
redis.call('HSET', KEYS[1], 'status', 'succeeded', 'finishedAtMs', ARGV[1])
return 1
