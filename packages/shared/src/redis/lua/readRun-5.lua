--[[
  Reads one run's state in one round trip (the scheduler's reconcile reads it on every event):
  the run header, the node states and the attempt records, as one consistent snapshot, and, once
  the run has ended, how many outbox intents it still holds (its ended pass settles them only when
  there are some; a running run's outbox is not counted, to spare the command). A run folded into
  its compact record (compactRun-8.lua) has no nodes hash: then the record is returned instead.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  KEYS[4] intents hash    P:{run:T:R}:intents
  KEYS[5] record string   P:{run:T:R}:rec
  ARGV    optional: job ids of outbox intents whose jobs are enqueued already, deleted from the
          outbox first (issue 13 item 1: the scheduler's deletion after its enqueue rides on the
          run's next read instead of a command of its own; HDEL, so a re-sent call is harmless)
  Returns: { HGETALL run, HGETALL nodes, HGETALL attempts, intents, record } (flat field/value
  lists; empty when the hash does not exist; intents = HLEN of the outbox when the run has a
  status other than `running`, else -1; record = the compact record, or false when the run has
  node states or no record)
]]
if #ARGV > 0 then redis.call('HDEL', KEYS[4], unpack(ARGV)) end
local run = redis.call('HGETALL', KEYS[1])
local intents = -1
for i = 1, #run, 2 do
  if run[i] == 'status' then
    if run[i + 1] ~= 'running' then intents = redis.call('HLEN', KEYS[4]) end
    break
  end
end
local nodes = redis.call('HGETALL', KEYS[2])
local rec = false
if #nodes == 0 and #run > 0 then rec = redis.call('GET', KEYS[5]) end
return { run, nodes, redis.call('HGETALL', KEYS[3]), intents, rec }
