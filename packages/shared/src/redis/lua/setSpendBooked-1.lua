--[[
  Issue 10 item 3: how much of an ended run's cost is booked into its tenant's spend ledger
  (`spendBooked`, nano-USD, on the run hash), moved by compare-and-set so that of several
  schedulers booking the same run (its first settlement, or a try billed after it) one books.
  Never creates the run hash.
  KEYS[1] run hash   P:{run:T:R}:run
  ARGV[1] the value expected now ('' = not set yet)
  ARGV[2] the new value, nano-USD (integer string)
  Returns: 1 set, 0 the value was not the expected one (another scheduler moved it), -1 no such
  run or still running
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'running' then return -1 end
local now = redis.call('HGET', KEYS[1], 'spendBooked')
if (now or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'spendBooked', ARGV[2])
return 1
