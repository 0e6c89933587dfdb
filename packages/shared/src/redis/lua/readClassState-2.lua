--[[
  Issue 13 item 1: an edge class's state as the scheduler reads it for a decision (ControlPlane
  classState): its posterior hash and its recent hit sequence, in one command (it was a MULTI of
  HGETALL and GET: four commands for the same two reads). Read-only.
  KEYS[1] posterior    P:{class:C}:posterior   hash
  KEYS[2] window bits  P:{class:C}:windowbits  string ('1'/'0', oldest first)
  Returns: { posterior as a flat field/value list, window bits or nil }
]]
return { redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2]) }
