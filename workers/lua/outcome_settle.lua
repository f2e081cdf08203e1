-- Settle the lead's oldest outcome message: delivered, or given up on (into the dead outcomes); the next one,
-- if any, is due at once. Nothing happens unless that message is still the oldest (another sender settled it).
-- KEYS[1] the lead's outcome queue (list), KEYS[2] outcomes due (zset), KEYS[3] the lead's record (hash),
-- KEYS[4] dead outcomes (list), KEYS[5] the lead's history (list), KEYS[6] the router's counters (hash).
-- ARGV[1] 'delivered' or 'dead', ARGV[2] now (ms), ARGV[3] lead id, ARGV[4] the message (JSON), ARGV[5] dead
-- entry (JSON), ARGV[6] history entry (JSON), ARGV[7] now (ISO), ARGV[8] most dead outcomes kept,
-- ARGV[9] most history entries kept.
-- The record and history are written only while the record exists (retention may have removed it meanwhile).
-- Returns 1 when settled, 0 when the message was no longer the oldest.
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[4] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HINCRBY', KEYS[6], string.format('outcome:%s', ARGV[1]), 1)  -- a counter's field, not a key
local kept = redis.call('EXISTS', KEYS[3]) == 1
if ARGV[1] == 'dead' then
  redis.call('LPUSH', KEYS[4], ARGV[5])
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[8]) - 1)
end
if kept then
  if ARGV[1] == 'delivered' then
    redis.call('HSET', KEYS[3], 'outcome_status', 'delivered', 'outcome_delivered_at', ARGV[7], 'outcome_attempts', '0')
    redis.call('HINCRBY', KEYS[3], 'outcomes_delivered', 1)
  else
    redis.call('HSET', KEYS[3], 'outcome_status', 'dead', 'outcome_attempts', '0')
    redis.call('HINCRBY', KEYS[3], 'outcomes_dead', 1)
  end
  redis.call('RPUSH', KEYS[5], ARGV[6])
  redis.call('LTRIM', KEYS[5], -tonumber(ARGV[9]), -1)
end
if redis.call('LLEN', KEYS[1]) > 0 then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return 1
