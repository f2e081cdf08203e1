-- Register the configured agents and pools (idempotent). Ordinals are assigned once, on first sight, and never
-- change, so the rotation order is stable across restarts and configuration changes. Pools registered before but
-- no longer configured are dropped; the caller read them from the pools set just before.
-- KEYS[1] ordinals (hash), KEYS[2] ordinal sequence (string), KEYS[3] configured agents (set), KEYS[4] pools (set),
-- then one agent (hash) per configured agent, then per configured pool its members (zset) and config (string),
-- then per pool to drop its members (zset) and config (string): all in the order of ARGV[1]'s lists.
-- ARGV[1] JSON {agents: [{name, id, weight, capacity, wrap_up_ms}], pools: [{name, members, config}],
-- drop: [pool names]}.
-- Returns 1, or 0 with nothing written when a registered pool is neither configured nor to drop (another process
-- changed the pools set since the caller read it: the caller reads again).
local req = cjson.decode(ARGV[1])
local ordinals, seq, agents_key, pools_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n = 4
local pools, drop = {}, {}
for _, p in ipairs(req.pools) do pools[p.name] = true end
for _, name in ipairs(req.drop) do drop[name] = true end
for _, name in ipairs(redis.call('SMEMBERS', pools_key)) do
  if not pools[name] and not drop[name] then return 0 end
end

local wanted = {}
for _, a in ipairs(req.agents) do
  n = n + 1
  wanted[a.name] = true
  local ord = redis.call('HGET', ordinals, a.name)
  if not ord then
    ord = redis.call('INCR', seq)
    redis.call('HSET', ordinals, a.name, ord)
  end
  redis.call('HSET', KEYS[n], 'ordinal', ord, 'weight', a.weight, 'capacity', a.capacity,
             'wrap_up_ms', a.wrap_up_ms, 'id', a.id)
  redis.call('SADD', agents_key, a.name)
end
for _, name in ipairs(redis.call('SMEMBERS', agents_key)) do
  if not wanted[name] then redis.call('SREM', agents_key, name) end
end
for _, p in ipairs(req.pools) do
  local members, config = KEYS[n + 1], KEYS[n + 2]
  n = n + 2
  redis.call('DEL', members)
  for _, name in ipairs(p.members) do
    redis.call('ZADD', members, redis.call('HGET', ordinals, name), name)
  end
  redis.call('SET', config, p.config)
  redis.call('SADD', pools_key, p.name)
end
for _, name in ipairs(req.drop) do
  n = n + 2
  if redis.call('SREM', pools_key, name) == 1 then redis.call('DEL', KEYS[n - 1], KEYS[n]) end
end
return 1
