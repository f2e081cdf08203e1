-- Release a lead's delivery lock if this worker still holds it.
-- KEYS[1] the lead's delivery lock (string).
-- ARGV[1] the holder's token.
-- Returns 1 when released, 0 when the lock was gone or held by another.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
