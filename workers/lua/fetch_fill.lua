-- Fill a fetching lead with its record from the CRM's API and hand it to delivery: the payload, status 'queued',
-- out of the fetches due and into pending (a fresh lease: lost before its delivery task, the pump queues it).
-- KEYS[1] the lead's record (hash), KEYS[2] fetches due (zset), KEYS[3] pending (zset), KEYS[4] its history (list).
-- ARGV[1] lead id, ARGV[2] the lead's payload (JSON), ARGV[3] lease deadline (ms), ARGV[4] history entry (JSON),
-- ARGV[5] most history entries kept, ARGV[6] now (ISO), ARGV[7] tries so far.
-- Returns 1 when filled, 0 when the lead no longer waits for its record (it is left as it is).
if redis.call('HGET', KEYS[1], 'status') ~= 'fetching' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'payload', ARGV[2], 'status', 'queued', 'fetch_status', 'fetched',
  'fetch_attempts', ARGV[7], 'fetched_at', ARGV[6], 'updated_at', ARGV[6])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
redis.call('RPUSH', KEYS[4], ARGV[4])
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[5]), -1)
return 1
