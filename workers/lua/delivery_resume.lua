-- Resume delivery after a pause: the pause and the probe right go, and every lead held by the pause that is
-- still parked becomes due now.
-- KEYS[1] paused (hash), KEYS[2] probe (string), KEYS[3] leads held by the pause (set), KEYS[4] parked (zset).
-- ARGV[1] now (ms).
-- Returns 1 when delivery was paused, else 0.
local was_paused = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('ZADD', KEYS[4], 'XX', tonumber(ARGV[1]), id)
end
redis.call('DEL', KEYS[3])
return was_paused
