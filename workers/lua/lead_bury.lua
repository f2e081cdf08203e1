-- Dead-letter a lead: status, fields and sets change together, so a replay racing the burial can never leave the
-- lead in no set; a lead already delivered (or dead) is never buried.
-- KEYS[1] the lead's record (hash), KEYS[2] pending (zset), KEYS[3] parked (zset), KEYS[4] dead (zset).
-- ARGV[1] lead id, ARGV[2] now (ms), ARGV[3] comma list of final statuses, ARGV[4..] field/value pairs.
-- Returns the previous status, or false (unknown lead, or already final).
local current = redis.call('HGET', KEYS[1], 'status')
if not current or string.find(',' .. ARGV[3] .. ',', ',' .. current .. ',', 1, true) then return false end
redis.call('HSET', KEYS[1], 'status', 'dead')
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), ARGV[1])
return current
