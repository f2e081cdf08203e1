-- One atomic pick: reservation check, eligibility, strategy, cursor update and capacity reservation.
-- ARGV[1] is a JSON request (see workers/assigner.py `_request`); the reply is a JSON object.
-- The strategy (a file strategy_<name>.lua) is spliced in at the marker below and defines
-- `choose(ctx, cands)` -> index into cands, reason text.
local req = cjson.decode(ARGV[1])
local P = req.prefix
local now = tonumber(req.now_ms)
local pool = req.pool
local lead = req.lead_id
local resv_key = P .. ':resv:' .. lead

local function agent_key(name) return P .. ':agent:' .. name end
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

local function reserve(name, strategy, reason, agent_id)
  local deadline = now + num(req.reservation_ms, 3600000)
  redis.call('HSET', resv_key, 'agent', name, 'pool', pool, 'strategy', strategy, 'reason', reason,
             'rule', req.rule, 'at', now, 'deadline', deadline, 'agent_id', agent_id or '',
             'number', req.number)
  redis.call('ZADD', P .. ':reservations', deadline, lead)
  if redis.call('EXISTS', agent_key(name)) == 1 then
    redis.call('HSET', resv_key, 'counted', 1)
    redis.call('HINCRBY', agent_key(name), 'open', 1)
    redis.call('HINCRBY', agent_key(name), 'assigned', 1)
    redis.call('HSET', agent_key(name), 'last_ms', now)
  end
  local sticky_ms = num(req.sticky_store_ms, 0)
  if sticky_ms > 0 and req.number ~= '' then
    local key = P .. ':sticky:' .. req.number
    redis.call('HSET', key, 'agent', name, 'at', now)
    redis.call('PEXPIRE', key, math.floor(sticky_ms))
  end
end

if req.mode == 'explicit' then
  local agent_id = redis.call('HGET', agent_key(req.agent), 'id')
  if agent_id == '' then agent_id = false end
  reserve(req.agent, 'explicit', 'explicit', agent_id)
  return cjson.encode({outcome = 'assigned', agent = req.agent, pool = pool, strategy = 'explicit',
                       reason = 'explicit', agent_id = agent_id or false, skipped = {}})
end

--@STRATEGY@

local off = {}
for _, name in ipairs(req.off_shift or {}) do off[name] = true end

local members = redis.call('ZRANGE', P .. ':pool:' .. pool .. ':members', 0, -1, 'WITHSCORES')
local cands, skipped, by_name = {}, {}, {}
local soonest = false
for i = 1, #members, 2 do
  local name, ord = members[i], tonumber(members[i + 1])
  local a = redis.call('HMGET', agent_key(name), 'ordinal', 'paused', 'open', 'capacity', 'capacity_set',
                       'wrap_until', 'last_ms', 'weight', 'weight_set', 'id')
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
    local c = {name = name, ord = ord, open = open, last = num(a[7], 0),
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
  local s = redis.call('HMGET', P .. ':sticky:' .. req.number, 'agent', 'at')
  if s[1] and now - num(s[2], 0) <= sticky_window then
    if by_name[s[1]] then
      chosen, reason, strategy = by_name[s[1]], 'sticky owner of this number', 'sticky'
    end
  end
end
if not chosen then
  local ctx = {P = P, pool = pool, now = now, catch_up = num(req.catch_up, 3)}
  local index
  index, reason = choose(ctx, cands)
  chosen = cands[index]
  local streak_key = P .. ':pool:' .. pool .. ':streak'
  if redis.call('HGET', streak_key, 'agent') == chosen.name then
    redis.call('HINCRBY', streak_key, 'n', 1)
  else
    redis.call('HSET', streak_key, 'agent', chosen.name, 'n', 1)
  end
end

reserve(chosen.name, strategy, reason, chosen.id)
return cjson.encode({outcome = 'assigned', agent = chosen.name, pool = pool, strategy = strategy,
                     reason = reason, agent_id = chosen.id or false, skipped = skipped})
