--[[
  Discards a node's live speculation (M6, M8 rollback): the speculative attempt becomes
  `cancelled` (it was queued or running: the caller broadcasts the cancel) or `superseded` (it
  had finished), its staged effects are deleted unreleased, and the speculation is kept under
  `closed` until its outcome is settled. The node stays pending, so it runs on the real input.
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  KEYS[2] attempts hash   P:{run:T:R}:attempts
  KEYS[3] staging list    P:{run:T:R}:staging:A
  ARGV[1] node id
  ARGV[2] speculative attempt id
  ARGV[3] outcome kind: miss | cancelled
  ARGV[4] upstream whose real output missed the guess, or ''
  ARGV[5] now ms
  ARGV[6] '1': discard only if the attempt is still `queued` (never started), else ''
  Returns: {1, previousAttemptStatus} discarded
           {0} the attempt is not the node's live speculation (already handled)
           {0, status} ARGV[6] = '1' and the attempt is no longer queued
  A call executed twice (its reply lost when the connection dropped and the call re-sent by
  ioredis's autoResendUnfulfilledCommands) finds the speculation closed as this call closes it
  (its kind and edge; the attempt cancelled with this call's error, or superseded) and answers
  {1, previousAttemptStatus} again, writing nothing: a queued attempt was finished at this call's
  time. (Answered {0}, its caller skipped the cancel broadcast: a running attempt ran on.)
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0} end
local n = decN(raw)
if type(n.spec) ~= 'table' or n.spec.a ~= ARGV[2] then
  local c = n.closed[ARGV[2]]
  if type(c) == 'table' and c.kind == ARGV[3] and (c.edge or '') == ARGV[4] then
    local araw = redis.call('HGET', KEYS[2], ARGV[2])
    if not araw then return {1, 'missing'} end
    local a = decA(araw, ARGV[2])
    if a.status == 'superseded' then return {1, 'succeeded'} end
    if a.status == 'cancelled' and a.error == 'speculation discarded: ' .. ARGV[3] then
      if tonumber(a.finishedAtMs) == tonumber(ARGV[5]) then return {1, 'queued'} end
      return {1, 'running'}
    end
  end
  return {0}
end
local s = n.spec
local prev = 'missing'
local araw = redis.call('HGET', KEYS[2], ARGV[2])
if araw then
  local a = decA(araw, ARGV[2])
  if ARGV[6] == '1' and a.status ~= 'queued' then return {0, a.status} end
  prev = a.status
  if a.status == 'queued' or a.status == 'running' then
    -- A queued attempt never started, so it spent nothing: it is finished now. A running one
    -- is finished by its worker, which records the usage streamed before the abort (M8).
    if a.status == 'queued' then a.finishedAtMs = tonumber(ARGV[5]) end
    a.status = 'cancelled'
    a.error = 'speculation discarded: ' .. ARGV[3]
    redis.call('HSET', KEYS[2], ARGV[2], encA(a))
  elseif a.status == 'succeeded' then
    a.status = 'superseded'
    redis.call('HSET', KEYS[2], ARGV[2], encA(a))
  end
end
redis.call('DEL', KEYS[3])
if type(n.closed) ~= 'table' then n.closed = {} end
n.closed[ARGV[2]] = { kind = ARGV[3], d = s.d, res = s.res, cls = s.cls, at = s.at, edge = ARGV[4], ok = s.ok, st = s.st }
n.spec = nil
redis.call('HSET', KEYS[1], ARGV[1], encN(n))
return {1, prev}
