-- Take a lead in with one call: record it (its hash, its first history entry, its lease in pending), mark it
-- queued and put its delivery task on the broker's queue with the task-sent event; or report the record
-- already there. A lead recorded before but never queued (status 'accepted') is queued now.
-- KEYS[1] the lead's record (hash), KEYS[2] its history (list), KEYS[3] pending (zset), KEYS[4] the created
-- index (zset, for retention), KEYS[5] (with a task message) the broker's queue (list), KEYS[6] (optional,
-- with a task) the webhook-id marker.
-- ARGV[1] payload fingerprint, ARGV[2] lease deadline (ms), ARGV[3] lead id, ARGV[4] history entry (JSON),
-- ARGV[5] history length kept, ARGV[6] webhook marker TTL (s), ARGV[7] task message ('' = queued elsewhere),
-- ARGV[8] event channel, ARGV[9] task-sent event ('' = none), ARGV[10] now (ms), ARGV[11] the fields of a
-- new record (a JSON object of strings: one argument, not a pair each, keeps the call cheap to send).
-- Returns {outcome, status}: outcome 'created', 'exists' (same fingerprint) or 'conflict'; the status after.
local lead = KEYS[1]
local outcome = 'created'
local existing = redis.call('HGET', lead, 'fingerprint')
if existing then
  local status = redis.call('HGET', lead, 'status')
  if existing ~= ARGV[1] then return {'conflict', status} end
  if status ~= 'accepted' then return {'exists', status} end
  outcome = 'exists'
else
  local flat = {}
  for name, value in pairs(cjson.decode(ARGV[11])) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call('HSET', lead, unpack(flat))
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[10], ARGV[3])
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
end
if ARGV[7] == '' then return {outcome, 'accepted'} end
redis.call('LPUSH', KEYS[5], ARGV[7])
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
redis.call('HSET', lead, 'status', 'queued')
if KEYS[6] then redis.call('SET', KEYS[6], ARGV[3], 'NX', 'EX', tonumber(ARGV[6])) end
return {outcome, 'queued'}
