--[[
  Completes a node from its authoritative attempt (M6 fencing): accepted only when the attempt
  is the node's current authoritative attempt and the node is still running. A late result of
  a cancelled or superseded attempt is rejected however late it arrives. An authoritative
  attempt's staged effects are released at once, in the same step (M6).
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  KEYS[2] attempts hash   P:{run:T:R}:attempts
  KEYS[3] staging list    P:{run:T:R}:staging:A  (of this attempt)
  KEYS[4] effects list    P:{run:T:R}:effects
  ARGV[1] node id
  ARGV[2] attempt id
  ARGV[3] now ms
  Returns: {1, 'succeeded'} node completed with the attempt's output
           {1, 'failed'}    node failed (the attempt failed for good)
           {2, state}       already completed by this attempt (duplicate event)
           {0, reason}      fenced: reason in node|attempt|not_current|not_running|not_finished
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0, 'node'} end
local n = decN(raw)
local araw = redis.call('HGET', KEYS[2], ARGV[2])
if not araw then return {0, 'attempt'} end
local a = decA(araw, ARGV[2])
if n.auth ~= ARGV[2] then return {0, 'not_current'} end
if n.state == 'succeeded' or n.state == 'failed' then return {2, n.state} end
if n.state ~= 'running' then return {0, 'not_running'} end
if a.status == 'succeeded' then
  n.state = 'succeeded'
  -- The output is kept once, in the attempt: the node says its output is its auth attempt's (`oa`).
  if a.output ~= nil and a.output ~= cjson.null then
    n.output = nil
    n.oa = 1
  else
    n.output = ''
  end
  n.source = 'authoritative'
  n.finishedAtMs = a.finishedAtMs or tonumber(ARGV[3])
  -- Released in one RPUSH per 1000 effects; an empty list does not exist (nothing to DEL).
  local staged = redis.call('LRANGE', KEYS[3], 0, -1)
  if #staged > 0 then
    for i = 1, #staged, 1000 do redis.call('RPUSH', KEYS[4], unpack(staged, i, math.min(#staged, i + 999))) end
    redis.call('DEL', KEYS[3])
  end
elseif a.status == 'failed' then
  n.state = 'failed'
  n.error = a.error or 'failed'
  n.finishedAtMs = a.finishedAtMs or tonumber(ARGV[3])
else
  return {0, 'not_finished'}
end
redis.call('HSET', KEYS[1], ARGV[1], encN(n))
return {1, n.state}
