-- KEYS[1]: a model's waiting set. ARGV: the call id, seconds until its waiter is presumed dead.
-- The waiter calls again on every nap, so only a dead one's entry lapses.
redis.call('ZADD', KEYS[1], now_seconds() + tonumber(ARGV[2]), ARGV[1])
return 1
