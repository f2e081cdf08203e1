-- Record a new lead as accepted and due for delivery, or report the record already there.
-- KEYS[1] the lead's record (hash), KEYS[2] pending (zset), KEYS[3] created (zset: the retention index).
-- ARGV[1] payload fingerprint, ARGV[2] lease deadline (ms), ARGV[3] lead id, ARGV[4] now (ms),
-- ARGV[5..] field/value pairs.
-- Returns {outcome, status}: outcome 'created', 'exists' (same fingerprint) or 'conflict' (another one).
local lead, pending = KEYS[1], KEYS[2]
local existing = redis.call('HGET', lead, 'fingerprint')
if existing then
  if existing == ARGV[1] then
    return {'exists', redis.call('HGET', lead, 'status')}
  end
  return {'conflict', redis.call('HGET', lead, 'status')}
end
for i = 5, #ARGV, 2 do redis.call('HSET', lead, ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', pending, ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return {'created', 'accepted'}
