-- Count a failed try of the lead's oldest outcome message and make the lead due again after the backoff.
-- KEYS[1] outcomes due (zset), KEYS[2] the lead's record (hash), KEYS[3] the router's counters (hash).
-- ARGV[1] lead id, ARGV[2] when due (ms), ARGV[3] tries so far, ARGV[4] the last error.
-- The record is written only while it exists (retention may have removed it meanwhile). Returns 1.
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'outcome_status', 'retrying', 'outcome_attempts', ARGV[3], 'outcome_last_error', ARGV[4])
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
redis.call('HINCRBY', KEYS[3], 'outcome:retrying', 1)
return 1
