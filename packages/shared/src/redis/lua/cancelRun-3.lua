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
  A call executed twice (its reply lost when the connection dropped and the call re-sent by
  ioredis's autoResendUnfulfilledCommands) answers {1, ...} again, writing nothing: the run ended
  with this call's status, reason and time, and the attempts it fenced while running (cancelled
  with this call's error, not finished since) are listed again for their cancel broadcast.
  (Answered {0}, its caller skipped the end: no cancel broadcast, no TTL on the run's keys.)
]]
--#include state-codec
local head = redis.call('HMGET', KEYS[1], 'status', 'reason', 'finishedAtMs')
local st = head[1]
if st ~= 'running' then
  if st == ARGV[1] and head[2] == ARGV[2] and head[3] == ARGV[3] then
    local again = {1}
    local why = 'run ' .. ARGV[1] .. ': ' .. ARGV[2]
    local flat = redis.call('HGETALL', KEYS[3])
    for i = 1, #flat, 2 do
      local a = decA(flat[i + 1], flat[i])
      if a.status == 'cancelled' and a.error == why and (a.finishedAtMs == nil or a.finishedAtMs == cjson.null) then table.insert(again, a.attemptId) end
    end
    return again
  end
  return {0, st or 'missing'}
end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'finishedAtMs', ARGV[3])
local out = {1}
local attempts = redis.call('HGETALL', KEYS[3])
for i = 1, #attempts, 2 do
  local a = decA(attempts[i + 1], attempts[i])
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
