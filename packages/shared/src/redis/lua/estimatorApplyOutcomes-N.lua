--[[
  Applies a batch of outcomes of one or more edge classes (M5, M9), each class's in stream order,
  atomically and idempotently (issue 13 item 2: one script per batch instead of one per outcome;
  on a single server one call carries every class of a batch, in a Cluster one call per class,
  each class's keys being under its own hash tag {class:C}, one slot). The number of keys is
  given by the caller (the file's `-N`): 4 per class. A class whose update raises an error (a key
  of the wrong type) is reported as that class's error; the other classes are applied.
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
  Cost (issue 13 item 2, docs/estimator.md "Measured"): the seen set is read with one ZMSCORE and
  written with one ZADD per batch (not one ZADD NX per outcome), an outcome is one argument (its
  id; its kind, fencing flag and tenant settings ride in one character each of three strings, its
  money and time in one string of numbers), and the
  reply carries one character per outcome (the posterior after each outcome is rebuilt by the
  caller from the counts when the prior is integral, which it is for every prior the schedulers
  write; otherwise it is returned per applied outcome).
  KEYS, 4 per class (class c at KEYS[4c-3 .. 4c]):
    posterior hash (classKeys().posterior)
    seen: sorted set of outcome ids scored by the ms they were applied (classKeys().seen)
    window list of '1'/'0', oldest first (classKeys().window)
    the window as one string (classKeys().windowBits)
  ARGV[1] nowMs
  ARGV[2] fallback a0, ARGV[3] fallback b0, ARGV[4] fallback stage (hash created before ensureClass)
  ARGV[5] ids applied before this ms are forgotten, or '' for none (the estimator's dedupe
          horizon, services/estimator/src/dedupe-horizon.ts: the window before the outcome
          streams' delivery cut)
  ARGV[6 ..] each class in KEYS order, from its first value B (B = 6 for the first class; the
    next class starts after the last outcome of this one):
    ARGV[B] kinds, one character per outcome: h hit, m miss, c cancelled, H shadow_hit, M shadow_miss
    ARGV[B+1] fencing violations, one character per outcome: '1' or '0'
    ARGV[B+2] tenant settings of each outcome, one character per outcome: '!' (33) + index of its set
    ARGV[B+3] S, the number of settings sets; then S sets of 3 values: windowCap, tenant, Page-Hinkley delta
    ARGV[B+4 + 3S] wasteNanoUsd and savedMs (integers) of each real outcome (h m c), in order,
      each followed by a comma: 'w1,s1,w2,s2,'
    ARGV[B+5 + 3S + i] outcome i's id (i from 0)
  Returns one reply per class, in KEYS order:
           { -1, message } the class's update raised an error (what it wrote before stays;
             its outcomes are not acknowledged and come back as duplicates of what was applied), or
           { 0 } every outcome was a duplicate, or
           { 1, stage, stageVersion, killedUntilMs, tenant, windowBefore,
             stageN, stageRealN, stageSavedMs, stageWasteNanoUsd, stageFencing,
             phN, phMean, phCum, phMax,            (the class state before the batch)
             a, b, a0, b0, hits, misses,           (the posterior fields before the batch)
             applied: one character per outcome, '1' applied or '0' duplicate,
             integral: 1 when a0 and b0 are integers and a0 + hits, b0 + misses stay below 1e14
               (then each a is a0 + hits and each b is b0 + misses, exactly as stored), else 0
               and 2 more values per applied outcome: a, b after it }
           (floats as strings). The caller rebuilds each applied outcome's counters and
           Page-Hinkley state from the state before the batch with the same steps (integer sums;
           the same double arithmetic in the same order, so the same bits), and its window.
  The Page-Hinkley step mirrors calibration/detectors.ts `pageHinkleyStep` (a test checks it):
    n = n + 1; mean = mean + (x - mean) / n; cum = cum + (x - mean + delta); max = max(max, cum)
]]
local byte, find, sub, tonumber, tostring, min, max = string.byte, string.find, string.sub, tonumber, tostring, math.min, math.max
local now = ARGV[1]
local CHUNK = 1000 -- values per unpack (the Lua stack)
local function int(v) return string.format('%.0f', v) end
local function flt(v) return string.format('%.17g', v) end

-- One class: its keys, and B its first value in ARGV.
local function apply(post, seen, win, bits, B)
  local kinds, fencings, sets = ARGV[B], ARGV[B + 1], ARGV[B + 2]
  local S = tonumber(ARGV[B + 3])
  local SETS = B + 4
  local nums = ARGV[SETS + 3 * S]
  local FIRST = SETS + 3 * S + 1
  local count = #kinds
  local capOf, deltaOf = {}, {}
  for s = 0, S - 1 do
    capOf[s] = tonumber(ARGV[SETS + 3 * s])
    deltaOf[s] = tonumber(ARGV[SETS + 3 * s + 2])
  end

  local ids = {}
  for i = 1, count do ids[i] = ARGV[FIRST + i - 1] end
  local known = {}
  for s = 1, count, CHUNK do
    local scores = redis.call('ZMSCORE', seen, unpack(ids, s, min(s + CHUNK - 1, count)))
    for j = 1, #scores do known[s + j - 1] = scores[j] end
  end
  local fresh = {}
  local add = {}
  local inBatch = {}
  for i = 1, count do
    local id = ids[i]
    if not known[i] and not inBatch[id] then
      inBatch[id] = true
      fresh[i] = true
      add[#add + 1] = now
      add[#add + 1] = id
    end
  end
  if #add == 0 then return { 0 } end
  for s = 1, #add, CHUNK do
    redis.call('ZADD', seen, 'NX', unpack(add, s, min(s + CHUNK - 1, #add)))
  end
  if ARGV[5] ~= '' then redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. ARGV[5]) end

  if redis.call('EXISTS', post) == 0 then
    redis.call('HSET', post, 'a0', ARGV[2], 'b0', ARGV[3], 'a', ARGV[2], 'b', ARGV[3], 'hits', 0, 'misses', 0,
      'n', 0, 'stage', ARGV[4], 'stageVersion', 0, 'stageReason', 'created by estimator: outcome before ensureClass',
      'stageAtMs', now, 'killedUntilMs', 0, 'stageN', 0, 'stageRealN', 0, 'stageSavedMs', 0,
      'stageWasteNanoUsd', 0, 'stageFencing', 0, 'provisional', 1, 'createdAtMs', now)
  end
  for i = 1, count do
    if fresh[i] then
      redis.call('HSETNX', post, 'tenant', ARGV[SETS + 1 + 3 * (byte(sets, i) - 33)])
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
  -- Each a (b) is a0 + hits (b0 + misses) as a decimal string (tostring, %.14g): for integers below
  -- 1e14 that string is the integer itself, so the caller can rebuild it.
  local integral = a0 == math.floor(a0) and b0 == math.floor(b0) and math.abs(a0) + hits + count < 1e14 and math.abs(b0) + misses + count < 1e14
  local out = { 1, h[19] or '', h[20] or '0', h[21] or '0', h[22] or '', windowBefore,
    int(stageN), int(stageRealN), int(stageSavedMs), int(stageWaste), int(stageFencing),
    int(phN), flt(phMean), flt(phCum), flt(phMax), a, b, int(a0), int(b0), int(hits), int(misses),
    '', integral and 1 or 0 }
  if not integral then out[18], out[19] = flt(a0), flt(b0) end
  local appliedFlags = {}
  local pushed = {}
  local anyX, anyReal = false, false

  local at = 1 -- the next real outcome's numbers in nums
  for i = 1, count do
    local k = byte(kinds, i)
    local real = k == 104 or k == 109 or k == 99 -- h m c: a real speculation
    local waste, saved
    if real then
      local c1 = find(nums, ',', at, true)
      local c2 = find(nums, ',', c1 + 1, true)
      if fresh[i] then
        waste = tonumber(sub(nums, at, c1 - 1))
        saved = tonumber(sub(nums, c1 + 1, c2 - 1))
      end
      at = c2 + 1
    end
    if not fresh[i] then
      appliedFlags[i] = '0'
    else
      appliedFlags[i] = '1'
      local set = byte(sets, i) - 33
      local x = -1
      if k == 104 or k == 72 then x = 1 elseif k == 109 or k == 77 then x = 0 end -- h H / m M
      if x ~= -1 then
        anyX = true
        if x == 1 then hits = hits + 1 else misses = misses + 1 end
        if not integral then
          a = tostring(a0 + hits)
          b = tostring(b0 + misses)
        end
        n = n + 1
        stageN = stageN + 1
        phN = phN + 1
        phMean = phMean + (x - phMean) / phN
        phCum = phCum + (x - phMean + deltaOf[set])
        phMax = max(phMax, phCum)
        pushed[#pushed + 1] = x
        winLen = min(winLen + 1, capOf[set])
      end
      if real then
        anyReal = true
        stageRealN = stageRealN + 1
        stageSavedMs = stageSavedMs + saved
        stageWaste = stageWaste + waste
        stageFencing = stageFencing + (byte(fencings, i) == 49 and 1 or 0)
        totalSavedMs = totalSavedMs + saved
        totalWaste = totalWaste + waste
      end
      if not integral then
        out[#out + 1] = a
        out[#out + 1] = b
      end
    end
  end
  out[22] = table.concat(appliedFlags)

  -- One HSET of the fields the batch changed.
  local fields = {}
  if anyX then
    if integral then
      a = tostring(a0 + hits)
      b = tostring(b0 + misses)
    end
    for _, v in ipairs({ 'hits', int(hits), 'misses', int(misses), 'n', int(n), 'stageN', int(stageN),
      'a', a, 'b', b, 'phN', int(phN), 'phMean', flt(phMean), 'phCum', flt(phCum), 'phMax', flt(phMax) }) do
      fields[#fields + 1] = v
    end
    for s = 1, #pushed, CHUNK do
      redis.call('RPUSH', win, unpack(pushed, s, min(s + CHUNK - 1, #pushed)))
    end
    redis.call('LTRIM', win, -winLen, -1)
    redis.call('SET', bits, string.sub(windowBefore .. table.concat(pushed), -winLen))
  end
  if anyReal then
    for _, v in ipairs({ 'stageRealN', int(stageRealN), 'stageSavedMs', int(stageSavedMs),
      'stageWasteNanoUsd', int(stageWaste), 'stageFencing', int(stageFencing),
      'totalSavedMs', int(totalSavedMs), 'totalWasteNanoUsd', int(totalWaste) }) do
      fields[#fields + 1] = v
    end
  end
  fields[#fields + 1] = 'lastOutcomeMs'
  fields[#fields + 1] = now
  redis.call('HSET', post, unpack(fields))
  return out
end

local replies = {}
local B = 6
for c = 1, #KEYS / 4 do
  local k = 4 * c - 3
  local ok, res = pcall(apply, KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], B)
  if ok then
    replies[c] = res
  else
    replies[c] = { -1, type(res) == 'table' and (res.err or 'error') or tostring(res) }
  end
  B = B + 5 + 3 * tonumber(ARGV[B + 3]) + #ARGV[B]
end
return replies
