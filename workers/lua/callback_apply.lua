-- Apply one Ryng callback to its lead, once: the dedup marker and the record change are written together, or not
-- at all. The marker is per lead (call id and event under the lead's own key), so another lead's call that
-- reuses an id is never taken for a duplicate. A callback naming a lead that was never sent to Ryng (no attempt,
-- still open) is not applied: it is kept with the unmatched callbacks for an operator. An applied callback means
-- Ryng called the customer, so the lead also leaves the dead letters and stops waiting anywhere.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] its applied callbacks (hash: marker -> 1),
-- KEYS[4] dead (zset), KEYS[5] pending (zset), KEYS[6] parked (zset), KEYS[7] unmatched callbacks (list),
-- KEYS[8] the router's counters (hash: `callback:<kind>:<result>` counts each answer).
-- ARGV[1] new status, ARGV[2] history entry (JSON), ARGV[3] comma list of statuses it may not overwrite,
-- ARGV[4] marker TTL (s), ARGV[5] lead id, ARGV[6] marker (kind:call:event), ARGV[7] unmatched entry (JSON),
-- ARGV[8..] field/value pairs.
-- Returns 'applied', 'duplicate' (marker present), 'unsent' (kept as unmatched) or 'unknown' (no such lead; kept).
local function answer(result)
  -- a counter's field in the hash, not a key name: the kind is the marker's first part
  redis.call('HINCRBY', KEYS[8], string.format('callback:%s:%s', string.match(ARGV[6], '^[^:]*'), result), 1)
  return result
end
local function keep_unmatched(result)
  redis.call('LPUSH', KEYS[7], ARGV[7])
  redis.call('LTRIM', KEYS[7], 0, 999)
  return answer(result)
end
if redis.call('HEXISTS', KEYS[3], ARGV[6]) == 1 then return answer('duplicate') end
local record = redis.call('HMGET', KEYS[1], 'status', 'attempts')
local current = record[1]
if not current then return keep_unmatched('unknown') end
local open = current ~= 'posted' and current ~= 'connected' and current ~= 'completed'
if open and (tonumber(record[2]) or 0) < 1 then return keep_unmatched('unsent') end
local blocked = ',' .. ARGV[3] .. ','
if not string.find(blocked, ',' .. current .. ',', 1, true) then
  redis.call('HSET', KEYS[1], 'status', ARGV[1])
end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], -200, -1)
redis.call('HSET', KEYS[3], ARGV[6], '1')
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
for i = 4, 6 do redis.call('ZREM', KEYS[i], ARGV[5]) end
return answer('applied')
