-- Delete a dead lead for good: record, history, lock and every index entry.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] its delivery lock (string),
-- KEYS[4] dead (zset), KEYS[5] pending (zset), KEYS[6] parked (zset).
-- ARGV[1] lead id.
-- Returns 'purged', 'unknown', or the lead's status when it is not dead (nothing is deleted).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 'unknown'
end
if status ~= 'dead' then return status end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 'purged'
