-- The shared Ryng rate limiter's one step, as functions other scripts splice in (at their `--@RATE_SLOT@`):
-- a sliding log in a sorted set, on Redis's own clock; never more than `limit` grants in any `window_us`.
-- rate_slot(key, limit, window_us, member) -> {1, 0, used} when granted (recorded), {0, wait_us, used} when not.
-- rate_free(key, limit, window_us) -> the slots free now (nothing is taken).
local function rate_trim(key, window_us)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(window_us))
  return now
end
local function rate_slot(key, limit, window_us, member)
  local now = rate_trim(key, window_us)
  local window = tonumber(window_us)
  local used = redis.call('ZCARD', key)
  if used < tonumber(limit) then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
    return {1, 0, used + 1}
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now + 1, used}
end
local function rate_free(key, limit, window_us)
  rate_trim(key, window_us)
  return tonumber(limit) - redis.call('ZCARD', key)
end
