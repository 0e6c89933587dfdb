--[[
  Appends effects of a `staged` operation to its attempt's staging list (M6 commit barrier),
  fenced: only the current try of a live attempt may stage. The worker never releases staged
  effects; the scheduler moves them to the run's effects list after the prediction matched (or
  at once for an authoritative attempt), and deletes them otherwise.

  KEYS[1] the run's attempts hash   P:{run:T:R}:attempts
  KEYS[2] the attempt's staging list P:{run:T:R}:staging:A
  ARGV[1] attempt id
  ARGV[2] epoch the job carries
  ARGV[3] try number (from startAttempt)
  ARGV[4] how many effects this try staged before this call (0 for its first call)
  ARGV[5..] effect JSON, one per argument

  Idempotent: a call executed twice (its reply lost when the connection dropped, e.g. CLIENT KILL
  or a Redis restart, and re-sent by ioredis's autoResendUnfulfilledCommands) appends once. Only
  the live try writes its staging list (startAttempt clears it for each new try), so a list that
  already holds this call's effects after the ARGV[4] the try staged before is this call, applied.

  Returns { code, length }:
    'OK'      effects appended, or already appended by this same call (a re-sent call: nothing
              written); length is the staging list's length
    'CONFLICT' the list holds neither ARGV[4] effects nor those plus this call's: nothing written
    'FENCED'  `cancelled` or `superseded`, epoch differs, or not `running`: nothing written
    'STALE'   a newer try has started: nothing written
    'DONE'    already `succeeded` or `failed`: nothing written
    'MISSING' no such attempt
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING', 0 } end
local rec = decA(raw, ARGV[1])
local status = rec.status
if status == 'succeeded' or status == 'failed' or status == 'needs_attention' then return { 'DONE', 0 } end
if status ~= 'running' or tonumber(rec.epoch) ~= tonumber(ARGV[2]) then return { 'FENCED', 0 } end
if tonumber(ARGV[3]) ~= (tonumber(rec.tries) or 0) then return { 'STALE', 0 } end
local before = tonumber(ARGV[4])
local count = #ARGV - 4
local n = redis.call('LLEN', KEYS[2])
if n == before + count and count > 0 then
  -- This call's effects are there already: it ran before and its reply was lost.
  local have = redis.call('LRANGE', KEYS[2], before, -1)
  local same = true
  for i = 1, count do
    if have[i] ~= ARGV[4 + i] then same = false break end
  end
  if same then return { 'OK', n } end
  return { 'CONFLICT', n }
end
if n ~= before then return { 'CONFLICT', n } end
for i = 5, #ARGV, 1000 do
  n = redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(#ARGV, i + 999)))
end
return { 'OK', n }
