-- Free a lead's capacity reservation (idempotent); the agent then enters wrap-up.
-- ARGV: prefix, now_ms, 'leads', lead_id...  or  prefix, now_ms, 'expired', limit (reservations whose
-- deadline passed with no terminal callback)  or  prefix, now_ms, 'cancel', lead_id... (the lead never reached
-- the agent: no wrap-up, and the agent is not remembered as the number's sticky owner).
-- Returns the number of reservations released.
local P, now = ARGV[1], tonumber(ARGV[2])
local leads = {}
if ARGV[3] == 'expired' then
  leads = redis.call('ZRANGEBYSCORE', P .. ':reservations', '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
else
  for i = 4, #ARGV do leads[#leads + 1] = ARGV[i] end
end
local released = 0
for _, lead in ipairs(leads) do
  local key = P .. ':resv:' .. lead
  local held = redis.call('HMGET', key, 'agent', 'counted', 'number')
  local agent = held[1]
  redis.call('ZREM', P .. ':reservations', lead)
  if agent then
    redis.call('DEL', key)
    local akey = P .. ':agent:' .. agent
    if held[2] == '1' and redis.call('EXISTS', akey) == 1 then
      local open = redis.call('HINCRBY', akey, 'open', -1)
      if open < 0 then redis.call('HSET', akey, 'open', 0) end
      local wrap = tonumber(redis.call('HGET', akey, 'wrap_up_ms')) or 0
      redis.call('HSET', akey, 'released_ms', now)
      if wrap > 0 and ARGV[3] ~= 'cancel' then redis.call('HSET', akey, 'wrap_until', now + wrap) end
    end
    if ARGV[3] == 'cancel' and held[3] and held[3] ~= '' then
      local sticky = P .. ':sticky:' .. held[3]
      if redis.call('HGET', sticky, 'agent') == agent then redis.call('DEL', sticky) end
    end
    released = released + 1
  end
end
return released
