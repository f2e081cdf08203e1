-- Begin a send, in one step: record the pick (when this run made one), take a slot from the shared rate
-- limiter (rate_slot.lua, spliced in below; a refused slot counts one `limiter_waits`) and, when granted, count
-- the attempt and mark the lead `sending` (mark_sending.lua). A lead that became final meanwhile is not touched.
-- With batching on, a lead may instead wait for a batch (once): when more leads wait than the limiter's free
-- slots can send (the backlog: leads queued or in a run, plus those picked and waiting for the limiter).
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] the router's counters (hash),
-- KEYS[4] the limiter's sliding log (zset), KEYS[5] pending (zset), KEYS[6] parked (zset), KEYS[7] leads
-- waiting for the limiter (zset).
-- ARGV[1] counter of the pick ('' when none), ARGV[2] the pick's history entry ('' when none), ARGV[3] rate
-- limit, ARGV[4] rate window (µs), ARGV[5] a unique limiter member, ARGV[6] now as ISO text, ARGV[7] '1' when the
-- lead may wait for a batch, ARGV[8..] the pick's field/value pairs (status included).
-- Returns {'gone', status}, {'defer'}, {'wait', wait µs}, or {'sending', attempt}.
--@RATE_SLOT@
--@MARK_SENDING@
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'posted' or status == 'connected' or status == 'completed' or status == 'dead' then
  return {'gone', status or ''}
end
if ARGV[2] ~= '' then
  for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -200, -1)
  if ARGV[1] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[1], 1) end
end
if ARGV[7] == '1' and redis.call('HGET', KEYS[1], 'batch_deferred') ~= '1' then
  local backlog = redis.call('ZCARD', KEYS[5]) - redis.call('ZCARD', KEYS[6]) + redis.call('ZCARD', KEYS[7])
  if backlog > rate_free(KEYS[4], ARGV[3], ARGV[4]) then
    redis.call('HSET', KEYS[1], 'batch_deferred', '1')
    return {'defer'}
  end
end
local slot = rate_slot(KEYS[4], ARGV[3], ARGV[4], ARGV[5])
if slot[1] == 0 then
  redis.call('HINCRBY', KEYS[3], 'limiter_waits', 1)
  return {'wait', slot[2]}
end
return {'sending', mark_sending(KEYS[1], KEYS[2], KEYS[3], ARGV[6])}
