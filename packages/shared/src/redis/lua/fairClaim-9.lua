--[[
  Issue 10 item 4, fair dispatch: claims up to ARGV[2] ready jobs of a lane for the BullMQ queue,
  only while the workers' free slots allow (outstanding < registered slots + headroom), tenants
  under their share of the slots first, then by deficit round-robin with weights (unit cost per
  job; a tenant's weight, default 1, is its quantum per turn; see Order below). A claimed job moves from its tenant's ready list to `claimed` (until the
  caller confirms its BullMQ add) and into `out` (until a worker finishes it), in this one step:
  nothing is lost when the caller dies before the add (the recovery sweep adds claimed jobs older
  than its stale time again, under the same job id). Safe with any number of callers.

  Every key is in the queue slot {P:q}. The tenants' ready lists are named from ARGV[3] (the same
  slot: the prefix carries the hash tag).

  KEYS[1] ring     {P:q}:fair:<lane>:ring     list  tenants with ready jobs, in turn order
  KEYS[2] deficit  {P:q}:fair:<lane>:deficit  hash  tenant -> unused quantum
  KEYS[3] weights  {P:q}:fair:weights         hash  tenant -> weight (absent: 1)
  KEYS[4] items    {P:q}:fair:<lane>:items    hash  job id -> item JSON (ready)
  KEYS[5] claimed  {P:q}:fair:<lane>:claimed  hash  job id -> {"at": ms, "item": item JSON}
  KEYS[6] out      {P:q}:fair:<lane>:out      zset  job id by claim ms (outstanding)
  KEYS[7] workers  {P:q}:fair:workers         hash  worker id -> {"ops": n, "spec": n, "at": ms}
  KEYS[8] owner    {P:q}:fair:<lane>:owner    hash  job id -> tenant (outstanding)
  KEYS[9] inuse    {P:q}:fair:<lane>:inuse    hash  tenant -> outstanding jobs
  ARGV[1] lane (`ops` or `spec`): which slot count of the workers applies
  ARGV[2] most jobs to claim now
  ARGV[3] ready-list key prefix ({P:q}:fair:<lane>:ready:)
  ARGV[4] a worker's registration counts for this long after its last beat (ms)
  ARGV[5] headroom: jobs allowed outstanding beyond the registered slots
  ARGV[6] reserved slots R (the reserve): the last R free slots go only to a tenant holding fewer
          than R, or fewer than its share were one more tenant to arrive (slots × weight /
          (active weights + 1)); a flooding tenant never fills them, so a tenant arriving (or
          running a second job) during another's flood starts at once instead of waiting for
          one of the flood's operations to end
  ARGV[7] optional mode (issue 13 item 1: a step and the pump after it in one call):
          'enqueue' (the outbox's enqueue): ARGV[8..11] job id, item JSON, order score within
          the tenant, tenant. The job is first put on its tenant's ready list exactly as
          fairEnqueue-5.lua does (idempotent by job id), then the claim runs; when the ring was
          empty the job goes straight to `claimed` if that claim would take it (see Fast path in
          the code), without touching the ready list and ring.
          'release' (a worker finished a job): ARGV[8] job id, released first exactly as
          fairRelease-3.lua does (idempotent), then the claim runs.
  After the mode's arguments (from ARGV[7] without a mode), optional: 'confirm' and job ids the
          caller claimed before and has added to BullMQ since: deleted from `claimed` first, as
          the HDEL that confirmed them did (issue 13 item 1: no command of their own).

  Order. A tenant's share is slots × weight / (sum of the weights of the active tenants: those
  with ready or outstanding jobs). While some tenant in the ring holds less than its share, the
  tenants at or above theirs are passed over: a freed slot goes to the tenant under its share,
  not to the next in turn (plain deficit round-robin hands every other freed slot to a flood
  holding most slots already). Among the tenants under their share, and among all of them when
  none is, deficit round-robin with weights decides. A tenant passed over keeps its place in
  turn order and its quantum; the claim stops when every tenant in the ring was passed over in a
  row (a second round first ignores the shares, so a slot never idles for the order alone).

  Round trips (issue 13 item 1): the ring, the ready counts, the deficits and the weights are
  read once per call and kept in Lua; the writes are made once at the end (the ring trimmed or
  rewritten, each hash in one variadic call). A call that finds the ring empty returns after that one
  read. The outcome is the one the step-by-step version gave: nothing else runs
  inside a script.

Returns { slots, outstanding, item JSON... } (slots and outstanding before the claim), or
{ -1, -1 } when no tenant has a ready job (the ring is empty; capacity is then not read). With a
mode the third element is 1 when the job was added (enqueue) or released (release), else 0:
{ slots, outstanding, added or released, item JSON... }.
]]
-- A variadic call over a list of any length (Lua's unpack is limited to a few thousand values).
local function each(cmd, key, list, step)
  local replies = {}
  for i = 1, #list, step do
    local r = redis.call(cmd, key, unpack(list, i, math.min(#list, i + step - 1)))
    if type(r) == 'table' then for _, v in ipairs(r) do replies[#replies + 1] = v end end
  end
  return replies
end

local reserved = tonumber(ARGV[6])

-- The lane's capacity, read once (TIME, the workers' registrations, the outstanding count).
local cap = nil
local function capacity()
  if cap ~= nil then return cap end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local lane = ARGV[1]
  local ttl = tonumber(ARGV[4])
  local slots = 0
  local stale = {}
  local workers = redis.call('HGETALL', KEYS[7])
  for i = 1, #workers, 2 do
    local ok, w = pcall(cjson.decode, workers[i + 1])
    if ok and type(w) == 'table' and tonumber(w.at) ~= nil and tonumber(w.at) >= now - ttl then
      slots = slots + (tonumber(w[lane]) or 0)
    else
      stale[#stale + 1] = workers[i]
    end
  end
  if #stale > 0 then each('HDEL', KEYS[7], stale, 1000) end
  local outstanding = redis.call('ZCARD', KEYS[6])
  local free = slots + tonumber(ARGV[5]) - outstanding
  cap = { now = now, slots = slots, outstanding = outstanding, free = free, want = math.min(free, tonumber(ARGV[2])) }
  return cap
end

-- Modes (ARGV[7]): 'enqueue' and 'release' put `added` / `released` third in the reply.
local mode = ARGV[7]
if mode == 'confirm' then mode = nil end
if mode ~= nil and mode ~= 'enqueue' and mode ~= 'release' then
  return redis.error_reply('fairClaim: ARGV[7] (mode) must be enqueue or release, got ' .. tostring(mode))
end
-- Confirmations (issue 13 item 1): jobs this caller claimed earlier and has since added to
-- BullMQ leave `claimed` here, instead of by an HDEL of their own.
local ci = 7
if mode == 'enqueue' then ci = 12 elseif mode == 'release' then ci = 9 end
if ARGV[ci] == 'confirm' and #ARGV > ci then
  local done = {}
  for i = ci + 1, #ARGV do done[#done + 1] = ARGV[i] end
  each('HDEL', KEYS[5], done, 1000)
end
local enqueue = mode == 'enqueue'
local added = 0
local function finish(out)
  if mode ~= nil then table.insert(out, 3, added) end
  return out
end

if mode == 'release' then
  -- As fairRelease-3.lua: the job's slot is free again, for the lane and its tenant's count.
  local jobId = ARGV[8]
  if redis.call('ZREM', KEYS[6], jobId) == 1 then
    added = 1
    local tenant = redis.call('HGET', KEYS[8], jobId)
    redis.call('HDEL', KEYS[8], jobId)
    if tenant then
      if redis.call('HINCRBY', KEYS[9], tenant, -1) <= 0 then redis.call('HDEL', KEYS[9], tenant) end
    end
  end
end

local function weightOf(raw)
  local w = tonumber(raw or '1') or 1
  if w <= 0 then w = 1 end
  return w
end

-- The ring as a local queue: q[h..#q] is the ring; LPOP is h + 1, a move to the back appends.
-- Read first: with no tenant ready (most calls of a worker freeing a slot) nothing else is read.
local q = redis.call('LRANGE', KEYS[1], 0, -1)

if enqueue then
  local jobId, item, tenant = ARGV[8], ARGV[9], ARGV[11]
  local ready = ARGV[3] .. tenant
  -- Idempotent by job id, as fairEnqueue-5.lua: a job ready, claimed or outstanding is known.
  if redis.call('HEXISTS', KEYS[5], jobId) == 0 and not redis.call('ZSCORE', KEYS[6], jobId) and redis.call('HEXISTS', KEYS[4], jobId) == 0 then
    added = 1
    if #q == 0 then
      -- Fast path. With the ring empty (no ready job: every tenant with one is in the ring), the
      -- claim after the enqueue would see this tenant alone in the ring with this one job. It
      -- takes it unless no slot is free, or only the reserve is and this tenant may not fill it
      -- (a tenant alone is never passed over for its share, and a weight below 1 only makes it
      -- go round the ring of one until its deficit reaches 1). The job then goes straight to
      -- `claimed` and `out`, as that claim leaves it: its ready list and the ring empty again,
      -- the tenant's deficit dropped.
      local c = capacity()
      if c.want >= 1 then
        local w = weightOf(redis.call('HGET', KEYS[3], tenant))
        local blocked = w < 0.0001 -- (a weight this small: the general path, below)
        if not blocked and c.free <= reserved then
          -- Only the reserve is free: the tenant may take it holding fewer than R, or fewer than
          -- its share were one more tenant to arrive.
          local held = redis.call('HGETALL', KEYS[9])
          local names, n = {}, nil
          for i = 1, #held, 2 do
            names[#names + 1] = held[i]
            if held[i] == tenant then n = tonumber(held[i + 1]) or 0 end
          end
          local active = 0
          if #names > 0 then
            local wr = each('HMGET', KEYS[3], names, 1000)
            for i = 1, #names do active = active + weightOf(wr[i]) end
          end
          if n == nil then active = active + w end
          n = n or 0
          blocked = not (n < reserved or n < c.slots * w / (active + 1))
        end
        if not blocked then
          local hadDeficit = redis.call('HGET', KEYS[2], tenant)
          redis.call('HSET', KEYS[5], jobId, '{"at":' .. c.now .. ',"item":' .. item .. '}')
          redis.call('ZADD', KEYS[6], c.now, jobId)
          redis.call('HSET', KEYS[8], jobId, tenant)
          redis.call('HINCRBY', KEYS[9], tenant, 1)
          if hadDeficit then redis.call('HDEL', KEYS[2], tenant) end
          return finish({ c.slots, c.outstanding, item })
        end
      end
    end
    -- The enqueue as fairEnqueue-5.lua writes it, then the claim.
    redis.call('HSET', KEYS[4], jobId, item)
    redis.call('ZADD', ready, tonumber(ARGV[10]), jobId)
    if redis.call('ZCARD', ready) == 1 then
      redis.call('RPUSH', KEYS[1], tenant)
      q[#q + 1] = tenant
    end
  end
end

local n0 = #q
if n0 == 0 then return finish({ -1, -1 }) end
local h = 1

local c = capacity()
local now, slots, outstanding, free, want = c.now, c.slots, c.outstanding, c.free, c.want
local out = { slots, outstanding }
if want <= 0 then return finish(out) end


-- The active tenants (ring and outstanding), their slots in use and weights: one read each per
-- call, kept up to date below as jobs are claimed.
local inuse = {}
local held = redis.call('HGETALL', KEYS[9])
local names = {}
local seen = {}
for i = 1, #held, 2 do
  inuse[held[i]] = tonumber(held[i + 1]) or 0
  if not seen[held[i]] then seen[held[i]] = true; names[#names + 1] = held[i] end
end
for _, tenant in ipairs(q) do
  if not seen[tenant] then seen[tenant] = true; names[#names + 1] = tenant end
end
local weights = {}
local wraw = each('HMGET', KEYS[3], names, 1000)
for i, tenant in ipairs(names) do weights[tenant] = weightOf(wraw[i]) end
local function weight(tenant) return weights[tenant] end
local activeWeight = 0
for _, tenant in ipairs(q) do
  if inuse[tenant] == nil then activeWeight = activeWeight + weight(tenant) end
end
for tenant, _ in pairs(inuse) do activeWeight = activeWeight + weight(tenant) end
local function under(tenant)
  return (inuse[tenant] or 0) < slots * weight(tenant) / activeWeight
end
local function mayTakeReserve(tenant)
  local n = inuse[tenant] or 0
  return n < reserved or n < slots * weight(tenant) / (activeWeight + 1)
end
-- Tenants in the ring under their share (each is in the ring once).
local underCount = 0
for _, tenant in ipairs(q) do
  if under(tenant) then underCount = underCount + 1 end
end

-- Read once per tenant, written at the end.
local readyN = {}
local function readyCount(tenant)
  local c = readyN[tenant]
  if c == nil then
    c = redis.call('ZCARD', ARGV[3] .. tenant)
    readyN[tenant] = c
  end
  return c
end
-- The ring's deficits, one read; `stored`: the field exists (only those need an HDEL).
local deficit = {}
local stored = {}
local dirty = {}
local draw = each('HMGET', KEYS[2], q, 1000)
for i, tenant in ipairs(q) do
  deficit[tenant] = tonumber(draw[i] or '0') or 0
  if draw[i] then stored[tenant] = true end
end
local function getDeficit(tenant)
  return deficit[tenant]
end
local function setDeficit(tenant, d)
  -- As stored: a re-read in the same call sees the value rounded by tostring.
  deficit[tenant] = tonumber(tostring(d))
  dirty[tenant] = 'set'
end
local function dropDeficit(tenant)
  deficit[tenant] = 0
  dirty[tenant] = 'del'
end

local claimedIds = {}
local claimedJson = {}
local outArgs = {}
local ownerArgs = {}
local inc = {}
local incOrder = {}
local itemDel = {}

local claimed = 0
local guard = 0
local skipped = 0
local byShare = true
while claimed < want do
  guard = guard + 1
  if guard > 100000 then break end
  local tenant = q[h]
  if tenant == nil then break end
  local ready = ARGV[3] .. tenant
  if readyCount(tenant) == 0 then
    if under(tenant) then underCount = underCount - 1 end
    h = h + 1
    dropDeficit(tenant)
  elseif ((free - claimed) <= reserved and not mayTakeReserve(tenant)) or (byShare and underCount > 0 and not under(tenant)) then
    -- Only the reserve is free and this tenant may not fill it, or another tenant is under its
    -- share and this one is not: next tenant, keeping this one's quantum.
    skipped = skipped + 1
    if skipped >= #q - h + 1 then
      if not byShare then break end
      byShare = false
      skipped = 0
    end
    q[#q + 1] = tenant
    h = h + 1
  else
    skipped = 0
    local d = getDeficit(tenant)
    if d < 1 then d = d + weight(tenant) end
    if d < 1 then
      -- A weight below 1 earns a job only every few turns: keep the quantum, next tenant.
      setDeficit(tenant, d)
      q[#q + 1] = tenant
      h = h + 1
    else
      local popped = redis.call('ZPOPMIN', ready)
      readyN[tenant] = readyN[tenant] - 1
      local jobId = popped[1]
      local item = redis.call('HGET', KEYS[4], jobId)
      itemDel[#itemDel + 1] = jobId
      d = d - 1
      local wasUnder = under(tenant)
      if item then
        claimedIds[#claimedIds + 1] = jobId
        claimedJson[#claimedJson + 1] = '{"at":' .. now .. ',"item":' .. item .. '}'
        outArgs[#outArgs + 1] = now
        outArgs[#outArgs + 1] = jobId
        ownerArgs[#ownerArgs + 1] = jobId
        ownerArgs[#ownerArgs + 1] = tenant
        if inc[tenant] == nil then
          inc[tenant] = 0
          incOrder[#incOrder + 1] = tenant
        end
        inc[tenant] = inc[tenant] + 1
        inuse[tenant] = (inuse[tenant] or 0) + 1
        table.insert(out, item)
        claimed = claimed + 1
        byShare = true
      end
      if wasUnder and not under(tenant) then underCount = underCount - 1 end
      if readyN[tenant] == 0 then
        -- An emptied list leaves the ring; classic DRR drops its unused quantum.
        if under(tenant) then underCount = underCount - 1 end
        h = h + 1
        dropDeficit(tenant)
      elseif d < 1 then
        setDeficit(tenant, d)
        q[#q + 1] = tenant
        h = h + 1
      else
        setDeficit(tenant, d)
      end
    end
  end
end

-- The writes, once each.
if #itemDel > 0 then each('HDEL', KEYS[4], itemDel, 1000) end
if #claimedIds > 0 then
  local hs = {}
  for i, id in ipairs(claimedIds) do
    hs[#hs + 1] = id
    hs[#hs + 1] = claimedJson[i]
  end
  each('HSET', KEYS[5], hs, 1000)
  each('ZADD', KEYS[6], outArgs, 1000)
  each('HSET', KEYS[8], ownerArgs, 1000)
  for _, tenant in ipairs(incOrder) do redis.call('HINCRBY', KEYS[9], tenant, inc[tenant]) end
end
local dset = {}
local ddel = {}
for tenant, what in pairs(dirty) do
  if what == 'set' then
    dset[#dset + 1] = tenant
    dset[#dset + 1] = tostring(deficit[tenant])
  elseif stored[tenant] then
    ddel[#ddel + 1] = tenant
  end
end
if #ddel > 0 then each('HDEL', KEYS[2], ddel, 1000) end
if #dset > 0 then each('HSET', KEYS[2], dset, 1000) end
-- The ring: q[h..#q]. When only elements of the original ring were taken from the front
-- (h - 1 <= n0), it is the original's tail plus what was moved to the back: LTRIM and RPUSH;
-- when the queue went round, it is rewritten.
if h > 1 or #q > n0 then
  local rest = {}
  if h - 1 <= n0 then
    for i = n0 + 1, #q do rest[#rest + 1] = q[i] end
    if h - 1 == n0 and #rest == 0 then
      redis.call('DEL', KEYS[1])
    else
      if h > 1 then redis.call('LTRIM', KEYS[1], h - 1, -1) end
      if #rest > 0 then each('RPUSH', KEYS[1], rest, 1000) end
    end
  else
    for i = h, #q do rest[#rest + 1] = q[i] end
    redis.call('DEL', KEYS[1])
    if #rest > 0 then each('RPUSH', KEYS[1], rest, 1000) end
  end
end
return finish(out)
