-- Count a failed read of a fetching lead's record and make it due again after the backoff.
-- KEYS[1] fetches due (zset), KEYS[2] the lead's record (hash).
-- ARGV[1] lead id, ARGV[2] when due (ms), ARGV[3] tries so far, ARGV[4] the last error, ARGV[5] now (ISO).
-- Returns 1, or 0 when the lead no longer waits for its record (it leaves the fetches due).
if redis.call('HGET', KEYS[2], 'status') ~= 'fetching' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[2], 'fetch_status', 'retrying', 'fetch_attempts', ARGV[3], 'fetch_last_error', ARGV[4],
  'updated_at', ARGV[5])
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
return 1
