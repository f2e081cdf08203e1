-- Strategy for pick.lua (ctx.streak: the pool's streak hash). Fewest open leads; ties go to the longest idle, then
-- the lowest ordinal. Catch-up bound: one agent gets at most ctx.catch_up picks in a row while anyone else is
-- eligible, so a new or returning agent with no open leads is fed gradually instead of taking every lead until
-- level with the others.
local function choose(ctx, cands)
  local streak = redis.call('HMGET', ctx.streak, 'agent', 'n')
  local capped = false
  if #cands > 1 and streak[1] and (tonumber(streak[2]) or 0) >= ctx.catch_up then capped = streak[1] end
  local best = nil
  for i, c in ipairs(cands) do
    if c.name ~= capped then
      local b = cands[best or i]
      if best == nil or c.open < b.open or (c.open == b.open and c.last < b.last) then best = i end
    end
  end
  local reason = 'fewest open (' .. cands[best].open .. ')'
  if capped then reason = reason .. '; ' .. capped .. ' at catch-up bound' end
  return best, reason
end
