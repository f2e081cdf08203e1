-- Free leads' capacity reservations (idempotent); the agent then enters wrap-up. The caller read each lead's
-- reservation (agent and number) just before and built that agent's and that number's keys from it: a lead whose
-- reservation changed meanwhile is left alone and counted as stale, for the caller to read again.
-- Modes: 'leads' (the call ended), 'cancel' (the lead never reached the agent: no wrap-up, and the agent is not
-- remembered as the number's sticky owner), 'expired' (no terminal callback came: only leads whose reservation
-- deadline is not after now are released).
-- KEYS[1] reservations (zset), then three keys per lead: KEYS[3i - 1] its reservation (hash), KEYS[3i] the
-- agent it named (hash), KEYS[3i + 1] the sticky owner of the number it named (hash).
-- ARGV[1] now (ms), ARGV[2] mode, then three values per lead: ARGV[3i] lead id, ARGV[3i + 1] the agent and
-- ARGV[3i + 2] the number read from its reservation ('' when there was none).
-- Returns {released, stale}.
local now, mode = tonumber(ARGV[1]), ARGV[2]
local released, stale = 0, 0
for i = 1, (#ARGV - 2) / 3 do
  local lead, seen_agent, seen_number = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local key, akey, sticky = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local deadline = redis.call('ZSCORE', KEYS[1], lead)
  local held = redis.call('HMGET', key, 'agent', 'counted', 'number')
  local agent = held[1]
  if mode == 'expired' and not (deadline and tonumber(deadline) <= now) then
    -- extended or released meanwhile: not expired any more
  elseif agent and (agent ~= seen_agent or (held[3] or '') ~= seen_number) then
    stale = stale + 1
  else
    redis.call('ZREM', KEYS[1], lead)
    if agent then
      redis.call('DEL', key)
      if held[2] == '1' and redis.call('EXISTS', akey) == 1 then
        local open = redis.call('HINCRBY', akey, 'open', -1)
        if open < 0 then redis.call('HSET', akey, 'open', 0) end
        local wrap = tonumber(redis.call('HGET', akey, 'wrap_up_ms')) or 0
        redis.call('HSET', akey, 'released_ms', now)
        if wrap > 0 and mode ~= 'cancel' then redis.call('HSET', akey, 'wrap_until', now + wrap) end
      end
      if mode == 'cancel' and held[3] and held[3] ~= '' then
        if redis.call('HGET', sticky, 'agent') == agent then redis.call('DEL', sticky) end
      end
      released = released + 1
    end
  end
end
return {released, stale}
