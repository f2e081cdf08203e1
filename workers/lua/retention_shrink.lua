-- Shrink a finished lead to its tombstone: the record loses all but the tombstone's fields, the history goes.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] created (zset), KEYS[4] tombstones
-- (zset), KEYS[5] dead (zset), KEYS[6] pending (zset), KEYS[7] parked (zset).
-- ARGV[1] lead id, ARGV[2] now (ms), ARGV[3] final statuses (csv), ARGV[4..] the tombstone's field/value pairs.
-- Returns 1, or 0 when the lead is no longer finished (then nothing changes).
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(',' .. ARGV[3] .. ',', ',' .. status .. ',', 1, true) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('HSET', KEYS[1], 'status', status, 'tombstone', '1', 'shrunk_at_ms', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
for i = 5, 7 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), ARGV[1])
return 1
