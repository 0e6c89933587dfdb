--[[
  Issue 10 item 4, fair dispatch: a worker registers (or refreshes) its slots per lane, stamped
  with Redis's clock (the same clock fairClaim reads, so no process clock skew matters).

  KEYS[1] workers {P:q}:fair:workers  hash  worker id -> {"ops": n, "spec": n, "at": ms}
  ARGV[1] worker id
  ARGV[2] authoritative slots (`ops`)
  ARGV[3] speculative slots (`spec`)

  Returns the stamp (ms).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], '{"ops":' .. tonumber(ARGV[2]) .. ',"spec":' .. tonumber(ARGV[3]) .. ',"at":' .. now .. '}')
return now
