-- Queue one outcome message for a lead's CRM, once per message id (a retried callback queues it once).
-- KEYS[1] the message's marker (string), KEYS[2] the lead's outcome queue (list), KEYS[3] outcomes due (zset),
-- KEYS[4] the lead's record (hash).
-- ARGV[1] the message (JSON), ARGV[2] now (ms), ARGV[3] lead id, ARGV[4] marker TTL (s).
-- Returns 1 when queued, 0 when this message was queued before.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[4])) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', tonumber(ARGV[2]), ARGV[3])
redis.call('HSET', KEYS[4], 'outcome_status', 'pending')
return 1
