--[[
  Returns "PONG" and the server time in ms: a smoke test of the script loader.
  KEYS: none
  ARGV: none
  Returns: { "PONG", nowMs }
]]
local t = redis.call('TIME')
return { 'PONG', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) }
