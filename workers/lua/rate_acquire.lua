-- Take one slot of the shared Ryng rate limit (a sliding log, on Redis's own clock), or say how long to wait.
-- KEYS[1] the log of granted requests (zset, scored by grant time in microseconds).
-- ARGV[1] limit, ARGV[2] window (microseconds), ARGV[3] a unique member for this request.
-- Returns {granted (1 or 0), wait (microseconds, 0 when granted), requests in the window}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0, used + 1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now + 1, used}
