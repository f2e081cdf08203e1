-- Strategy for pick.lua (no keys of its own). Least recently assigned (never assigned first); ties to the lowest
-- ordinal.
local function choose(ctx, cands)
  local best = 1
  for i, c in ipairs(cands) do
    if c.last < cands[best].last then best = i end
  end
  if cands[best].last == 0 then return best, 'longest idle (never assigned)' end
  return best, 'longest idle (' .. math.floor((ctx.now - cands[best].last) / 1000) .. ' s)'
end
