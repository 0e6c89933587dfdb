--[[
  The run-end webhook (docs/api.md, Webhooks): records on an ended run that its end was handed to
  the webhook queue (or that its tenant had no webhook then), so the ended pass of any scheduler
  queues it only once. Never creates the run hash (a run whose keys expired stays gone).
  KEYS[1] run hash   P:{run:T:R}:run
  Returns: 1 marked now, 0 already marked, -1 no such run or still running
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'running' then return -1 end
return redis.call('HSETNX', KEYS[1], 'endNotice', '1')
