-- Settle a delivery run, in one step (settle_one.lua, spliced in below, says what settling does).
-- KEYS[1] to KEYS[10] as `settle`'s K, ARGV[1] onwards as its A.
-- Returns the status before.
--@SETTLE@
return settle(KEYS, ARGV)
