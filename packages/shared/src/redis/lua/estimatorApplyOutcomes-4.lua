--[[
  Applies a batch of outcomes of ONE edge class (M5, M9) in stream order, atomically and
  idempotently (issue 13 item 2: one script per class per batch instead of one per outcome).
  Every key is in the class's hash tag {class:C}, so the script runs in one Cluster slot.
  An outcome id seen before (or twice in the batch) changes nothing and is reported as a
  duplicate. hit/shadow_hit and miss/shadow_miss update the posterior and the window (shadow
  outcomes learn at zero cost); hit, miss and cancelled are real speculations and add to the
  stage's value counters. The class hash is read once and written once. The window is kept twice,
  in lockstep: the list (what readers such as the operator API use) and the same sequence as one
  string (read here with one GET instead of an LRANGE of up to windowCap elements; built from the
  list when absent, e.g. a class from before this script). Both are appended to once per batch.
  The string is returned as it was before the batch; the caller rebuilds each outcome's window
  from it: w_i = (w_{i-1} .. x_i) cut to its last windowCap_i characters, which is what
  RPUSH + LTRIM -windowCap -1 per outcome leaves in the list.
  KEYS[1] posterior hash (classKeys().posterior)
  KEYS[2] seen: sorted set of outcome ids scored by the ms they were applied (classKeys().seen)
  KEYS[3] window list of '1'/'0', oldest first (classKeys().window)
  KEYS[4] the window as one string (classKeys().windowBits)
  ARGV[1] nowMs
  ARGV[2] fallback a0, ARGV[3] fallback b0, ARGV[4] fallback stage (hash created before ensureClass)
  ARGV[5] ids applied before this ms are forgotten, or '' for none (the estimator's dedupe
          horizon, services/estimator/src/dedupe-horizon.ts: the window before the outcome
          streams' delivery cut)
  ARGV[6 + 8i ..] outcome i, 8 values: outcomeId, kind (hit | miss | cancelled | shadow_hit |
          shadow_miss), wasteNanoUsd (integer), savedMs (integer), fencing violation (1|0),
          windowCap, tenant, Page-Hinkley delta
  Returns: { 0 } every outcome was a duplicate, or
           { 1, stage, stageVersion, killedUntilMs, tenant, windowBefore,
             stageN, stageRealN, stageSavedMs, stageWasteNanoUsd, stageFencing,
             phN, phMean, phCum, phMax,            (the class state before the batch)
             then 3 values per outcome: applied (1|0), a, b (after it; 0, 0 for a duplicate) }
           (floats as strings). The caller rebuilds each applied outcome's counters and
           Page-Hinkley state from the state before the batch with the same steps (integer sums;
           the same double arithmetic in the same order, so the same bits), and its window.
  The Page-Hinkley step mirrors calibration/detectors.ts `pageHinkleyStep` (a test checks it):
    n = n + 1; mean = mean + (x - mean) / n; cum = cum + (x - mean + delta); max = max(max, cum)
]]
local post, seen, win, bits = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = ARGV[1]
local FIRST, G = 6, 8
local count = math.floor((#ARGV - FIRST + 1) / G)

local fresh = {}
local anyFresh = false
for i = 0, count - 1 do
  if redis.call('ZADD', seen, 'NX', now, ARGV[FIRST + i * G]) == 1 then
    fresh[i] = true
    anyFresh = true
  end
end
if not anyFresh then return { 0 } end
if ARGV[5] ~= '' then redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. ARGV[5]) end

if redis.call('EXISTS', post) == 0 then
  redis.call('HSET', post, 'a0', ARGV[2], 'b0', ARGV[3], 'a', ARGV[2], 'b', ARGV[3], 'hits', 0, 'misses', 0,
    'n', 0, 'stage', ARGV[4], 'stageVersion', 0, 'stageReason', 'created by estimator: outcome before ensureClass',
    'stageAtMs', now, 'killedUntilMs', 0, 'stageN', 0, 'stageRealN', 0, 'stageSavedMs', 0,
    'stageWasteNanoUsd', 0, 'stageFencing', 0, 'provisional', 1, 'createdAtMs', now)
end
for i = 0, count - 1 do
  if fresh[i] then
    redis.call('HSETNX', post, 'tenant', ARGV[FIRST + i * G + 6])
    break
  end
end

local h = redis.call('HMGET', post, 'a0', 'b0', 'a', 'b', 'hits', 'misses', 'n', 'stageN', 'stageRealN',
  'stageSavedMs', 'stageWasteNanoUsd', 'stageFencing', 'totalSavedMs', 'totalWasteNanoUsd',
  'phN', 'phMean', 'phCum', 'phMax', 'stage', 'stageVersion', 'killedUntilMs', 'tenant')
local function num(v) return tonumber(v or '0') or 0 end
local a0, b0, a, b = num(h[1]), num(h[2]), h[3] or '0', h[4] or '0'
local hits, misses, n, stageN, stageRealN = num(h[5]), num(h[6]), num(h[7]), num(h[8]), num(h[9])
local stageSavedMs, stageWaste, stageFencing = num(h[10]), num(h[11]), num(h[12])
local totalSavedMs, totalWaste = num(h[13]), num(h[14])
local phN, phMean, phCum, phMax = num(h[15]), num(h[16]), num(h[17]), num(h[18])

local windowBefore = redis.call('GET', bits)
if not windowBefore then windowBefore = table.concat(redis.call('LRANGE', win, 0, -1)) end
local winLen = #windowBefore
local pushed = {}
local anyX, anyReal = false, false
local function int(v) return string.format('%.0f', v) end
local function flt(v) return string.format('%.17g', v) end
local out = { 1, h[19] or '', h[20] or '0', h[21] or '0', h[22] or '', windowBefore,
  int(stageN), int(stageRealN), int(stageSavedMs), int(stageWaste), int(stageFencing),
  int(phN), flt(phMean), flt(phCum), flt(phMax) }

for i = 0, count - 1 do
  local o = FIRST + i * G
  if not fresh[i] then
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    local kind = ARGV[o + 1]
    local x = -1
    if kind == 'hit' or kind == 'shadow_hit' then x = 1 elseif kind == 'miss' or kind == 'shadow_miss' then x = 0 end
    if x ~= -1 then
      anyX = true
      if x == 1 then hits = hits + 1 else misses = misses + 1 end
      a = tostring(a0 + hits)
      b = tostring(b0 + misses)
      n = n + 1
      stageN = stageN + 1
      phN = phN + 1
      phMean = phMean + (x - phMean) / phN
      phCum = phCum + (x - phMean + tonumber(ARGV[o + 7]))
      phMax = math.max(phMax, phCum)
      pushed[#pushed + 1] = x
      winLen = math.min(winLen + 1, tonumber(ARGV[o + 5]))
    end
    if kind == 'hit' or kind == 'miss' or kind == 'cancelled' then
      anyReal = true
      local saved, waste = tonumber(ARGV[o + 3]), tonumber(ARGV[o + 2])
      stageRealN = stageRealN + 1
      stageSavedMs = stageSavedMs + saved
      stageWaste = stageWaste + waste
      stageFencing = stageFencing + tonumber(ARGV[o + 4])
      totalSavedMs = totalSavedMs + saved
      totalWaste = totalWaste + waste
    end
    out[#out + 1] = 1
    out[#out + 1] = a
    out[#out + 1] = b
  end
end

if anyX then
  redis.call('HSET', post, 'hits', int(hits), 'misses', int(misses), 'n', int(n), 'stageN', int(stageN),
    'a', a, 'b', b, 'phN', int(phN), 'phMean', flt(phMean), 'phCum', flt(phCum), 'phMax', flt(phMax))
  for s = 1, #pushed, 1000 do
    redis.call('RPUSH', win, unpack(pushed, s, math.min(s + 999, #pushed)))
  end
  redis.call('LTRIM', win, -winLen, -1)
  redis.call('SET', bits, string.sub(windowBefore .. table.concat(pushed), -winLen))
end
if anyReal then
  redis.call('HSET', post, 'stageRealN', int(stageRealN), 'stageSavedMs', int(stageSavedMs),
    'stageWasteNanoUsd', int(stageWaste), 'stageFencing', int(stageFencing),
    'totalSavedMs', int(totalSavedMs), 'totalWasteNanoUsd', int(totalWaste))
end
redis.call('HSET', post, 'lastOutcomeMs', now)
return out
