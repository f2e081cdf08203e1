-- Begin a send, in one step: record the pick (when this run made one), take a slot from the shared rate
-- limiter (rate_slot.lua, spliced in below; a refused slot counts one `limiter_waits`) and, when granted, count
-- the attempt and mark the lead `sending`.
-- An attempt after one whose outcome is unknown (sending, ambiguous, or never recorded) flags the lead a
-- possible duplicate. A lead that became final meanwhile is not touched.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] the router's counters (hash),
-- KEYS[4] the limiter's sliding log (zset).
-- ARGV[1] counter of the pick ('' when none), ARGV[2] the pick's history entry ('' when none), ARGV[3] rate
-- limit, ARGV[4] rate window (µs), ARGV[5] a unique limiter member, ARGV[6] now as ISO text, ARGV[7..] the pick's
-- field/value pairs (status included).
-- Returns {'gone', status}, {'wait', wait µs}, or {'sending', attempt}.
--@RATE_SLOT@
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'posted' or status == 'connected' or status == 'completed' or status == 'dead' then
  return {'gone', status or ''}
end
local function event(entry)
  redis.call('RPUSH', KEYS[2], entry)
  redis.call('LTRIM', KEYS[2], -200, -1)
end
if ARGV[2] ~= '' then
  for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  event(ARGV[2])
  if ARGV[1] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[1], 1) end
end
local slot = rate_slot(KEYS[4], ARGV[3], ARGV[4], ARGV[5])
if slot[1] == 0 then
  redis.call('HINCRBY', KEYS[3], 'limiter_waits', 1)
  return {'wait', slot[2]}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local last = redis.call('HGET', KEYS[1], 'last_outcome') or ''
if attempt > 1 and (last == '' or last == 'sending' or last == 'ambiguous') then
  redis.call('HSET', KEYS[1], 'possible_duplicate', '1')
  if last == '' then last = 'unrecorded' end
  event(cjson.encode({at = ARGV[6], event = 'possible_duplicate', previous = last}))
  redis.call('HINCRBY', KEYS[3], 'possible_duplicates', 1)
end
redis.call('HSET', KEYS[1], 'last_outcome', 'sending', 'updated_at', ARGV[6])
return {'sending', attempt}
