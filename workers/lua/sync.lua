-- Register the configured agents and pools (idempotent). Ordinals are assigned once, on first sight, and
-- never change, so the rotation order is stable across restarts and configuration changes.
-- ARGV[1]: JSON {prefix, agents: [{name, id, weight, capacity, wrap_up_ms}], pools: [{name, members, config}]}
local req = cjson.decode(ARGV[1])
local P = req.prefix
local wanted = {}
for _, a in ipairs(req.agents) do
  wanted[a.name] = true
  local ord = redis.call('HGET', P .. ':ordinals', a.name)
  if not ord then
    ord = redis.call('INCR', P .. ':ordinal_seq')
    redis.call('HSET', P .. ':ordinals', a.name, ord)
  end
  redis.call('HSET', P .. ':agent:' .. a.name, 'ordinal', ord, 'weight', a.weight, 'capacity', a.capacity,
             'wrap_up_ms', a.wrap_up_ms, 'id', a.id)
  redis.call('SADD', P .. ':agents', a.name)
end
for _, name in ipairs(redis.call('SMEMBERS', P .. ':agents')) do
  if not wanted[name] then redis.call('SREM', P .. ':agents', name) end
end
local pools = {}
for _, p in ipairs(req.pools) do
  pools[p.name] = true
  local key = P .. ':pool:' .. p.name .. ':members'
  redis.call('DEL', key)
  for _, name in ipairs(p.members) do
    redis.call('ZADD', key, redis.call('HGET', P .. ':ordinals', name), name)
  end
  redis.call('SET', P .. ':pool:' .. p.name .. ':config', p.config)
  redis.call('SADD', P .. ':pools', p.name)
end
for _, name in ipairs(redis.call('SMEMBERS', P .. ':pools')) do
  if not pools[name] then
    redis.call('SREM', P .. ':pools', name)
    redis.call('DEL', P .. ':pool:' .. name .. ':members', P .. ':pool:' .. name .. ':config')
  end
end
return 1
