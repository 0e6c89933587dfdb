--[[
  Moves an edge class to a new stage (M9) with a reason, as a compare-and-set so that several
  estimators never apply one transition twice. Resets the stage's counters; `reset` = 1 also
  restarts learning from the prior (a class re-entering shadow after a kill: the old posterior
  described a world that has changed) and empties the window.
  KEYS[1] posterior hash (classKeys().posterior)
  KEYS[2] window list (classKeys().window)
  KEYS[3] the window as one string (classKeys().windowBits), emptied with the list
  ARGV[1] expected stage, or '*' = any stage other than the new one
  ARGV[2] expected stageVersion ('' = do not check)
  ARGV[3] new stage
  ARGV[4] reason
  ARGV[5] nowMs
  ARGV[6] killedUntilMs (0 = none)
  ARGV[7] reset (1|0): also restarts Page-Hinkley
  Returns: { 1, stageVersion } applied; { 0, stage } precondition failed; { -1 } no such class
]]
local post, win, bits = KEYS[1], KEYS[2], KEYS[3]
local cur = redis.call('HGET', post, 'stage')
if not cur then return { -1 } end
local expected, newStage = ARGV[1], ARGV[3]
if expected == '*' then
  if cur == newStage then return { 0, cur } end
elseif cur ~= expected then
  return { 0, cur }
end
local ver = tonumber(redis.call('HGET', post, 'stageVersion') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= ver then return { 0, cur } end
ver = ver + 1
redis.call('HSET', post, 'stage', newStage, 'stageVersion', ver, 'stageReason', ARGV[4], 'stageAtMs', ARGV[5],
  'prevStage', cur, 'killedUntilMs', ARGV[6], 'stageN', 0, 'stageRealN', 0, 'stageSavedMs', 0,
  'stageWasteNanoUsd', 0, 'stageFencing', 0)
redis.call('HINCRBY', post, 'transitions', 1)
if ARGV[7] == '1' then
  redis.call('HSET', post, 'hits', 0, 'misses', 0, 'n', 0, 'a', redis.call('HGET', post, 'a0'), 'b', redis.call('HGET', post, 'b0'))
  redis.call('HDEL', post, 'phN', 'phMean', 'phCum', 'phMax')
  redis.call('DEL', win, bits)
end
return { 1, ver }
