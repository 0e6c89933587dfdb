--[[
  M10: cancels a paid guess that arrived too late: its upstream is no longer running, so the
  guess can no longer be used. A queued guess never started and spent nothing (finished now); a
  running one is finished by its worker after the caller's cancel broadcast, which bills only the
  tokens it consumed. Fenced like any cancelled attempt (startAttempt/finishAttempt).
  KEYS[1] nodes hash      P:{run:T:R}:nodes
  KEYS[2] attempts hash   P:{run:T:R}:attempts
  ARGV[1] upstream id (whose output the guess guesses)
  ARGV[2] guess attempt id
  ARGV[3] now ms
  Returns: {1, previousAttemptStatus} cancelled
           {0} not cancelled (no such attempt, already ended, or the upstream still runs)
  A call executed twice (its reply lost when the connection dropped and the call re-sent by
  ioredis's autoResendUnfulfilledCommands) finds the guess cancelled as this call cancels it and
  answers {1, previousAttemptStatus} again (a queued guess was finished at this call's time),
  writing nothing. (Answered {0}, its caller skipped the cancel broadcast: a running guess ran on.)
]]
--#include state-codec
local uraw = redis.call('HGET', KEYS[1], ARGV[1])
if uraw and decN(uraw).state == 'running' then return {0} end
local araw = redis.call('HGET', KEYS[2], ARGV[2])
if not araw then return {0} end
local a = decA(araw, ARGV[2])
if a.status == 'cancelled' and a.error == 'guess not used: upstream ended' then
  if tonumber(a.finishedAtMs) == tonumber(ARGV[3]) then return {1, 'queued'} end
  return {1, 'running'}
end
if a.status ~= 'queued' and a.status ~= 'running' then return {0} end
local prev = a.status
if prev == 'queued' then a.finishedAtMs = tonumber(ARGV[3]) end
a.status = 'cancelled'
a.error = 'guess not used: upstream ended'
redis.call('HSET', KEYS[2], ARGV[2], encA(a))
return {1, prev}
