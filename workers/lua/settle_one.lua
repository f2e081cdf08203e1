-- Settling one delivery run, as a function other scripts splice in (at their `--@SETTLE@`): Ryng's answer (if
-- any) and what follows — posted, retrying or waiting — with the history, counters, the parked/pending sets, the
-- pause's held leads, the leads waiting for the limiter, the agent's reservation timeout (started again: still
-- on the lead's way, or just posted), the in-task flag and the lock.
-- The status moves only from an open status (a callback may already have moved a posted lead on).
-- settle(K, A) with K: [1] the lead's record (hash), [2] its history (list), [3] the router's counters (hash),
-- [4] pending (zset), [5] parked (zset), [6] leads held by the pause (set), [7] the lead's reservation (hash),
-- [8] reservations by deadline (zset), [9] the lead's lock (string), [10] leads waiting for the limiter (zset);
-- A: [1] lead id, [2] lock token ('' keeps the lock), [3] new status ('' keeps it), [4] due (ms) to park until
-- ('' = not parked; 'finish' = out of pending and parked), [5] lease ms, [6] new reservation deadline (ms),
-- [7] 'hold' / 'unhold' / '' (the pause's held set), [8] change to `attempts` (0 or -1), [9] counters (comma
-- list: `name` adds one, `name=amount` adds amount), [10] number of history entries n, [11] 'ready' when the lead waits for the limiter (else
-- it leaves that set), [12..11+n] entries, then field/value pairs.
-- Returns the status before (false for an unknown lead).
local function settle(K, A)
  local lead = A[1]
  local current = redis.call('HGET', K[1], 'status')
  if not current then return false end
  local n = tonumber(A[10])
  for i = 12 + n, #A, 2 do redis.call('HSET', K[1], A[i], A[i + 1]) end
  redis.call('HSET', K[1], 'in_task', '0')
  local open = current ~= 'posted' and current ~= 'connected' and current ~= 'completed' and current ~= 'dead'
  if A[3] ~= '' and open then redis.call('HSET', K[1], 'status', A[3]) end
  if tonumber(A[8]) ~= 0 then redis.call('HINCRBY', K[1], 'attempts', tonumber(A[8])) end
  for i = 12, 11 + n do redis.call('RPUSH', K[2], A[i]) end
  if n > 0 then redis.call('LTRIM', K[2], -200, -1) end
  for token in string.gmatch(A[9], '[^,]+') do
    local name, amount = string.match(token, '^(.+)=(%d+)$')
    redis.call('HINCRBY', K[3], name or token, amount and tonumber(amount) or 1)
  end
  if A[4] == 'finish' then
    redis.call('ZREM', K[4], lead)
    redis.call('ZREM', K[5], lead)
  elseif A[4] ~= '' and open then
    redis.call('ZADD', K[5], tonumber(A[4]), lead)
    redis.call('ZADD', K[4], tonumber(A[4]) + tonumber(A[5]), lead)
  end
  if A[11] == 'ready' and open then
    local t = redis.call('TIME')
    redis.call('ZADD', K[10], 'NX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), lead)
  else
    redis.call('ZREM', K[10], lead)
  end
  if A[7] == 'hold' then redis.call('SADD', K[6], lead) elseif A[7] == 'unhold' then
    redis.call('SREM', K[6], lead) end
  if redis.call('EXISTS', K[7]) == 1 then
    redis.call('HSET', K[7], 'deadline', A[6])
    redis.call('ZADD', K[8], tonumber(A[6]), lead)
  end
  if A[2] ~= '' and redis.call('GET', K[9]) == A[2] then redis.call('DEL', K[9]) end
  return current
end
