--[[
  Marks an attempt `failed` after a non-retryable error (or the last retry), fenced like
  finishAttempt. Any usage and cost the failed try spent is billed once per try first.

  KEYS[1] the run's attempts hash P:{run:T:R}:attempts
  KEYS[2] the run hash            P:{run:T:R}:run
  ARGV[1] attempt id
  ARGV[2] epoch the job carries
  ARGV[3] try number (0 when the attempt was never started, e.g. an invalid payload)
  ARGV[4] error text (code and message)
  ARGV[5] usage JSON, or '' when nothing was spent
  ARGV[6] usage estimated: '1' or '0'
  ARGV[7] cost of this try, integer nano-USD
  ARGV[8] finished at (ms)

  Idempotent: executed twice (a reply lost in a reconnect, the call re-sent by ioredis), the try
  is billed once and the second execution answers OK again when the record is this call's
  failure (this error, at this time, of this try); another end of a finished attempt is DONE.

  Returns { code, status }:
    'OK'      status is now `failed`
    'FENCED'  `cancelled` or `superseded` or epoch differs: unchanged (cost still billed)
    'STALE'   a newer try has started: unchanged (cost still billed)
    'DONE'    already `succeeded`, `failed` or `needs_attention`: unchanged
    'MISSING' no such attempt
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING', '' } end
local rec = decA(raw, ARGV[1])
local try = tonumber(ARGV[3])
local cost = tonumber(ARGV[7])
-- The try records its result: its start key (startAttempt-2) is no longer needed.
if try == (tonumber(rec.tries) or 0) then rec.startKey = nil end

if ARGV[5] ~= '' and try > 0 then
  local billed = rec.billedTries
  if type(billed) ~= 'table' then billed = {} end
  local already = false
  for _, t in ipairs(billed) do
    if tonumber(t) == try then already = true end
  end
  if not already then
    local usage = cjson.decode(ARGV[5])
    table.insert(billed, try)
    rec.billedTries = billed
    local u = rec.usage
    if type(u) ~= 'table' then
      rec.usage = usage
    else
      u.inputTokens = (tonumber(u.inputTokens) or 0) + (tonumber(usage.inputTokens) or 0)
      u.cachedInputTokens = (tonumber(u.cachedInputTokens) or 0) + (tonumber(usage.cachedInputTokens) or 0)
      u.outputTokens = (tonumber(u.outputTokens) or 0) + (tonumber(usage.outputTokens) or 0)
    end
    if ARGV[6] == '1' then rec.usageEstimated = true end
    rec.costNanoUsd = (tonumber(rec.costNanoUsd) or 0) + cost
    if cost > 0 then
      redis.call('HINCRBY', KEYS[2], 'costNanoUsd', cost)
      if rec.kind == 'speculative' then redis.call('HINCRBY', KEYS[2], 'specCostNanoUsd', cost) end
    end
  end
end

local status = rec.status
local code
if status == 'succeeded' or status == 'failed' or status == 'needs_attention' then
  code = 'DONE'
  -- This very call, executed before (a re-send): it answers as it did.
  if status == 'failed' and (try == 0 or try == (tonumber(rec.tries) or 0)) and rec.error == ARGV[4] and tonumber(rec.finishedAtMs) == tonumber(ARGV[8]) then code = 'OK' end
elseif status == 'cancelled' or status == 'superseded' or tonumber(rec.epoch) ~= tonumber(ARGV[2]) then
  code = 'FENCED'
elseif try > 0 and try < (tonumber(rec.tries) or 0) then
  code = 'STALE'
else
  code = 'OK'
  rec.status = 'failed'
  rec.error = ARGV[4]
  rec.finishedAtMs = tonumber(ARGV[8])
  status = 'failed'
end
redis.call('HSET', KEYS[1], ARGV[1], encA(rec))
return { code, status }
