--[[
  Ends a run that is still running (user cancel, or a node that failed for good): the run gets
  the final status, every unfinished node becomes `cancelled`, every queued or running attempt
  becomes `cancelled` (fenced: its late result is rejected), and live speculations are closed
  as `cancelled` so their waste is settled later.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  ARGV[1] final status: cancelled | failed
  ARGV[2] reason
  ARGV[3] now ms
  Returns: {1, attemptIdsThatWereRunning...} ended; the caller broadcasts their cancels
           {0, status} the run was not running
]]
--#include state-codec
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'running' then return {0, st or 'missing'} end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'finishedAtMs', ARGV[3])
local out = {1}
local attempts = redis.call('HGETALL', KEYS[3])
for i = 1, #attempts, 2 do
  local a = decA(attempts[i + 1])
  if a.status == 'queued' or a.status == 'running' then
    if a.status == 'running' then table.insert(out, a.attemptId) else a.finishedAtMs = now end
    a.status = 'cancelled'
    a.error = 'run ' .. ARGV[1] .. ': ' .. ARGV[2]
    redis.call('HSET', KEYS[3], attempts[i], encA(a))
  end
end
local nodes = redis.call('HGETALL', KEYS[2])
for i = 1, #nodes, 2 do
  local n = decN(nodes[i + 1])
  local changed = false
  if type(n.spec) == 'table' then
    if type(n.closed) ~= 'table' then n.closed = {} end
    n.closed[n.spec.a] = { kind = 'cancelled', d = n.spec.d, res = n.spec.res, cls = n.spec.cls, at = n.spec.at, edge = '', st = n.spec.st }
    n.spec = nil
    changed = true
  end
  if n.state == 'pending' or n.state == 'running' then
    n.state = 'cancelled'
    n.finishedAtMs = now
    changed = true
  end
  if changed then redis.call('HSET', KEYS[2], nodes[i], encN(n)) end
end
return out
