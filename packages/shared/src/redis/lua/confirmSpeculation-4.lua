--[[
  Confirms a speculation (M6 commit barrier, M8): marks one assumed upstream as matched (or
  none, when called because the speculative attempt finished). Once every assumed upstream has
  matched and the speculative attempt has succeeded, its staged effects move to the run's
  `effects` list and its output becomes the node's output, in the same step.
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  KEYS[2] attempts hash   P:{run:T:R}:attempts
  KEYS[3] staging list    P:{run:T:R}:staging:A
  KEYS[4] effects list    P:{run:T:R}:effects
  ARGV[1] node id
  ARGV[2] speculative attempt id
  ARGV[3] upstream id that matched, or '' for none
  ARGV[4] now ms
  Returns: {0}  the attempt is not the node's live speculation (fenced)
           {1, node}  upstream confirmed; other assumed upstreams are still pending
           {2, node}  fully confirmed; waiting for the speculative attempt to finish
           {3, releasedEffects, node} node completed from the speculation
           {4, status} fully confirmed but the speculative attempt ended without a result
           (node: the node state JSON as written, so the caller's snapshot needs no re-read)
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0} end
local n = decN(raw)
if n.state ~= 'pending' or type(n.spec) ~= 'table' or n.spec.a ~= ARGV[2] then return {0} end
local s = n.spec
if type(s.ok) ~= 'table' then s.ok = {} end
if ARGV[3] ~= '' then
  if s.assumed[ARGV[3]] == nil then return {0} end
  s.ok[ARGV[3]] = 1
end
for up, _ in pairs(s.assumed) do
  if not s.ok[up] then
    local json = encN(n)
    redis.call('HSET', KEYS[1], ARGV[1], json)
    return {1, json}
  end
end
s.full = 1
local araw = redis.call('HGET', KEYS[2], ARGV[2])
local a = araw and decA(araw, ARGV[2]) or { status = 'failed' }
if a.status == 'queued' or a.status == 'running' then
  local json = encN(n)
  redis.call('HSET', KEYS[1], ARGV[1], json)
  return {2, json}
end
if a.status ~= 'succeeded' then
  redis.call('HSET', KEYS[1], ARGV[1], encN(n))
  return {4, a.status}
end
-- Released in one RPUSH per 1000 effects; an empty list does not exist (nothing to DEL).
local staged = redis.call('LRANGE', KEYS[3], 0, -1)
if #staged > 0 then
  for i = 1, #staged, 1000 do redis.call('RPUSH', KEYS[4], unpack(staged, i, math.min(#staged, i + 999))) end
  redis.call('DEL', KEYS[3])
end
n.state = 'succeeded'
n.output = a.output or ''
n.oa = nil
n.source = 'speculative'
n.auth = ARGV[2]
n.finishedAtMs = tonumber(ARGV[4])
if type(n.closed) ~= 'table' then n.closed = {} end
n.closed[ARGV[2]] = { kind = 'hit', d = s.d, res = s.res, cls = s.cls, at = s.at, st = s.st }
n.spec = nil
-- Returned with its output; stored with the output kept once, in the attempt (`oa`).
local json = encN(n)
if a.output ~= nil and a.output ~= cjson.null then
  n.output = nil
  n.oa = 1
  redis.call('HSET', KEYS[1], ARGV[1], encN(n))
else
  redis.call('HSET', KEYS[1], ARGV[1], json)
end
return {3, #staged, json}
