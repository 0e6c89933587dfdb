--[[
  Reads one run's state in one round trip (the scheduler's reconcile reads it on every event):
  the run header, the node states and the attempt records, as one consistent snapshot, and, once
  the run has ended, how many outbox intents it still holds (its ended pass settles them only when
  there are some; a running run's outbox is not counted, to spare the command).
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] intents hash    P:{run:T:R}:intents
  ARGV    (none)
  Returns: { HGETALL run, HGETALL nodes, HGETALL attempts, intents } (flat field/value lists;
  empty when the hash does not exist; intents = HLEN of the outbox when the run has a status
  other than `running`, else -1)
]]
local run = redis.call('HGETALL', KEYS[1])
local intents = -1
for i = 1, #run, 2 do
  if run[i] == 'status' then
    if run[i + 1] ~= 'running' then intents = redis.call('HLEN', KEYS[4]) end
    break
  end
end
return { run, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]), intents }
