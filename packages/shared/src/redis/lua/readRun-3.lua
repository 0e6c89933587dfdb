--[[
  Reads one run's state in one round trip (the scheduler's reconcile reads it on every event):
  the run header, the node states and the attempt records, as one consistent snapshot.
  KEYS[1] run hash        P:{run:T:R}:run
  KEYS[2] nodes hash      P:{run:T:R}:nodes
  KEYS[3] attempts hash   P:{run:T:R}:attempts
  ARGV    (none)
  Returns: { HGETALL run, HGETALL nodes, HGETALL attempts } (flat field/value lists; empty when
  the hash does not exist)
]]
return { redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]) }
