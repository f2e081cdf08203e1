-- Claim parked leads whose time has come (each claimed by exactly one caller) and give each a fresh lease.
-- KEYS[1] parked (zset), KEYS[2] pending (zset).
-- ARGV[1] now (ms), ARGV[2] at most this many leads, ARGV[3] lease (ms).
-- Returns the claimed lead ids.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
end
return due
