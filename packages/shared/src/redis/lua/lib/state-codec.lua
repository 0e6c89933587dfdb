-- State codec (issue 13 item 3), included by the scripts that read or write a run's attempt
-- records (P:{run:T:R}:attempts) or node states (P:{run:T:R}:nodes); its TypeScript twin is
-- packages/shared/src/redis/state-codec.ts, and the two must agree.
-- Stored: top-level fields under short names, `kind`/`source` as 'A'/'S', `usage` as
-- [inputTokens, cachedInputTokens, outputTokens(, cacheWriteTokens)], and what is empty or a
-- default left out (assumed/closed/claims/outs {}, costNanoUsd 0, tries 0, nulls). Nested
-- objects (spec, closed entries, shadow) keep their own names. Decoded: the long names, the
-- defaults restored. A record written before this codec (long names) decodes as it is.
local SC_A = { attemptId = 'i', nodeId = 'n', kind = 'k', epoch = 'e', status = 's', assumed = 'as', decisionId = 'd',
  output = 'o', usage = 'u', usageEstimated = 'ue', costNanoUsd = 'c', reservedNanoUsd = 'r', reservationId = 'ri',
  createdAtMs = 't', startedAtMs = 't0', finishedAtMs = 't1', tries = 'tr', billedTries = 'b', workerId = 'w',
  error = 'err', attention = 'at', attentionAtMs = 'atm', resolvedBy = 'rb' }
local SC_N = { state = 's', epoch = 'e', auth = 'au', output = 'o', source = 'src', error = 'err', startedAtMs = 't0',
  finishedAtMs = 't1', spec = 'sp', closed = 'cl', shadow = 'sh', claims = 'cm', outs = 'ou' }
local SC_A_LONG, SC_N_LONG = {}, {}
for k, v in pairs(SC_A) do SC_A_LONG[v] = k end
for k, v in pairs(SC_N) do SC_N_LONG[v] = k end
local SC_KIND = { authoritative = 'A', speculative = 'S' }
local SC_KIND_LONG = { A = 'authoritative', S = 'speculative' }

local function sc_empty(v) return type(v) == 'table' and next(v) == nil end

local function sc_expand(raw, long)
  local t = cjson.decode(raw)
  local r = {}
  for k, v in pairs(t) do r[long[k] or k] = v end
  return r
end

-- An attempt record (JSON text, either encoding) as a table with the long field names.
local function decA(raw)
  local a = sc_expand(raw, SC_A_LONG)
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
  local u = a.usage
  if type(u) == 'table' and u.inputTokens ~= nil then
    r.u = { u.inputTokens, u.cachedInputTokens or 0, u.outputTokens or 0 }
    if u.cacheWriteTokens ~= nil and u.cacheWriteTokens ~= cjson.null then r.u[4] = u.cacheWriteTokens end
  end
  return cjson.encode(r)
end

-- A node state (JSON text, either encoding) as a table with the long field names.
local function decN(raw)
  local n = sc_expand(raw, SC_N_LONG)
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
  return cjson.encode(r)
end
