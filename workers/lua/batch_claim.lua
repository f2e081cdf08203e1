-- Claim leads waiting for the limiter into a batch, in one step: each candidate still open, with its agent
-- picked, not split from a batch before, and not held by a run (in-task flag, lock) is locked with the batch's
-- token, leaves the waiting and parked sets, gets a fresh lease, its in-task flag (a crash before the batch
-- settles is counted and redelivered like a single run's) and is marked `sending` (mark_sending.lua). A
-- candidate that is final, unknown or not batchable leaves the waiting set; one held by a run stays.
-- KEYS[1] leads waiting for the limiter (zset), KEYS[2] pending (zset), KEYS[3] parked (zset), KEYS[4] the
-- router's counters (hash), then per candidate: KEYS[3i+2] its record (hash), KEYS[3i+3] its history (list),
-- KEYS[3i+4] its lock (string) (i = 1..).
-- ARGV[1] lock token, ARGV[2] lock ms, ARGV[3] now ms, ARGV[4] lease ms, ARGV[5] now as ISO text, ARGV[6] at
-- most this many leads, ARGV[7..] the candidates' lead ids.
-- Returns one array per claimed lead: {lead id, attempt, field, value, ...} (the record after the claim).
--@MARK_SENDING@
local claimed = {}
local want, now, lease = tonumber(ARGV[6]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 7, #ARGV do
  if #claimed >= want then break end
  local lead = ARGV[i]
  local base = 4 + (i - 7) * 3
  local record, history, lock = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local f = redis.call('HMGET', record, 'status', 'agent', 'batch_split', 'in_task')
  local status = f[1]
  local final = not status or status == 'posted' or status == 'connected' or status == 'completed'
    or status == 'dead'
  if final or not f[2] or f[2] == '' or f[3] == '1' then
    redis.call('ZREM', KEYS[1], lead)
  elseif f[4] ~= '1' and redis.call('SET', lock, ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
    redis.call('ZREM', KEYS[1], lead)
    redis.call('ZREM', KEYS[3], lead)
    redis.call('ZADD', KEYS[2], 'XX', now + lease, lead)
    redis.call('HSET', record, 'in_task', '1')
    local entry = {lead, mark_sending(record, history, KEYS[4], ARGV[5])}
    for _, item in ipairs(redis.call('HGETALL', record)) do entry[#entry + 1] = item end
    claimed[#claimed + 1] = entry
  end
end
return claimed
