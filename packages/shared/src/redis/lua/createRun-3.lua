--[[
  Creates a run: its header, the initial state of every node, and the plan-phase decisions (M8),
  in one step. Idempotent: a run that already exists is left untouched. Each key is written with
  one call (HSET of all fields, RPUSH of all decisions; in slices of 1,000 arguments).
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] decisions list  P:{run:T:R}:decisions
  ARGV[1] header JSON object (field -> string value); an optional `deadlineMs` field (not stored)
          is the request's deadline: past it on Redis's clock, nothing is written (issue 11 D3: a
          submit delayed in transit, which its client gave up on, never creates its run later)
  ARGV[2] nodes JSON object (node id -> node state object)
  ARGV[3..] plan decision record JSON, one per argument (stored verbatim: cjson would turn an
            empty array into an object)
  Returns: 1 created, 0 already existed, -1 the deadline had passed (nothing written)
]]
--#include state-codec
local header = cjson.decode(ARGV[1])
if header['deadlineMs'] ~= nil then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(header['deadlineMs']) then return -1 end
  header['deadlineMs'] = nil
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- Lua's unpack is bounded by its stack: a call takes at most 1,000 arguments after the key.
local function each(cmd, key, list, from)
  for i = from, #list, 1000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
  end
end
local fields = {}
for k, v in pairs(header) do
  fields[#fields + 1] = k
  fields[#fields + 1] = tostring(v)
end
each('HSET', KEYS[1], fields, 1)
local nodes = {}
for id, st in pairs(cjson.decode(ARGV[2])) do
  nodes[#nodes + 1] = id
  nodes[#nodes + 1] = encN(st)
end
each('HSET', KEYS[2], nodes, 1)
each('RPUSH', KEYS[3], ARGV, 3)
return 1
