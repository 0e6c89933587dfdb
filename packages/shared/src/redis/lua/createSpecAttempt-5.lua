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
]]
--#include state-codec
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return {0, 'run'} end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {0, 'state'} end
local n = decN(raw)
if n.state ~= 'pending' then return {0, 'state'} end
if tostring(n.epoch) ~= ARGV[2] then return {0, 'epoch'} end
if n.spec then return {0, 'spec'} end
if type(n.claims) ~= 'table' then n.claims = {} end
if n.claims[ARGV[3]] then return {0, 'claimed'} end
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
