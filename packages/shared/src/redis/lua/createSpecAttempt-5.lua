--[[
  Launches a speculation of a pending node on guessed upstream outputs (M1, M8): records the
  decision, claims the decision slot (so two schedulers never decide the same trigger twice),
  bumps the node's epoch, creates the speculative attempt (status `queued`) and writes its job
  to the `intents` outbox, all at once. Refused when any assumed upstream has already finished
  (the guess would be pointless; the real output is known).
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] intents hash    P:{run:T:R}:intents
  KEYS[5] decisions list  P:{run:T:R}:decisions
  ARGV[1] node id
  ARGV[2] expected node epoch
  ARGV[3] claim name (e.g. `runtime`, `stream`)
  ARGV[4] attempt id
  ARGV[5] attempt record JSON
  ARGV[6] job id
  ARGV[7] intent JSON
  ARGV[8] decision record JSON
  ARGV[9] spec JSON object {a, d, assumed, ok, res, cls, at, st?, cas?, src?}; `st`: upstreams the stream
          settled (M8, no evidence: M5); `src` (cascades) maps
          an upstream to the speculative attempt whose result was taken as its guess
  Returns: {1, epoch} launched
           {0, reason} with reason in run|state|epoch|spec|claimed|upstream
  Idempotent: a call executed twice (its reply lost when the connection dropped and the call
  re-sent by ioredis's autoResendUnfulfilledCommands) finds its attempt carrying its reservation
  id (unique per call, a random UUID in it) and answers {1, epoch} again, writing nothing.
  (Refused instead, its caller released the budget reservation and the spend hold of a
  speculation that stood: the outcome's settlement later released the reservation a second time.)
]]
--#include state-codec
-- This call, executed before: its attempt exists with its reservation id.
local function mine()
  local prior = redis.call('HGET', KEYS[3], ARGV[4])
  if not prior then return nil end
  local a = decA(prior, ARGV[4])
  local rid = decA(ARGV[5], ARGV[4]).reservationId
  if rid == nil or rid == cjson.null or a.reservationId ~= rid then return nil end
  return a
end
local function refuse(reason)
  local a = mine()
  if a then return {1, tonumber(a.epoch)} end
  return {0, reason}
end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return refuse('run') end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {0, 'state'} end
local n = decN(raw)
if n.state ~= 'pending' then return refuse('state') end
if tostring(n.epoch) ~= ARGV[2] then return refuse('epoch') end
if n.spec then return refuse('spec') end
if type(n.claims) ~= 'table' then n.claims = {} end
if n.claims[ARGV[3]] then return refuse('claimed') end
local spec = cjson.decode(ARGV[9])
for up, _ in pairs(spec.assumed) do
  local uraw = redis.call('HGET', KEYS[2], up)
  if not uraw then return {0, 'upstream'} end
  local u = decN(uraw)
  if u.state ~= 'pending' and u.state ~= 'running' then return {0, 'upstream'} end
end
-- A cascade stands only on a speculation that is still live: one discarded meanwhile (its
-- upstream missed) takes its subtree with it, including a cascade decided on a stale read.
if type(spec.src) == 'table' then
  for up, attempt in pairs(spec.src) do
    local u = decN(redis.call('HGET', KEYS[2], up))
    if type(u.spec) ~= 'table' or u.spec.a ~= attempt then return {0, 'upstream'} end
  end
end
n.claims[ARGV[3]] = 1
n.epoch = n.epoch + 1
n.spec = spec
redis.call('HSET', KEYS[2], ARGV[1], encN(n))
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
redis.call('RPUSH', KEYS[5], ARGV[8])
return {1, n.epoch}
