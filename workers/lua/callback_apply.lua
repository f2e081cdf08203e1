-- Apply one Ryng callback to its lead, once: the dedup marker and the record change are written together, or not
-- at all. Ryng called the customer, so the lead also leaves the dead letters and stops waiting anywhere.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] the callback's dedup marker (string),
-- KEYS[4] dead (zset), KEYS[5] pending (zset), KEYS[6] parked (zset).
-- ARGV[1] new status, ARGV[2] history entry (JSON), ARGV[3] comma list of statuses it may not overwrite,
-- ARGV[4] dedup marker TTL (s), ARGV[5] lead id, ARGV[6..] field/value pairs.
-- Returns 'applied', 'duplicate' (marker present) or 'unknown' (no such lead).
if redis.call('EXISTS', KEYS[3]) == 1 then return 'duplicate' end
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 'unknown' end
local blocked = ',' .. ARGV[3] .. ','
if not string.find(blocked, ',' .. current .. ',', 1, true) then
  redis.call('HSET', KEYS[1], 'status', ARGV[1])
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], -200, -1)
redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[4]))
for i = 4, 6 do redis.call('ZREM', KEYS[i], ARGV[5]) end
return 'applied'
