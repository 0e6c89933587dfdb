-- Hash increments summed per field and applied once each by applySums (one HINCRBY per field, in
-- the order the fields were first added; a zero sum writes nothing): the same totals as one
-- HINCRBY per increment. Included by holdSpend-1.lua and settleRunSpend-2.lua (the holds of a
-- run mostly share their day and month fields).
local sums = {}
local order = {}
local function add(field, amt)
  if sums[field] == nil then
    sums[field] = 0
    order[#order + 1] = field
  end
  sums[field] = sums[field] + amt
end
local function applySums(key)
  for _, field in ipairs(order) do
    if sums[field] ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', sums[field])) end
  end
end
