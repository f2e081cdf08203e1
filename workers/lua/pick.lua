-- One atomic pick: reservation check, eligibility, strategy, cursor update and capacity reservation.
-- The strategy (a file strategy_<name>.lua) is spliced in at the marker below and defines
-- `choose(ctx, cands)` -> index into cands, reason text.
-- KEYS[1] the lead's reservation (hash), KEYS[2] reservations (zset), KEYS[3] the sticky owner of the lead's
-- number (hash), KEYS[4] agent ordinals (hash), KEYS[5] the pool's round-robin cursor (string), KEYS[6] its
-- weighted round-robin state (hash), KEYS[7] its streak (hash), KEYS[7 + i] the i-th agent of ARGV[1].members
-- (hash): the pool's members, or the one agent named by the lead.
-- ARGV[1] a JSON request (see `Assigner.pick` in workers/routing/assigner.py): lead_id, number, now_ms,
-- reservation_ms, sticky_store_ms, mode ('explicit' or 'pick'), pool, rule, strategy, members, and for a pick
-- off_shift, sticky_ms, catch_up; `peek` (true) asks who would be picked and writes nothing (see below).
-- Returns a JSON object: outcome ('existing', 'assigned', 'next' for a peek, or 'none'), agent, pool, strategy,
-- reason, agent_id, rule, skipped ([agent, reason] pairs), wrap_until.
local req = cjson.decode(ARGV[1])
local now = tonumber(req.now_ms)
local pool = req.pool
local lead = req.lead_id
local resv_key, reservations, sticky_key = KEYS[1], KEYS[2], KEYS[3]
local AGENTS = 7

local function num(value, default)
  local n = tonumber(value)
  if n == nil then return default end
  return n
end

-- Idempotent per lead: a lead holding a reservation gets the same answer, nothing moves.
local held = redis.call('HMGET', resv_key, 'agent', 'pool', 'strategy', 'reason', 'agent_id', 'rule')
if held[1] then
  return cjson.encode({outcome = 'existing', agent = held[1], pool = held[2], strategy = held[3],
                       reason = held[4], agent_id = held[5] or false, rule = held[6] or '', skipped = {}})
end

local function reserve(name, key, strategy, reason, agent_id)
  local deadline = now + num(req.reservation_ms, 3600000)
  redis.call('HSET', resv_key, 'agent', name, 'pool', pool, 'strategy', strategy, 'reason', reason,
             'rule', req.rule, 'at', now, 'deadline', deadline, 'agent_id', agent_id or '',
             'number', req.number)
  redis.call('ZADD', reservations, deadline, lead)
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', resv_key, 'counted', 1)
    redis.call('HINCRBY', key, 'open', 1)
    redis.call('HINCRBY', key, 'assigned', 1)
    redis.call('HSET', key, 'last_ms', now)
    -- Picks on the current UTC day: `picks_day` is the day number, `picks_today` restarts with each new day.
    local day = tostring(math.floor(now / 86400000))
    if redis.call('HGET', key, 'picks_day') == day then
      redis.call('HINCRBY', key, 'picks_today', 1)
    else
      redis.call('HSET', key, 'picks_day', day, 'picks_today', 1)
    end
  end
  local sticky_ms = num(req.sticky_store_ms, 0)
  if sticky_ms > 0 and req.number ~= '' then
    redis.call('HSET', sticky_key, 'agent', name, 'at', now)
    redis.call('PEXPIRE', sticky_key, math.floor(sticky_ms))
  end
end

if req.mode == 'explicit' then
  local key = KEYS[AGENTS + 1]
  local agent_id = redis.call('HGET', key, 'id')
  if agent_id == '' then agent_id = false end
  reserve(req.agent, key, 'explicit', 'explicit', agent_id)
  return cjson.encode({outcome = 'assigned', agent = req.agent, pool = pool, strategy = 'explicit',
                       reason = 'explicit', agent_id = agent_id or false, skipped = {}})
end

-- A peek runs the same eligibility and the same strategy, but every write is dropped: the strategies write only
-- their own state and never read back what they wrote, so the answer is the agent the next plain lead would get.
local real_redis = redis
local WRITES = {SET = true, HSET = true, HINCRBY = true, ZADD = true, PEXPIRE = true}
local redis = {call = function(command, ...)
  if req.peek and WRITES[string.upper(command)] then return false end
  return real_redis.call(command, ...)
end}

--@STRATEGY@

local off = {}
for _, name in ipairs(req.off_shift or {}) do off[name] = true end

-- The members in rotation order: by ordinal (fixed at registration); an unregistered one last.
local members = {}
for i, name in ipairs(req.members) do
  local key = KEYS[AGENTS + i]
  local a = redis.call('HMGET', key, 'ordinal', 'paused', 'open', 'capacity', 'capacity_set', 'wrap_until',
                       'last_ms', 'weight', 'weight_set', 'id')
  members[i] = {name = name, key = key, a = a, ord = tonumber(a[1]) or math.huge, at = i}
end
table.sort(members, function(x, y)
  if x.ord ~= y.ord then return x.ord < y.ord end
  return x.at < y.at
end)

local cands, skipped, by_name = {}, {}, {}
local soonest = false
for _, m in ipairs(members) do
  local name, a = m.name, m.a
  local open = num(a[3], 0)
  local capacity = num(a[5], num(a[4], 0))
  local wrap_until = num(a[6], 0)
  local reason = nil
  if not a[1] then reason = 'unknown'
  elseif a[2] == '1' then reason = 'paused'
  elseif off[name] then reason = 'off_shift'
  elseif wrap_until > now then
    reason = 'wrap_up'
    if not soonest or wrap_until < soonest then soonest = wrap_until end
  elseif capacity > 0 and open >= capacity then reason = 'at_capacity'
  end
  if reason then
    skipped[#skipped + 1] = {name, reason}
  else
    local c = {name = name, key = m.key, ord = m.ord, open = open, last = num(a[7], 0),
               weight = num(a[9], num(a[8], 1)), id = a[10]}
    if c.id == '' then c.id = false end
    cands[#cands + 1] = c
    by_name[name] = c
  end
end

if #cands == 0 then
  return cjson.encode({outcome = 'none', pool = pool, skipped = skipped, wrap_until = soonest})
end

local chosen, reason, strategy = nil, nil, req.strategy
local sticky_window = num(req.sticky_ms, 0)
if sticky_window > 0 and req.number ~= '' then
  local s = redis.call('HMGET', sticky_key, 'agent', 'at')
  if s[1] and now - num(s[2], 0) <= sticky_window then
    if by_name[s[1]] then
      chosen, reason, strategy = by_name[s[1]], 'sticky owner of this number', 'sticky'
    end
  end
end
if not chosen then
  local ctx = {pool = pool, now = now, catch_up = num(req.catch_up, 3), ordinals = KEYS[4], cursor = KEYS[5],
               wrr = KEYS[6], streak = KEYS[7]}
  local index
  index, reason = choose(ctx, cands)
  chosen = cands[index]
  if redis.call('HGET', ctx.streak, 'agent') == chosen.name then
    redis.call('HINCRBY', ctx.streak, 'n', 1)
  else
    redis.call('HSET', ctx.streak, 'agent', chosen.name, 'n', 1)
  end
end

if req.peek then
  return cjson.encode({outcome = 'next', agent = chosen.name, pool = pool, strategy = strategy, reason = reason,
                       agent_id = chosen.id or false, skipped = skipped})
end
reserve(chosen.name, chosen.key, strategy, reason, chosen.id)
return cjson.encode({outcome = 'assigned', agent = chosen.name, pool = pool, strategy = strategy,
                     reason = reason, agent_id = chosen.id or false, skipped = skipped})
