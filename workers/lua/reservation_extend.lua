-- Move an existing reservation's deadline (the lead is still on its way to the agent, or was just posted).
-- KEYS[1] the lead's reservation (hash), KEYS[2] reservations (zset).
-- ARGV[1] lead id, ARGV[2] new deadline (ms).
-- Returns 1, or 0 when the lead holds no reservation.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'deadline', ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[1])
return 1
