--[[
  Marks an ended run, once, with a flag that makes a step of its ended pass happen once per run:
  - `endNotice`: its end was handed to the webhook queue (or its tenant had no webhook then).
  Never creates the run hash (a run whose keys expired stays gone).
  KEYS[1] run hash   P:{run:T:R}:run
  ARGV[1] the flag: endNotice
  Returns: 1 marked now, 0 already marked, -1 no such run or still running
]]
if ARGV[1] ~= 'endNotice' then return redis.error_reply('ERR markEndedRun: unknown flag ' .. tostring(ARGV[1])) end
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'running' then return -1 end
return redis.call('HSETNX', KEYS[1], ARGV[1], '1')
