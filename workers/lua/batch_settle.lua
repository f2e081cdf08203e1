-- Settle every run of a batch, in one step: `settle` (settle_one.lua, spliced in below) for each lead.
-- KEYS[1] to KEYS[10] the first lead's keys in `settle`'s K order, KEYS[11] to KEYS[20] the second's, and so on.
-- ARGV[1] number of leads, then per lead: its argument count m and m arguments in `settle`'s A order.
-- Returns the status before of each lead ('' for an unknown lead).
--@SETTLE@
local out = {}
local at = 2
for i = 1, tonumber(ARGV[1]) do
  local m = tonumber(ARGV[at])
  local k, a = {}, {}
  for j = 1, 10 do k[j] = KEYS[(i - 1) * 10 + j] end
  for j = 1, m do a[j] = ARGV[at + j] end
  out[i] = settle(k, a) or ''
  at = at + m + 1
end
return out
