-- State codec (issue 13 item 3), included by the scripts that read or write a run's attempt
-- records (P:{run:T:R}:attempts) or node states (P:{run:T:R}:nodes); its TypeScript twin is
-- packages/shared/src/redis/state-codec.ts, and the two must agree.
-- Stored: top-level fields under short names, `kind`/`source` as 'A'/'S', `status`/`state` as a
-- code (SC_ST), `usageEstimated` false left out when there is usage, `usage` as
-- [inputTokens, cachedInputTokens, outputTokens(, cacheWriteTokens)], an attempt's times after
-- its createdAtMs (t0, t1, atm relative to t) and its nodeId left out when its id names it
-- (`<node>.<suffix>`, suffix without '.'), its kind and epoch left out when its id says them
-- (`<node>.a<epoch>`, `<node>.s<epoch>`, as attemptIdFor names them), its attempt id left out (the
-- record's field in the attempts hash: decA takes it), a node's finishedAtMs after its startedAtMs (t1
-- relative to t0), a succeeded node's source left out when authoritative, and what is empty or a default left out (assumed/closed/claims/outs {},
-- costNanoUsd 0, tries 0, nulls). `oa` = 1 on a node: its output is its auth attempt's, kept once
-- in the attempt (completeNode-4, confirmSpeculation-4); decN leaves `output` absent then. Nested
-- objects (spec, closed entries, shadow) keep their own names. Decoded: the long names, the
-- defaults restored. A record written before this codec (long names) decodes as it is.
local SC_A = { attemptId = 'i', nodeId = 'n', kind = 'k', epoch = 'e', status = 's', assumed = 'as', decisionId = 'd',
  output = 'o', usage = 'u', usageEstimated = 'ue', costNanoUsd = 'c', reservedNanoUsd = 'r', reservationId = 'ri',
  createdAtMs = 't', startedAtMs = 't0', finishedAtMs = 't1', tries = 'tr', billedTries = 'b', workerId = 'w',
  error = 'err', attention = 'at', attentionAtMs = 'atm', resolvedBy = 'rb', startKey = 'sk' }
local SC_N = { state = 's', epoch = 'e', auth = 'au', output = 'o', source = 'src', error = 'err', startedAtMs = 't0',
  finishedAtMs = 't1', spec = 'sp', closed = 'cl', shadow = 'sh', claims = 'cm', outs = 'ou' }
local SC_A_LONG, SC_N_LONG = {}, {}
for k, v in pairs(SC_A) do SC_A_LONG[v] = k end
for k, v in pairs(SC_N) do SC_N_LONG[v] = k end
local SC_KIND = { authoritative = 'A', speculative = 'S' }
local SC_KIND_LONG = { A = 'authoritative', S = 'speculative' }
-- Attempt statuses and node states (one field `s`, either kind of record).
local SC_ST = { pending = 'p', queued = 'q', running = 'r', succeeded = 'ok', failed = 'f', cancelled = 'c', superseded = 'x', needs_attention = 'na' }
local SC_ST_LONG = {}
for k, v in pairs(SC_ST) do SC_ST_LONG[v] = k end

local function sc_empty(v) return type(v) == 'table' and next(v) == nil end

-- The node id an attempt id `<node>.<suffix>` names (suffix without '.'), or nil.
local function sc_node_of(id)
  if type(id) ~= 'string' then return nil end
  local dot = string.find(id, '%.[^.]*$')
  if dot == nil or dot == 1 then return nil end
  return string.sub(id, 1, dot - 1)
end

-- An attempt record (JSON text, either encoding) as a table with the long field names; `id`: its
-- field in the attempts hash, its attempt id (a compact record leaves out `i`, issue 13 item 3).
local function decA(raw, id)
  local t = cjson.decode(raw)
  if t.i == nil and t.attemptId == nil and id ~= nil then t.i = id end
  local created = t.t
  if type(created) == 'number' then
    -- Compact: t0, t1 and atm are ms after t (createdAtMs); n absent when the id names it.
    for _, f in ipairs({ 't0', 't1', 'atm' }) do
      if type(t[f]) == 'number' then t[f] = created + t[f] end
    end
    if t.n == nil and t.i ~= nil then t.n = sc_node_of(t.i) end
    -- k and e absent when the id says them (`<node>.a<epoch>`, `<node>.s<epoch>`).
    if t.k == nil and type(t.i) == 'string' then
      local letter, epoch = string.match(t.i, '%.([as])(%d+)$')
      if letter ~= nil then
        t.k = letter == 'a' and 'A' or 'S'
        if t.e == nil then t.e = tonumber(epoch) end
      end
    end
    -- ue absent with usage: false (every try that bills sets it).
    if t.u ~= nil and t.ue == nil then t.ue = false end
  end
  if SC_ST_LONG[t.s] then t.s = SC_ST_LONG[t.s] end
  local a = {}
  for k, v in pairs(t) do a[SC_A_LONG[k] or k] = v end
  if SC_KIND_LONG[a.kind] then a.kind = SC_KIND_LONG[a.kind] end
  local u = a.usage
  if type(u) == 'table' and u[1] ~= nil then
    a.usage = { inputTokens = u[1], cachedInputTokens = u[2], outputTokens = u[3], cacheWriteTokens = u[4] }
  end
  if a.assumed == nil then a.assumed = {} end
  if a.costNanoUsd == nil then a.costNanoUsd = 0 end
  if a.tries == nil then a.tries = 0 end
  return a
end

-- The stored text of an attempt record (a table with the long field names).
local function encA(a)
  local r = {}
  for k, v in pairs(a) do
    if v ~= cjson.null and not ((k == 'assumed' and sc_empty(v)) or ((k == 'costNanoUsd' or k == 'tries') and tonumber(v) == 0)) then
      r[SC_A[k] or k] = v
    end
  end
  if SC_KIND[r.k] then r.k = SC_KIND[r.k] end
  if SC_ST[r.s] then r.s = SC_ST[r.s] end
  if r.ue == false and r.u ~= nil then r.ue = nil end
  if type(r.t) == 'number' then
    for _, f in ipairs({ 't0', 't1', 'atm' }) do
      if type(r[f]) == 'number' then r[f] = r[f] - r.t end
    end
  end
  if r.n ~= nil and r.n == sc_node_of(r.i) then r.n = nil end
  if type(r.i) == 'string' and r.t ~= nil then
    local letter, epoch = string.match(r.i, '%.([as])(%d+)$')
    if letter ~= nil and r.k == (letter == 'a' and 'A' or 'S') then
      r.k = nil
      if r.e == tonumber(epoch) then r.e = nil end
    end
  end
  -- The attempt id is the record's field in the attempts hash: left out of a compact record.
  if r.t ~= nil then r.i = nil end
  local u = a.usage
  if type(u) == 'table' and u.inputTokens ~= nil then
    r.u = { u.inputTokens, u.cachedInputTokens or 0, u.outputTokens or 0 }
    if u.cacheWriteTokens ~= nil and u.cacheWriteTokens ~= cjson.null then r.u[4] = u.cacheWriteTokens end
  end
  return cjson.encode(r)
end

-- A node state (JSON text, either encoding) as a table with the long field names.
local function decN(raw)
  local t = cjson.decode(raw)
  -- Compact: t1 is ms after t0 when both are there.
  if type(t.t0) == 'number' and type(t.t1) == 'number' and t.s ~= nil then t.t1 = t.t0 + t.t1 end
  -- A succeeded node's source is authoritative unless it says otherwise ('' = none).
  if t.s == 'ok' then
    if t.src == nil then t.src = 'A' elseif t.src == '' then t.src = nil end
  end
  if SC_ST_LONG[t.s] then t.s = SC_ST_LONG[t.s] end
  local n = {}
  for k, v in pairs(t) do n[SC_N_LONG[k] or k] = v end
  if SC_KIND_LONG[n.source] then n.source = SC_KIND_LONG[n.source] end
  if n.closed == nil then n.closed = {} end
  if n.claims == nil then n.claims = {} end
  if n.outs == nil then n.outs = {} end
  return n
end

-- The stored text of a node state (a table with the long field names).
local function encN(n)
  local r = {}
  for k, v in pairs(n) do
    if v ~= cjson.null and not ((k == 'closed' or k == 'claims' or k == 'outs') and sc_empty(v)) then
      r[SC_N[k] or k] = v
    end
  end
  if SC_KIND[r.src] then r.src = SC_KIND[r.src] end
  if SC_ST[r.s] then r.s = SC_ST[r.s] end
  if r.s == 'ok' then
    if r.src == 'A' then r.src = nil elseif r.src == nil then r.src = '' end
  end
  if type(r.t0) == 'number' and type(r.t1) == 'number' then r.t1 = r.t1 - r.t0 end
  return cjson.encode(r)
end
