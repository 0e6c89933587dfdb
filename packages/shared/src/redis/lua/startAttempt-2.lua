--[[
  Starts one execution ("try") of an attempt (M6 fencing). Called by a worker before it runs
  an operation; a try that is not told OK must not execute anything.

  KEYS[1] the run's attempts hash   P:{run:T:R}:attempts   (field = attempt id, value = record JSON)
  KEYS[2] the attempt's staging list P:{run:T:R}:staging:A
  ARGV[1] attempt id
  ARGV[2] epoch the job carries
  ARGV[3] worker id
  ARGV[4] now (ms)
  ARGV[5] start key: unique per call (the worker's wrapper draws it), or '' for none

  Idempotent with a start key: a call executed twice (its reply lost when the connection dropped,
  e.g. CLIENT KILL or a Redis restart, and re-sent by ioredis's autoResendUnfulfilledCommands)
  starts one try. The key is kept on the record (`startKey`) until the try records its result
  (finishAttempt, failAttempt, markAttention); a running record that holds this call's key is
  this call, applied: it answers OK with the same try number and clears nothing. Without it, the
  re-send counted a second try: a tool's first try seen as a retry (an irreversible tool then
  stops in `needs_attention`), and one try of WORKER_MAX_TRIES used up.

  Returns:
    { 'OK', tries }             status is now `running`, tries incremented, startedAtMs set once,
                                staging list cleared (a new try re-stages its effects from scratch:
                                an earlier try that died mid-way must not leave half its effects)
    { 'DONE', tries, status }   already `succeeded`, `failed` or `needs_attention` (an operator
                                decides, issue 11 D2): do not execute again
    { 'FENCED', tries, status } `cancelled`, `superseded`, or the job's epoch is not the record's
    { 'MISSING' }               no such attempt
]]
--#include state-codec
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'MISSING' } end
local rec = decA(raw, ARGV[1])
local tries = tonumber(rec.tries) or 0
local status = rec.status
if status == 'succeeded' or status == 'failed' or status == 'needs_attention' then return { 'DONE', tries, status } end
if status == 'cancelled' or status == 'superseded' then return { 'FENCED', tries, status } end
if tonumber(rec.epoch) ~= tonumber(ARGV[2]) then return { 'FENCED', tries, status } end
local key = ARGV[5] or ''
if key ~= '' and status == 'running' and rec.startKey == key then return { 'OK', tries } end

tries = tries + 1
rec.tries = tries
rec.status = 'running'
rec.workerId = ARGV[3]
if key ~= '' then rec.startKey = key else rec.startKey = nil end
if rec.startedAtMs == nil or rec.startedAtMs == cjson.null then rec.startedAtMs = tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1], encA(rec))
redis.call('DEL', KEYS[2])
return { 'OK', tries }
