-- Claim leads whose next outcome is due: each gets a lease (due again at now + lease) so one sender has it.
-- KEYS[1] outcomes due (zset).
-- ARGV[1] now (ms), ARGV[2] most leads claimed, ARGV[3] lease (ms).
-- Returns the claimed lead ids.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
end
return due
