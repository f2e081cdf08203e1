-- Claim a lead for one delivery run, in one step: status, due time, lock, lease, crash count and pause state.
-- A final or unknown lead leaves the pending and parked sets; a lead parked for later is left alone (a stray
-- copy of its message); a lead another worker holds comes back shortly. A claim whose previous claim never
-- settled (the worker died mid-run: `in_task` still up) counts one crash.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] its lock (string), KEYS[4] pending
-- (zset), KEYS[5] parked (zset), KEYS[6] the delivery pause (hash).
-- ARGV[1] lead id, ARGV[2] lock token, ARGV[3] lock ms, ARGV[4] now ms, ARGV[5] lease ms, ARGV[6] the
-- locked lead's comeback delay (ms), ARGV[7] now as ISO text (history entries).
-- Returns {'unknown'}, {'final', status}, {'not-due'}, {'locked'}, or {'claimed', crashes counted now (0/n),
-- paused (0/1), field, value, ...} with the record as it was before the claim.
local status = redis.call('HGET', KEYS[1], 'status')
local lead, now, lease = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
if not status then
  redis.call('ZREM', KEYS[4], lead)
  redis.call('ZREM', KEYS[5], lead)
  return {'unknown'}
end
if status == 'posted' or status == 'connected' or status == 'completed' or status == 'dead' then
  redis.call('ZREM', KEYS[4], lead)
  redis.call('ZREM', KEYS[5], lead)
  return {'final', status}
end
local due = redis.call('ZSCORE', KEYS[5], lead)
if due and tonumber(due) > now then return {'not-due'} end
if not redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) then
  local back = now + tonumber(ARGV[6])
  redis.call('ZADD', KEYS[5], back, lead)
  redis.call('ZADD', KEYS[4], back + lease, lead)
  return {'locked'}
end
redis.call('ZADD', KEYS[4], 'XX', now + lease, lead)
local record = redis.call('HGETALL', KEYS[1])
local crashes = 0
if redis.call('HGET', KEYS[1], 'in_task') == '1' then
  crashes = redis.call('HINCRBY', KEYS[1], 'crashes', 1)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = ARGV[7], event = 'crash', crashes = crashes}))
  redis.call('LTRIM', KEYS[2], -200, -1)
end
redis.call('HSET', KEYS[1], 'in_task', '1')
local reply = {'claimed', crashes, redis.call('EXISTS', KEYS[6])}
for _, item in ipairs(record) do reply[#reply + 1] = item end
return reply
