--[[
  Stops an attempt in `needs_attention` (issue 11 D2): a worker is about to start another try of
  an irreversible operation whose earlier try may have started, and the tool takes no idempotency
  key, so running it again could apply its effect twice. Fenced like finishAttempt: only the
  current try of a live attempt at the job's epoch may do this.

  KEYS[1] the run's attempts hash P:{run:T:R}:attempts
  ARGV[1] attempt id
  ARGV[2] epoch the job carries
  ARGV[3] try number (from startAttempt)
  ARGV[4] reason (plain text for the operator)
  ARGV[5] now (ms)

  Idempotent: executed twice (a reply lost in a reconnect, the call re-sent by ioredis), the
  second execution answers OK again when the record is this call's (this try, reason and time):
  the worker adds the attempt to the operator's attention index only on OK, so a DONE here left
  it out of the index and the run waited for an operator who was never told.

  Returns { code, status }:
    'OK'      status is now `needs_attention`, `attention` holds the reason
    'FENCED'  `cancelled` or `superseded`, or the epoch differs: unchanged
    'STALE'   a newer try has started: unchanged
    'DONE'    already `succeeded`, `failed` or `needs_attention`: unchanged
    'MISSING' no such attempt
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING', '' } end
local rec = decA(raw, ARGV[1])
local status = rec.status
if status == 'needs_attention' and tonumber(ARGV[3]) == (tonumber(rec.tries) or 0) and rec.attention == ARGV[4] and tonumber(rec.attentionAtMs) == tonumber(ARGV[5]) then
  return { 'OK', 'needs_attention' }
end
if status == 'succeeded' or status == 'failed' or status == 'needs_attention' then return { 'DONE', status } end
if status == 'cancelled' or status == 'superseded' or tonumber(rec.epoch) ~= tonumber(ARGV[2]) then return { 'FENCED', status } end
if tonumber(ARGV[3]) < (tonumber(rec.tries) or 0) then return { 'STALE', status } end
rec.status = 'needs_attention'
rec.attention = ARGV[4]
rec.attentionAtMs = tonumber(ARGV[5])
rec.startKey = nil
redis.call('HSET', KEYS[1], ARGV[1], encA(rec))
return { 'OK', 'needs_attention' }
