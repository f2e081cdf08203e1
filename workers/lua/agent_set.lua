-- Change live agent state only if the agent is registered (has an ordinal).
-- KEYS[1] the agent (hash).
-- ARGV[1..] field/value pairs; an empty value deletes the field.
-- Returns 1, or 0 for an unknown agent.
if not redis.call('HGET', KEYS[1], 'ordinal') then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
