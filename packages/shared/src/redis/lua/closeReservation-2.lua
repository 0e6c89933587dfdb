--[[
  M10: a reservation's launch succeeded: it is no longer open (its outcome settles it). If it
  was settled meanwhile (the recovery sweep released it while this scheduler stalled), its amount
  is taken again here, unconditionally, so that the outcome's settlement releases what is
  reserved, and the settlement marker says so (`r`). One call instead of a MULTI of three commands
  (issue 13 item 1), and the re-take in the same step.
  Idempotent: a call executed twice (its reply lost when the connection dropped and the call
  re-sent by ioredis's autoResendUnfulfilledCommands) finds the marker `r` and takes nothing
  again. (The re-take was a second call, reserveBudget-1 without an id: re-sent, it reserved twice.)
  KEYS[1] budget hash         P:{tenant:T}:budget
  KEYS[2] settlement markers  P:{tenant:T}:settled:<run id>
  ARGV[1] reservation id
  ARGV[2] the reservation's amount, nano-USD (taken again when it was settled meanwhile)
  Returns: 1 settled meanwhile (under the run, or as a `settled:<id>` marker in the budget hash
  from before markers moved under the run) and taken again, 0 not settled
]]
redis.call('HDEL', KEYS[1], 'open:' .. ARGV[1])
local marker = redis.call('HGET', KEYS[2], ARGV[1])
if marker == 'r' then return 1 end
if marker or redis.call('HEXISTS', KEYS[1], 'settled:' .. ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'reservedNanoUsd', ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], 'r')
  return 1
end
return 0
