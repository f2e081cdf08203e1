-- Strategy for pick.lua (ctx.wrr: the pool's current weights). Smooth weighted round robin, as nginx does it: every
-- eligible candidate's current weight grows by its weight, the largest current wins (ties to the lowest ordinal)
-- and gives back the total. Deterministic and evenly interleaved (weights 5,1,1 -> a a b a c a a). Ineligible
-- agents keep their current weight.
local function choose(ctx, cands)
  local key = ctx.wrr
  local names = {}
  for i, c in ipairs(cands) do names[i] = c.name end
  local stored = redis.call('HMGET', key, unpack(names))
  local total, best = 0, 1
  local current = {}
  for i, c in ipairs(cands) do
    current[i] = (tonumber(stored[i]) or 0) + c.weight
    total = total + c.weight
    if current[i] > current[best] then best = i end
  end
  current[best] = current[best] - total
  local pairs_ = {}
  for i, c in ipairs(cands) do
    pairs_[#pairs_ + 1] = c.name
    pairs_[#pairs_ + 1] = current[i]
  end
  redis.call('HSET', key, unpack(pairs_))
  return best, 'weighted rotation (weight ' .. cands[best].weight .. ' of ' .. total .. ')'
end
