--[[
  Creates a run: its header, the initial state of every node, and the plan-phase decisions (M8),
  in one step. Idempotent: a run that already exists is left untouched.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] decisions list  P:{run:T:R}:decisions
  ARGV[1] header JSON object (field -> string value)
  ARGV[2] nodes JSON object (node id -> node state object)
  ARGV[3..] plan decision record JSON, one per argument (stored verbatim: cjson would turn an
            empty array into an object)
  Returns: 1 created, 0 already existed
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for k, v in pairs(cjson.decode(ARGV[1])) do
  redis.call('HSET', KEYS[1], k, tostring(v))
end
for id, st in pairs(cjson.decode(ARGV[2])) do
  redis.call('HSET', KEYS[2], id, cjson.encode(st))
end
for i = 3, #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[i])
end
return 1
