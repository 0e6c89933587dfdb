--[[
  Issue 10 item 4, fair dispatch: claims up to ARGV[2] ready jobs of a lane for the BullMQ queue,
  only while the workers' free slots allow (outstanding < registered slots + headroom), choosing
  tenants by deficit round-robin with weights (unit cost per job; a tenant's weight, default 1, is
  its quantum per turn). A claimed job moves from its tenant's ready list to `claimed` (until the
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
  ARGV[6] reserved slots R: a tenant that already holds R or more outstanding jobs is handed
          another only while more than R slots are free, so R slots always wait for tenants
          holding fewer than R (a tenant arriving during another's flood starts at once)

  Tenants skipped for the reserve keep their place and quantum; the claim stops when every
  tenant in the ring was skipped in a row.

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
local claimed = 0
local guard = 0
local skipped = 0
while claimed < want do
  guard = guard + 1
  if guard > 100000 then break end
  local tenant = redis.call('LINDEX', KEYS[1], 0)
  if not tenant then break end
  local ready = ARGV[3] .. tenant
  local inuse = tonumber(redis.call('HGET', KEYS[9], tenant) or '0') or 0
  if redis.call('ZCARD', ready) == 0 then
    redis.call('LPOP', KEYS[1])
    redis.call('HDEL', KEYS[2], tenant)
  elseif inuse >= reserved and (free - claimed) <= reserved then
    -- Only the reserve is free and this tenant holds its share of it already: next tenant.
    skipped = skipped + 1
    if skipped >= redis.call('LLEN', KEYS[1]) then break end
    redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
  else
    skipped = 0
    local d = tonumber(redis.call('HGET', KEYS[2], tenant) or '0') or 0
    if d < 1 then
      local w = tonumber(redis.call('HGET', KEYS[3], tenant) or '1') or 1
      if w <= 0 then w = 1 end
      d = d + w
    end
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
      if item then
        redis.call('HSET', KEYS[5], jobId, '{"at":' .. now .. ',"item":' .. item .. '}')
        redis.call('ZADD', KEYS[6], now, jobId)
        redis.call('HSET', KEYS[8], jobId, tenant)
        redis.call('HINCRBY', KEYS[9], tenant, 1)
        table.insert(out, item)
        claimed = claimed + 1
      end
      if redis.call('ZCARD', ready) == 0 then
        -- An emptied list leaves the ring; classic DRR drops its unused quantum.
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
