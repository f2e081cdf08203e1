-- Settle a delivery run, in one step: Ryng's answer (if any) and what follows — posted, retrying or waiting —
-- with the history, counters, the parked/pending sets, the pause's held leads, the agent's reservation timeout
-- (started again: still on the lead's way, or just posted), the in-task flag and the lock.
-- The status moves only from an open status (a callback may already have moved a posted lead on).
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] the router's counters (hash),
-- KEYS[4] pending (zset), KEYS[5] parked (zset), KEYS[6] leads held by the pause (set), KEYS[7] the lead's
-- reservation (hash), KEYS[8] reservations by deadline (zset), KEYS[9] the lead's lock (string).
-- ARGV[1] lead id, ARGV[2] lock token ('' keeps the lock), ARGV[3] new status ('' keeps it), ARGV[4] due (ms) to
-- park until ('' = not parked; 'finish' = out of pending and parked), ARGV[5] lease ms, ARGV[6] new reservation
-- deadline (ms), ARGV[7] 'hold' / 'unhold' / '' (the pause's held set), ARGV[8] change to `attempts` (0 or -1),
-- ARGV[9] counters (comma list: `name` adds one, `name=amount` adds amount), ARGV[10] number of history
-- entries n, ARGV[11..10+n] entries, then field/value pairs.
-- Returns the status before.
local lead = ARGV[1]
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local n = tonumber(ARGV[10])
for i = 11 + n, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'in_task', '0')
local open = current ~= 'posted' and current ~= 'connected' and current ~= 'completed' and current ~= 'dead'
if ARGV[3] ~= '' and open then redis.call('HSET', KEYS[1], 'status', ARGV[3]) end
if tonumber(ARGV[8]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[8])) end
for i = 11, 10 + n do redis.call('RPUSH', KEYS[2], ARGV[i]) end
if n > 0 then redis.call('LTRIM', KEYS[2], -200, -1) end
for token in string.gmatch(ARGV[9], '[^,]+') do
  local name, amount = string.match(token, '^(.+)=(%d+)$')
  redis.call('HINCRBY', KEYS[3], name or token, amount and tonumber(amount) or 1)
end
if ARGV[4] == 'finish' then
  redis.call('ZREM', KEYS[4], lead)
  redis.call('ZREM', KEYS[5], lead)
elseif ARGV[4] ~= '' and open then
  redis.call('ZADD', KEYS[5], tonumber(ARGV[4]), lead)
  redis.call('ZADD', KEYS[4], tonumber(ARGV[4]) + tonumber(ARGV[5]), lead)
end
if ARGV[7] == 'hold' then redis.call('SADD', KEYS[6], lead) elseif ARGV[7] == 'unhold' then
  redis.call('SREM', KEYS[6], lead) end
if redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('HSET', KEYS[7], 'deadline', ARGV[6])
  redis.call('ZADD', KEYS[8], tonumber(ARGV[6]), lead)
end
if ARGV[2] ~= '' and redis.call('GET', KEYS[9]) == ARGV[2] then redis.call('DEL', KEYS[9]) end
return current
