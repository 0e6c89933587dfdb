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
  ARGV[4..] effect JSON, one per argument

  Returns { code, length }:
    'OK'      effects appended; length is the staging list's new length
    'FENCED'  `cancelled` or `superseded`, epoch differs, or not `running`: nothing written
    'STALE'   a newer try has started: nothing written
    'DONE'    already `succeeded` or `failed`: nothing written
    'MISSING' no such attempt
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING', 0 } end
local rec = decA(raw)
local status = rec.status
if status == 'succeeded' or status == 'failed' or status == 'needs_attention' then return { 'DONE', 0 } end
if status ~= 'running' or tonumber(rec.epoch) ~= tonumber(ARGV[2]) then return { 'FENCED', 0 } end
if tonumber(ARGV[3]) ~= (tonumber(rec.tries) or 0) then return { 'STALE', 0 } end
local n = redis.call('LLEN', KEYS[2])
for i = 4, #ARGV do
  n = redis.call('RPUSH', KEYS[2], ARGV[i])
end
return { 'OK', n }
