-- Change live agent state only if the agent is registered (has an ordinal). ARGV: prefix, name, then
-- field/value pairs; an empty value deletes the field. Returns 1, or 0 for an unknown agent.
local key = ARGV[1] .. ':agent:' .. ARGV[2]
if not redis.call('HGET', key, 'ordinal') then return 0 end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', key, ARGV[i])
  else redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
return 1
