-- Claim leads whose lease ran out with nobody working on them. The caller read the candidates (pending leads
-- whose lease deadline is not after now) just before; a candidate whose lease is no longer over (another caller
-- claimed it meanwhile, or a worker renewed it) is left alone. Each one still expired gets a new lease: from its
-- due time when parked, from now otherwise; it is returned, to be enqueued again, unless it is parked or a worker
-- holds its delivery lock.
-- KEYS[1] pending (zset), KEYS[2] parked (zset), KEYS[2 + i] the delivery lock (string) of the i-th candidate.
-- ARGV[1] now (ms), ARGV[2] lease (ms), ARGV[2 + i] the i-th candidate's lead id.
-- Returns the claimed lead ids.
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local deadline = redis.call('ZSCORE', KEYS[1], id)
  if deadline and tonumber(deadline) <= now then
    local parked = redis.call('ZSCORE', KEYS[2], id)
    if parked then
      redis.call('ZADD', KEYS[1], math.max(tonumber(parked), now) + lease, id)
    elseif redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('ZADD', KEYS[1], now + lease, id)
    else
      redis.call('ZADD', KEYS[1], now + lease, id)
      table.insert(out, id)
    end
  end
end
return out
