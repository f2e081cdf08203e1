-- Move a lead to a new status if its current status allows it, and set fields with it.
-- KEYS[1] the lead's record (hash).
-- ARGV[1] new status, ARGV[2] comma list of allowed current statuses ('*' = any open one), ARGV[3] comma list
-- of final statuses, ARGV[4..] field/value pairs.
-- Returns the previous status, or false (unknown lead, or a status that may not be left this way).
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local allowed = ARGV[2]
if allowed == '*' then
  if string.find(',' .. ARGV[3] .. ',', ',' .. current .. ',', 1, true) then return false end
elseif not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return false
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return current
