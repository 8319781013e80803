-- KEYS[1] the live workers' set. ARGV: worker name, seconds after which a silent worker is
-- forgotten. Scored by Redis's clock, as readiness reads it.
local now = now_seconds()
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return 1
