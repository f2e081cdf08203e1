-- Strategy for pick.lua (ctx.cursor: the pool's cursor; ctx.ordinals: agent ordinals). Round robin with a durable
-- cursor: the pool stores the last agent picked; the next is the first eligible candidate whose ordinal (fixed when
-- the agent was first registered) is greater, wrapping around. Adding or removing agents therefore neither resets
-- nor skips the rotation.
local function choose(ctx, cands)
  local last = redis.call('GET', ctx.cursor)
  local index = 1
  if last then
    local last_ord = tonumber(redis.call('HGET', ctx.ordinals, last)) or -1
    for i, c in ipairs(cands) do
      if c.ord > last_ord then index = i; break end
    end
  end
  redis.call('SET', ctx.cursor, cands[index].name)
  if last then return index, 'next in rotation after ' .. last end
  return index, 'first in rotation'
end
