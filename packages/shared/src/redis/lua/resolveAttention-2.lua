--[[
  An operator resolves an attempt in `needs_attention` (issue 11 D2): they looked at the outside
  world and say whether the irreversible operation took effect. `succeeded` stores the output
  they give (what the downstream nodes will read); `failed` stores their error text. The attempt
  then counts as finished, and the run's next reconcile completes the node as for any result.

  KEYS[1] the run's attempts hash P:{run:T:R}:attempts
  KEYS[2] the run hash            P:{run:T:R}:run
  ARGV[1] attempt id
  ARGV[2] resolution: 'succeeded' or 'failed'
  ARGV[3] output (succeeded) or error text (failed)
  ARGV[4] now (ms)

  Returns { code, status }:
    'OK'        resolved; status is the resolution
    'NOT_NEEDED' the attempt is not in `needs_attention` (already resolved, or never was): unchanged
    'MISSING'   no such attempt, or no such run
]]
--#include state-codec
if redis.call('EXISTS', KEYS[2]) == 0 then return { 'MISSING', '' } end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING', '' } end
local rec = decA(raw, ARGV[1])
if rec.status ~= 'needs_attention' then
  -- This very call, executed before (its reply lost when the connection dropped and the call
  -- re-sent by ioredis): resolved as it resolves, at its time. It answers OK again (NOT_NEEDED
  -- told the operator 409 for a resolution that was applied, and the run was not reconciled).
  local text = ARGV[2] == 'succeeded' and rec.output or rec.error
  if rec.resolvedBy == 'operator' and rec.status == ARGV[2] and text == ARGV[3] and tonumber(rec.finishedAtMs) == tonumber(ARGV[4]) then return { 'OK', rec.status } end
  return { 'NOT_NEEDED', rec.status }
end
rec.status = ARGV[2]
if ARGV[2] == 'succeeded' then rec.output = ARGV[3] else rec.error = ARGV[3] end
rec.finishedAtMs = tonumber(ARGV[4])
rec.resolvedBy = 'operator'
redis.call('HSET', KEYS[1], ARGV[1], encA(rec))
return { 'OK', rec.status }
