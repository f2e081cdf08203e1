-- Marking a lead `sending`, as a function other scripts splice in (at their `--@MARK_SENDING@`): count the
-- attempt and, when the attempt before it has an unknown outcome (sending, ambiguous, or never recorded), flag
-- the lead a possible duplicate.
-- mark_sending(record, history, counters, now as ISO text) -> the attempt number.
local function mark_sending(record, history, counters, at)
  local attempt = redis.call('HINCRBY', record, 'attempts', 1)
  local last = redis.call('HGET', record, 'last_outcome') or ''
  if attempt > 1 and (last == '' or last == 'sending' or last == 'ambiguous') then
    redis.call('HSET', record, 'possible_duplicate', '1')
    if last == '' then last = 'unrecorded' end
    redis.call('RPUSH', history, cjson.encode({at = at, event = 'possible_duplicate', previous = last}))
    redis.call('LTRIM', history, -200, -1)
    redis.call('HINCRBY', counters, 'possible_duplicates', 1)
  end
  redis.call('HSET', record, 'last_outcome', 'sending', 'updated_at', at)
  return attempt
end
