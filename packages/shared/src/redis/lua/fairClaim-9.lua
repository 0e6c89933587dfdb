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

  Order. A tenant's share is slots × weight / (sum of the weights of the active tenants: those
  with ready or outstanding jobs). While some tenant in the ring holds less than its share, the
  tenants at or above theirs are passed over: a freed slot goes to the tenant under its share,
  not to the next in turn (plain deficit round-robin hands every other freed slot to a flood
  holding most slots already). Among the tenants under their share, and among all of them when
  none is, deficit round-robin with weights decides. A tenant passed over keeps its place in
  turn order and its quantum; the claim stops when every tenant in the ring was passed over in a
  row (a second round first ignores the shares, so a slot never idles for the order alone).

Returns { slots, outstanding, item JSON... } (slots and outstanding before the claim).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lane = ARGV[1]
local ttl = tonumber(ARGV[4])

local slots = 0
local workers = redis.call('HGETALL', KEYS[7])
for i = 1, #workers, 2 do
  local ok, w = pcall(cjson.decode, workers[i + 1])
  if ok and type(w) == 'table' and tonumber(w.at) ~= nil and tonumber(w.at) >= now - ttl then
    slots = slots + (tonumber(w[lane]) or 0)
  else
    redis.call('HDEL', KEYS[7], workers[i])
  end
end
local outstanding = redis.call('ZCARD', KEYS[6])
local free = slots + tonumber(ARGV[5]) - outstanding
local want = math.min(free, tonumber(ARGV[2]))
local out = { slots, outstanding }
if want <= 0 then return out end

local reserved = tonumber(ARGV[6])

-- The active tenants (ring and outstanding), their slots in use and weights: one read each per
-- call, kept up to date below as jobs are claimed.
local inuse = {}
local held = redis.call('HGETALL', KEYS[9])
for i = 1, #held, 2 do inuse[held[i]] = tonumber(held[i + 1]) or 0 end
local weights = {}
local function weight(tenant)
  local w = weights[tenant]
  if w == nil then
    w = tonumber(redis.call('HGET', KEYS[3], tenant) or '1') or 1
    if w <= 0 then w = 1 end
    weights[tenant] = w
  end
  return w
end
local activeWeight = 0
local ring = redis.call('LRANGE', KEYS[1], 0, -1)
for _, tenant in ipairs(ring) do
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
for _, tenant in ipairs(ring) do
  if under(tenant) then underCount = underCount + 1 end
end

local claimed = 0
local guard = 0
local skipped = 0
local byShare = true
while claimed < want do
  guard = guard + 1
  if guard > 100000 then break end
  local tenant = redis.call('LINDEX', KEYS[1], 0)
  if not tenant then break end
  local ready = ARGV[3] .. tenant
  if redis.call('ZCARD', ready) == 0 then
    if under(tenant) then underCount = underCount - 1 end
    redis.call('LPOP', KEYS[1])
    redis.call('HDEL', KEYS[2], tenant)
  elseif ((free - claimed) <= reserved and not mayTakeReserve(tenant)) or (byShare and underCount > 0 and not under(tenant)) then
    -- Only the reserve is free and this tenant may not fill it, or another tenant is under its
    -- share and this one is not: next tenant, keeping this one's quantum.
    skipped = skipped + 1
    if skipped >= redis.call('LLEN', KEYS[1]) then
      if not byShare then break end
      byShare = false
      skipped = 0
    end
    redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
  else
    skipped = 0
    local d = tonumber(redis.call('HGET', KEYS[2], tenant) or '0') or 0
    if d < 1 then d = d + weight(tenant) end
    if d < 1 then
      -- A weight below 1 earns a job only every few turns: keep the quantum, next tenant.
      redis.call('HSET', KEYS[2], tenant, tostring(d))
      redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
    else
      local popped = redis.call('ZPOPMIN', ready)
      local jobId = popped[1]
      local item = redis.call('HGET', KEYS[4], jobId)
      redis.call('HDEL', KEYS[4], jobId)
      d = d - 1
      local wasUnder = under(tenant)
      if item then
        redis.call('HSET', KEYS[5], jobId, '{"at":' .. now .. ',"item":' .. item .. '}')
        redis.call('ZADD', KEYS[6], now, jobId)
        redis.call('HSET', KEYS[8], jobId, tenant)
        redis.call('HINCRBY', KEYS[9], tenant, 1)
        inuse[tenant] = (inuse[tenant] or 0) + 1
        table.insert(out, item)
        claimed = claimed + 1
        byShare = true
      end
      if wasUnder and not under(tenant) then underCount = underCount - 1 end
      if redis.call('ZCARD', ready) == 0 then
        -- An emptied list leaves the ring; classic DRR drops its unused quantum.
        if under(tenant) then underCount = underCount - 1 end
        redis.call('LPOP', KEYS[1])
        redis.call('HDEL', KEYS[2], tenant)
      elseif d < 1 then
        redis.call('HSET', KEYS[2], tenant, tostring(d))
        redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
      else
        redis.call('HSET', KEYS[2], tenant, tostring(d))
      end
    end
  end
end
return out
