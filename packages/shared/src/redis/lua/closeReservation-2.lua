--[[
  M10: a reservation's launch succeeded: it is no longer open (its outcome settles it). Says
  whether it was settled meanwhile (the recovery sweep released it while this scheduler stalled),
  in which case the caller takes the amount again (reserveBudget-1, unconditionally). One call
  instead of a MULTI of three commands (issue 13 item 1); the same reads and write, atomically.
  KEYS[1] budget hash         P:{tenant:T}:budget
  KEYS[2] settlement markers  P:{tenant:T}:settled:<run id>
  ARGV[1] reservation id
  Returns: 1 settled meanwhile (under the run, or as a `settled:<id>` marker in the budget hash
  from before markers moved under the run), 0 not settled
]]
redis.call('HDEL', KEYS[1], 'open:' .. ARGV[1])
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[1], 'settled:' .. ARGV[1]) == 1 then return 1 end
return 0
