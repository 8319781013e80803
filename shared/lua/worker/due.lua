-- KEYS[1] a sorted set scored by time (leases, deferred jobs). ARGV: how many at most. The
-- members due by Redis's clock, so a host whose clock runs ahead reaps nothing early.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_seconds(), 'LIMIT', 0, tonumber(ARGV[1]))
