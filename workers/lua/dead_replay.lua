-- Replay a dead lead: reset its record, move it from dead to pending and note the replay in its history, at once,
-- so two operators replaying together replay it once.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] dead (zset), KEYS[4] pending (zset).
-- ARGV[1] lead id, ARGV[2] pending deadline (ms), ARGV[3] history entry (JSON), ARGV[4] most history entries kept,
-- ARGV[5..] field/value pairs.
-- Returns 'replayed', 'unknown', or the lead's current status when it is not dead (its stale dead entry is
-- dropped so `replay --all` cannot loop on it).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'unknown'
end
if status ~= 'dead' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return status
end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
return 'replayed'
