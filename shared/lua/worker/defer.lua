-- KEYS[1] the deferred set. ARGV: job id, seconds. Parks a queued job until its capacity is due,
-- by Redis's clock.
redis.call('ZADD', KEYS[1], now_seconds() + tonumber(ARGV[2]), ARGV[1])
return 1
