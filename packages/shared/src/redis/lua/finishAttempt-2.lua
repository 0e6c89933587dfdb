--[[
  Records the result of one try of an attempt, fenced by status, epoch and try (M6, M8).

  Billing first, acceptance second: the money of a try is spent whatever happens to its output,
  so its usage and cost are added to the attempt record and to the run's cost counters exactly
  once per try (the try number is remembered in `billedTries`, so a re-sent command cannot bill
  twice), and only then is the output accepted or rejected.

  KEYS[1] the run's attempts hash P:{run:T:R}:attempts
  KEYS[2] the run hash            P:{run:T:R}:run   (HINCRBY costNanoUsd, specCostNanoUsd)
  ARGV[1] attempt id
  ARGV[2] epoch the job carries
  ARGV[3] try number (from startAttempt)
  ARGV[4] outcome: 'ok' (the operation finished) or 'aborted' (stopped early: bill only)
  ARGV[5] output text (ignored unless accepted)
  ARGV[6] usage JSON {inputTokens, cachedInputTokens, cacheWriteTokens?, outputTokens}
  ARGV[7] usage estimated: '1' or '0'
  ARGV[8] cost of this try, integer nano-USD
  ARGV[9] finished at (ms)

  Idempotent: executed twice (a reply lost in a reconnect, the call re-sent by ioredis), the try
  is billed once (`billedTries`) and the second execution answers OK again when the record is
  this call's acceptance (succeeded by this try, with this output, at this time); another
  result of a finished attempt is DONE as before.

  Returns { code, status }:
    'OK'      accepted: status `succeeded`, output stored
    'FENCED'  the attempt is `cancelled` or `superseded` (or the epoch differs): usage and cost
              recorded, output rejected
    'STALE'   a newer try of the same attempt has started: usage and cost recorded, output rejected
    'DONE'    the attempt had already finished (or needs an operator): usage and cost recorded,
              output rejected
    'ABORTED' outcome 'aborted' on a live attempt: usage and cost recorded, status unchanged
    'MISSING' no such attempt
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING', '' } end
local rec = decA(raw, ARGV[1])
local try = tonumber(ARGV[3])
local cost = tonumber(ARGV[8])
local usage = cjson.decode(ARGV[6])

local billed = rec.billedTries
if type(billed) ~= 'table' then billed = {} end
local already = false
for _, t in ipairs(billed) do
  if tonumber(t) == try then already = true end
end
-- The try records its result: its start key (startAttempt-2) is no longer needed.
if try == (tonumber(rec.tries) or 0) then rec.startKey = nil end
if not already then
  table.insert(billed, try)
  rec.billedTries = billed
  local u = rec.usage
  if type(u) ~= 'table' then
    rec.usage = usage
  else
    u.inputTokens = (tonumber(u.inputTokens) or 0) + (tonumber(usage.inputTokens) or 0)
    u.cachedInputTokens = (tonumber(u.cachedInputTokens) or 0) + (tonumber(usage.cachedInputTokens) or 0)
    u.outputTokens = (tonumber(u.outputTokens) or 0) + (tonumber(usage.outputTokens) or 0)
    if usage.cacheWriteTokens ~= nil or u.cacheWriteTokens ~= nil then
      u.cacheWriteTokens = (tonumber(u.cacheWriteTokens) or 0) + (tonumber(usage.cacheWriteTokens) or 0)
    end
  end
  if ARGV[7] == '1' then rec.usageEstimated = true
  elseif rec.usageEstimated == nil or rec.usageEstimated == cjson.null then rec.usageEstimated = false end
  rec.costNanoUsd = (tonumber(rec.costNanoUsd) or 0) + cost
  if cost > 0 then
    redis.call('HINCRBY', KEYS[2], 'costNanoUsd', cost)
    if rec.kind == 'speculative' then redis.call('HINCRBY', KEYS[2], 'specCostNanoUsd', cost) end
  end
end

local status = rec.status
local code
if status == 'succeeded' or status == 'failed' or status == 'needs_attention' then
  code = 'DONE'
  -- This very call, executed before (a re-send): it answers as it did.
  if already and status == 'succeeded' and ARGV[4] == 'ok' and try == (tonumber(rec.tries) or 0) and rec.output == ARGV[5] and tonumber(rec.finishedAtMs) == tonumber(ARGV[9]) then code = 'OK' end
elseif status == 'cancelled' or status == 'superseded' or tonumber(rec.epoch) ~= tonumber(ARGV[2]) then
  code = 'FENCED'
  if rec.finishedAtMs == nil or rec.finishedAtMs == cjson.null then rec.finishedAtMs = tonumber(ARGV[9]) end
elseif try < (tonumber(rec.tries) or 0) then
  code = 'STALE'
elseif ARGV[4] == 'aborted' then
  code = 'ABORTED'
else
  code = 'OK'
  rec.status = 'succeeded'
  rec.output = ARGV[5]
  rec.finishedAtMs = tonumber(ARGV[9])
  status = 'succeeded'
end
redis.call('HSET', KEYS[1], ARGV[1], encA(rec))
return { code, status }
