--[[
  Launches a node authoritatively (M8): CAS pending -> running under a new epoch, creates the
  authoritative attempt record (status `queued`) and writes its job to the run's `intents`
  outbox, all at once. Two schedulers racing to launch the same node: exactly one wins.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] intents hash    P:{run:T:R}:intents
  ARGV[1] node id
  ARGV[2] expected node epoch (the epoch the caller read)
  ARGV[3] attempt id
  ARGV[4] attempt record JSON
  ARGV[5] job id
  ARGV[6] intent JSON (queue, job data, options; unique per call: it carries the launch's spend
          hold key, so no other call writes the same text)
  ARGV[7] now ms
  Returns: {1, epoch} launched
           {0, 'run'} the run is not running
           {0, 'state'} the node is not pending
           {0, 'epoch'} the node's epoch moved (another scheduler acted)
           {0, 'spec'} a live speculation still stands for the node
  Idempotent: a call executed twice (its reply lost when the connection dropped and the call
  re-sent by ioredis's autoResendUnfulfilledCommands) finds its own intent in the outbox and
  answers {1, epoch} again, writing nothing. (Refused instead, its caller released the launch's
  spend hold while the launch stood, and left the intent to the recovery sweep.) The intent
  stays in the outbox until this caller sends it, or the recovery sweep after RECOVERY_STALE_MS.
]]
--#include state-codec
local function refuse(reason)
  if redis.call('HGET', KEYS[4], ARGV[5]) == ARGV[6] then return {1, tonumber(ARGV[2]) + 1} end
  return {0, reason}
end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return refuse('run') end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {0, 'state'} end
local n = decN(raw)
if n.state ~= 'pending' then return refuse('state') end
if tostring(n.epoch) ~= ARGV[2] then return refuse('epoch') end
if n.spec then return {0, 'spec'} end
n.epoch = n.epoch + 1
n.state = 'running'
n.auth = ARGV[3]
n.startedAtMs = tonumber(ARGV[7])
redis.call('HSET', KEYS[2], ARGV[1], encN(n))
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
return {1, n.epoch}
