--[[
  Folds an ended, fully settled run into its compact record (issue 13 item 3, issue 10 item 9):
  one JSON string (KEYS[8]) with a summary per node and per attempt (state, epoch, timings
  relative to the run's creation, usage, cost, errors, closed speculations), the decision records,
  the outcomes and, with `keepOutputs`, the outputs, guesses and released effects. Everything else
  of the run goes in the same step: the node and attempt hashes, the decision, outcome and effect
  lists, the outbox and every staging list; the run hash keeps its other fields (status, times,
  costs, workflow) and loses `trace:*` (and `trace`), `tenant`, `runId` (both in the key), `expiresInMs` (and
  `inputs` unless outputs are kept), and gains `compact` = 1. The record takes the run hash's
  remaining time to live (retention).
  Refused unless every attempt the run started is settled (issue 11 D1): none queued, running or
  needing an operator, none fenced after it started and not yet billed (no finishedAtMs), and the
  outbox empty; and unless every outcome the caller found due is recorded (node `outs`).
  Record format (v 2; packages/shared/src/redis/run-record.ts reads it, and v 1 records too):
    {"v":2,"n":{node:{s,e,au,src,t0,t1,err,o,cl,a:{attemptId:{k,e,s,d,u:[in,cachedIn,out,cacheWrite],
     ue,c,r,t,t0,t1,n,err,at,atm,rb,w,o,oc,as}}}},"d":[decision...],"o":[outcome...],"x":[effect...],"xn":n}
    times (t, t0, t1, atm) are ms after the run's createdAtMs; `oc`:1 = the attempt's output is
    its node's output (kept once); `xn` = number of released effects when they are not kept.
    v 2 leaves out what most records would repeat (about 90 B per node): a node's `s` when it is
    'succeeded', its `au` when it is '<node>.a1', its `src` when it is 'authoritative' (a node
    with no auth or no source says `false`); an attempt's `k` when it is 'authoritative', its `s`
    when it is 'succeeded', and its `e` when it is its node's epoch.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] decisions list  P:{run:T:R}:decisions
  KEYS[5] outcomes list   P:{run:T:R}:outcomes
  KEYS[6] effects list    P:{run:T:R}:effects
  KEYS[7] intents hash    P:{run:T:R}:intents
  KEYS[8] record string   P:{run:T:R}:rec
  ARGV[1] keepOutputs: '1' keeps inputs, outputs, guesses and released effects
  ARGV[2] outcome ids due, JSON [[nodeId, outcomeId], ...] (each must be recorded)
  Returns: 1 compacted; 0 already compacted; -1 missing or running; -2 an attempt is not settled
           or the outbox is not empty; -3 a due outcome is not recorded
  Staging lists P:{run:T:R}:staging:A are named from KEYS[3] (same hash tag, same slot).
]]
--#include state-codec
local head = redis.call('HMGET', KEYS[1], 'status', 'createdAtMs')
local status = head[1]
if not status or status == 'running' then return -1 end
if redis.call('EXISTS', KEYS[8]) == 1 then return 0 end
if redis.call('HLEN', KEYS[7]) > 0 then return -2 end
local keep = ARGV[1] == '1'
local created = tonumber(head[2]) or 0
local function rel(v)
  local n = tonumber(v)
  if n == nil then return nil end
  return n - created
end
local function present(v)
  return v ~= nil and v ~= cjson.null
end

local nodes = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do nodes[flat[i]] = decN(flat[i + 1]) end
for _, pair in ipairs(cjson.decode(ARGV[2])) do
  local n = nodes[pair[1]]
  if n == nil or type(n.outs) ~= 'table' or not n.outs[pair[2]] then return -3 end
end

-- The attempts are read before the nodes are summed: a node whose output is its auth attempt's
-- (`oa`, state codec) takes it from there.
local attemptFlat = redis.call('HGETALL', KEYS[3])
local attemptsById = {}
for i = 1, #attemptFlat, 2 do attemptsById[attemptFlat[i]] = decA(attemptFlat[i + 1], attemptFlat[i]) end

local out = {}
for id, n in pairs(nodes) do
  if n.oa == 1 then
    local src = attemptsById[n.auth]
    n.output = src and src.output or nil
  end
  local s = { e = n.epoch, a = {} }
  if n.state ~= 'succeeded' then s.s = n.state end
  if not present(n.auth) then s.au = false elseif n.auth ~= id .. '.a1' then s.au = n.auth end
  if not present(n.source) then s.src = false elseif n.source ~= 'authoritative' then s.src = n.source end
  if present(n.startedAtMs) then s.t0 = rel(n.startedAtMs) end
  if present(n.finishedAtMs) then s.t1 = rel(n.finishedAtMs) end
  if present(n.error) then s.err = n.error end
  if keep and present(n.output) then s.o = n.output end
  if type(n.closed) == 'table' and next(n.closed) ~= nil then s.cl = n.closed end
  out[id] = s
end

local attemptIds = {}
for i = 1, #attemptFlat, 2 do
  local id = attemptFlat[i]
  local a = attemptsById[id]
  local st = a.status
  if st == 'queued' or st == 'running' or st == 'needs_attention' then return -2 end
  if (st == 'cancelled' or st == 'superseded') and not present(a.finishedAtMs) and present(a.startedAtMs) then return -2 end
  table.insert(attemptIds, id)
  local s = { c = tonumber(a.costNanoUsd) or 0, t = rel(a.createdAtMs), n = tonumber(a.tries) or 0 }
  if a.kind ~= 'authoritative' then s.k = a.kind end
  if st ~= 'succeeded' then s.s = st end
  if present(a.decisionId) then s.d = a.decisionId end
  if type(a.usage) == 'table' then
    local u = a.usage
    s.u = { tonumber(u.inputTokens) or 0, tonumber(u.cachedInputTokens) or 0, tonumber(u.outputTokens) or 0 }
    if present(u.cacheWriteTokens) then s.u[4] = tonumber(u.cacheWriteTokens) end
  end
  if a.usageEstimated == true then s.ue = 1 end
  if present(a.reservedNanoUsd) then s.r = a.reservedNanoUsd end
  if present(a.startedAtMs) then s.t0 = rel(a.startedAtMs) end
  if present(a.finishedAtMs) then s.t1 = rel(a.finishedAtMs) end
  if present(a.error) then s.err = a.error end
  if present(a.attention) then s.at = a.attention end
  if present(a.attentionAtMs) then s.atm = rel(a.attentionAtMs) end
  if present(a.resolvedBy) then s.rb = a.resolvedBy end
  if present(a.workerId) then s.w = a.workerId end
  local node = out[a.nodeId]
  if node == nil then
    -- An attempt of a node the run does not list (never expected): kept under its own entry.
    node = { s = 'unknown', e = 0, au = false, src = false, a = {} }
    out[a.nodeId] = node
  end
  if a.epoch ~= node.e then s.e = a.epoch end
  if keep then
    if present(a.output) then
      local auth = nodes[a.nodeId] and nodes[a.nodeId].auth
      if node.o ~= nil and auth == id and node.o == a.output then s.oc = 1 else s.o = a.output end
    end
    if type(a.assumed) == 'table' and next(a.assumed) ~= nil then s.as = a.assumed end
  end
  node.a[id] = s
end

-- cjson writes an empty table as {}: every `a` is a map, so that is what it must be.
local parts = { '{"v":2,"n":', cjson.encode(out) }
local function list(key, name)
  local items = redis.call('LRANGE', key, 0, -1)
  table.insert(parts, ',"' .. name .. '":[' .. table.concat(items, ',') .. ']')
  return #items
end
list(KEYS[4], 'd')
list(KEYS[5], 'o')
if keep then
  list(KEYS[6], 'x')
else
  table.insert(parts, ',"xn":' .. redis.call('LLEN', KEYS[6]))
end
table.insert(parts, '}')
redis.call('SET', KEYS[8], table.concat(parts))
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[8], ttl) end

-- One DEL for the run's keys and its staging lists (in chunks: Lua's unpack is limited).
local stagingPrefix = string.sub(KEYS[3], 1, #KEYS[3] - #'attempts') .. 'staging:'
local gone = { KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7] }
for _, id in ipairs(attemptIds) do gone[#gone + 1] = stagingPrefix .. id end
for i = 1, #gone, 1000 do redis.call('DEL', unpack(gone, i, math.min(#gone, i + 999))) end
-- The run hash is written anew: a hash that once held a long value (inputs, trace) stays in
-- Redis's large encoding after HDEL; rewritten with short values only, it is stored compactly.
-- Tenant and run id are in the key; the trace context (`trace:<key>` fields, or one `trace` JSON
-- field in a header written before issue 13 item 3) and the TTL note are of no use any more.
local drop = { trace = true, expiresInMs = true, tenant = true, runId = true }
if not keep then drop.inputs = true end
local header = redis.call('HGETALL', KEYS[1])
local fields = {}
for i = 1, #header, 2 do
  if not drop[header[i]] and string.sub(header[i], 1, 6) ~= 'trace:' then
    table.insert(fields, header[i])
    table.insert(fields, header[i + 1])
  end
end
table.insert(fields, 'compact')
table.insert(fields, '1')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
