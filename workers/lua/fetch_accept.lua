-- Record a lead whose event carried only its CRM id: kept at once, waiting for its record from the CRM's API
-- (status 'fetching', due for a fetch now), or report the record already there. It is not in pending: it is
-- delivered only once its record is fetched and filled in.
-- KEYS[1] the lead's record (hash), KEYS[2] fetches due (zset), KEYS[3] created (zset: the retention index),
-- KEYS[4] the lead's history (list).
-- ARGV[1] payload fingerprint, ARGV[2] now (ms), ARGV[3] lead id, ARGV[4] history entry (JSON),
-- ARGV[5..] field/value pairs.
-- Returns {outcome, status}: outcome 'created', 'exists' (same fingerprint) or 'conflict' (another one).
local existing = redis.call('HGET', KEYS[1], 'fingerprint')
if existing then
  return {existing == ARGV[1] and 'exists' or 'conflict', redis.call('HGET', KEYS[1], 'status')}
end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[3])
redis.call('RPUSH', KEYS[4], ARGV[4])
return {'created', 'fetching'}
