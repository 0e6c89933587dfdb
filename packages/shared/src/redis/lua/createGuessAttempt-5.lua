--[[
  M10 two-stage guess purchase, stage 1: buys the guess of a paid (`llm`) predictor for the
  edge up -> node. Records the buy decision, claims its slot (once per node and upstream),
  creates the predictor's attempt (status `queued`, a speculative-queue job whose output is the
  guess) and writes its job to the `intents` outbox, all at once. Refused when the upstream is
  no longer running (a guess of a finished output is pointless) or the node is not pending.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] intents hash    P:{run:T:R}:intents
  KEYS[5] decisions list  P:{run:T:R}:decisions
  ARGV[1] node id (the downstream)
  ARGV[2] upstream id (whose output is guessed)
  ARGV[3] claim name
  ARGV[4] attempt id
  ARGV[5] attempt record JSON
  ARGV[6] job id
  ARGV[7] intent JSON
  ARGV[8] decision record JSON
  Returns: 1 created
           0 refused (run not running, node not pending, claim used, upstream not running, attempt exists)
  Idempotent: a call executed twice (its reply lost when the connection dropped and the call
  re-sent by ioredis's autoResendUnfulfilledCommands) finds its attempt carrying its reservation
  id (unique per call, a random UUID in it) and answers 1 again, writing nothing. (Refused
  instead, its caller released the budget reservation and the spend hold of a guess that was
  bought: its settlement later released the reservation a second time.)
]]
--#include state-codec
-- This call, executed before: its attempt exists with its reservation id.
local function refuse()
  local prior = redis.call('HGET', KEYS[3], ARGV[4])
  if prior then
    local rid = decA(ARGV[5], ARGV[4]).reservationId
    if rid ~= nil and rid ~= cjson.null and decA(prior, ARGV[4]).reservationId == rid then return 1 end
  end
  return 0
end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return refuse() end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local n = decN(raw)
if n.state ~= 'pending' then return refuse() end
if type(n.claims) ~= 'table' then n.claims = {} end
if n.claims[ARGV[3]] then return refuse() end
local uraw = redis.call('HGET', KEYS[2], ARGV[2])
if not uraw then return 0 end
if decN(uraw).state ~= 'running' then return refuse() end
if redis.call('HEXISTS', KEYS[3], ARGV[4]) == 1 then return refuse() end
n.claims[ARGV[3]] = 1
redis.call('HSET', KEYS[2], ARGV[1], encN(n))
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
redis.call('RPUSH', KEYS[5], ARGV[8])
return 1
