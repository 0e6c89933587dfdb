--[[
  Settles what an ended run still has open (issue 11 D1, D5), so that every attempt it ever
  started ends with `finishedAtMs` and its outcome and reservation can be settled:
  - the outbox is discarded (D5): an intent of an ended run must not start anything; its attempt
    is fenced below (a job already enqueued for it is fenced by startAttempt);
  - a `queued` attempt is fenced and finished now (`cancelled`; it never ran, nothing to bill);
  - a `running` attempt is fenced (`cancelled`); its worker bills it when it stops (returned, so
    the caller broadcasts the cancel);
  - a `cancelled` or `superseded` attempt that has no `finishedAtMs` (its worker has not billed
    it) is finished now if it never started (startAttempt refuses it for ever), or else once
    `graceMs` has passed since the run ended and since the attempt started: its worker died (D1). Whatever usage it recorded stays; with none, none is billed.
  Attempts that are `succeeded`, `failed` or `needs_attention` are left as they are.
  An attempt fenced here while running that has not reported yet is returned again by every later
  call (its cancel is broadcast again): a call re-sent by ioredis after its reply was lost returns
  it too, instead of nothing.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] attempts hash   P:{run:T:R}:attempts
  KEYS[3] intents hash    P:{run:T:R}:intents
  ARGV[1] now ms
  ARGV[2] grace ms
  Returns: {-1} the run is missing or still running
           {changed, waiting, intentsDiscarded, fencedRunning...}: attempts written, attempts still
           waiting for their worker (grace not over), intents deleted, ids fenced while running
]]
--#include state-codec
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'running' then return {-1} end
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local endedAt = tonumber(redis.call('HGET', KEYS[1], 'finishedAtMs')) or now
local discarded = redis.call('HLEN', KEYS[3])
if discarded > 0 then redis.call('DEL', KEYS[3]) end
local changed, waiting = 0, 0
local running = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  local id = flat[i]
  local a = decA(flat[i + 1], flat[i])
  local finished = a.finishedAtMs ~= nil and a.finishedAtMs ~= cjson.null
  local write = false
  if a.status == 'queued' then
    a.status = 'cancelled'
    if not finished then a.finishedAtMs = now end
    write = true
  elseif a.status == 'running' then
    a.status = 'cancelled'
    write = true
    table.insert(running, id)
    if not finished then waiting = waiting + 1 end
  elseif (a.status == 'cancelled' or a.status == 'superseded') and not finished then
    local started = tonumber(a.startedAtMs)
    if started == nil then
      -- Fenced before any worker started it: startAttempt refuses it for ever, nothing to bill.
      a.finishedAtMs = now
      write = true
    elseif now - math.max(endedAt, started) >= grace then
      a.finishedAtMs = now
      if a.usage == nil or a.usage == cjson.null then a.usageEstimated = true end
      a.error = 'settled by the scheduler: its worker never reported (lost)'
      write = true
    else
      waiting = waiting + 1
      -- Fenced here while running (no error of its own) and not billed yet: listed again for its
      -- cancel broadcast, so a call re-sent after its reply was lost (the first listed it) or a
      -- worker that missed the first broadcast still hears it.
      if a.status == 'cancelled' and (a.error == nil or a.error == cjson.null) then table.insert(running, id) end
    end
  end
  if write then
    redis.call('HSET', KEYS[2], id, encA(a))
    changed = changed + 1
  end
end
local out = {changed, waiting, discarded}
for _, id in ipairs(running) do table.insert(out, id) end
return out
