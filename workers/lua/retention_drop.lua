-- Drop a tombstone whose time is up (only a tombstone: never a live record of the same id).
-- KEYS[1] the lead's record (hash), KEYS[2] tombstones (zset). ARGV[1] lead id. Returns 1.
if redis.call('HGET', KEYS[1], 'tombstone') == '1' then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
