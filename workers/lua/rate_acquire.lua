-- Take one Ryng request slot from the shared limiter (see rate_slot.lua, spliced in below).
-- KEYS[1] the sliding log (zset). ARGV[1] limit, ARGV[2] window (µs), ARGV[3] a unique member.
-- Returns {granted 0/1, wait µs, used}.
--@RATE_SLOT@
return rate_slot(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
